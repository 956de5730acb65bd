"""Batched, resumable, shardable inference over a photo collection, written as one Parquet table.

The table (``predictions.parquet``) has one *image row* per image (``detection == -1``; ``error`` holds the
reason when the file could not be read) and one *detection row* per detection (``detection`` = 0..N-1):
file, width, height, category id and name, score, box (x1, y1, x2, y2 in the original image's pixels) and
the attribute ids with their scores. Image rows make images without any detection count in the statistics.

Detections down to ``min_score`` and attributes down to ``min_attribute_score`` are stored, so statistics at
any higher threshold need no second pass over the images. Attributes are stored only for the categories the
model's label space scores with attributes.

Resume: results are flushed every ``flush_every`` images as ``parts/*.parquet`` (written atomically), and
the next run skips every image that already has a readable image row. Under ``torchrun`` each rank takes
every ``world_size``-th remaining image; rank 0 merges all parts into ``predictions.parquet`` at the end.
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms.functional import pil_to_tensor
from tqdm.auto import tqdm

from fashionseg.data.images import ImageReadError, read_image
from fashionseg.data.ontology import LabelSpace
from fashionseg.data.transforms import resized_shape
from fashionseg.distributed import DistInfo, barrier
from fashionseg.errors import FashionsegError
from fashionseg.structures import Prediction

PREDICTIONS_FILE = "predictions.parquet"
SETTINGS_FILE = "inference.json"

SCHEMA = pa.schema(
    [
        ("file", pa.string()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("error", pa.string()),
        ("detection", pa.int32()),
        ("category_id", pa.int32()),
        ("category_name", pa.string()),
        ("score", pa.float32()),
        ("x1", pa.float32()),
        ("y1", pa.float32()),
        ("x2", pa.float32()),
        ("y2", pa.float32()),
        ("attribute_ids", pa.list_(pa.int32())),
        ("attribute_scores", pa.list_(pa.float32())),
    ]
)


class PredictorLike(Protocol):
    """What inference needs of :class:`fashionseg.predict.Predictor` (tests pass a small fake)."""

    labels: LabelSpace

    def predict(self, images: Sequence[torch.Tensor], batch_size: int = ...) -> list[Prediction]: ...


@dataclass(frozen=True)
class InferenceSettings:
    """How images are batched and decoded, and what is stored (store thresholds, not the analysis ones)."""

    batch_size: int = 4
    workers: int = 2
    resize: tuple[int, int] | None = None  # the model's (min_size, max_size), applied in the loader workers
    min_score: float = 0.05
    min_attribute_score: float = 0.05
    flush_every: int = 64  # images per part file: the most a crash can lose


@dataclass(frozen=True)
class InferenceSummary:
    """What one call of :func:`infer_collection` did on this rank, and where its time went."""

    images_done_before: int
    images_predicted: int
    images_unreadable: int
    seconds_total: float
    seconds_model: float


def image_record(file: str, width: int, height: int, error: str | None = None) -> dict[str, Any]:
    """The image row of one image (``error`` set when it could not be read)."""
    return {
        "file": file,
        "width": width,
        "height": height,
        "error": error,
        "detection": -1,
        "category_id": -1,
        "category_name": "",
        "score": np.nan,
        "x1": np.nan,
        "y1": np.nan,
        "x2": np.nan,
        "y2": np.nan,
        "attribute_ids": [],
        "attribute_scores": [],
    }


def detection_records(
    file: str,
    width: int,
    height: int,
    boxes: np.ndarray,
    scores: np.ndarray,
    category_ids: np.ndarray,
    category_names: Sequence[str],
    attributes: Sequence[dict[int, float]],
) -> list[dict[str, Any]]:
    """The detection rows of one image: boxes [N, 4] xyxy, scores [N], category ids [N], N names and N
    ``{attribute_id: score}`` dicts (stored sorted by attribute id)."""
    rows = []
    for i in range(len(scores)):
        ids = sorted(attributes[i])
        rows.append(
            {
                **image_record(file, width, height),
                "detection": i,
                "category_id": int(category_ids[i]),
                "category_name": category_names[i],
                "score": float(scores[i]),
                "x1": float(boxes[i, 0]),
                "y1": float(boxes[i, 1]),
                "x2": float(boxes[i, 2]),
                "y2": float(boxes[i, 3]),
                "attribute_ids": ids,
                "attribute_scores": [float(attributes[i][a]) for a in ids],
            }
        )
    return rows


def predictions_frame(records: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """A predictions table (the Parquet schema's columns and types) from image and detection records."""
    return pa.Table.from_pylist(list(records), schema=SCHEMA).to_pandas()


@dataclass(frozen=True)
class LoadedImage:
    """One decoded image from the loader: ``tensor`` float [3, h, w] in 0-1, resized for the model
    (None when unreadable); ``width`` and ``height`` are the original file's."""

    file: str
    width: int
    height: int
    tensor: torch.Tensor | None
    error: str | None


def prediction_records(
    item: LoadedImage, pred: Prediction, labels: LabelSpace, settings: InferenceSettings
) -> list[dict[str, Any]]:
    """Image row plus detection rows of one :class:`~fashionseg.structures.Prediction` made on the loaded
    (possibly resized) image; boxes go back to the original image's pixels."""
    keep = np.flatnonzero(pred.scores >= settings.min_score)
    names = dict(zip(labels.category_ids, labels.category_names, strict=True))
    with_attributes = set(labels.attribute_category_ids)
    attributes = []
    for i in keep:
        if int(pred.category_ids[i]) not in with_attributes:
            attributes.append({})
            continue
        columns = np.flatnonzero(pred.attribute_scores[i] >= settings.min_attribute_score)
        attributes.append({labels.attribute_ids[j]: float(pred.attribute_scores[i, j]) for j in columns})
    categories = pred.category_ids[keep]
    height, width = item.tensor.shape[-2:]
    to_original = np.array([item.width / width, item.height / height] * 2)
    return [image_record(item.file, item.width, item.height)] + detection_records(
        item.file,
        item.width,
        item.height,
        pred.boxes[keep] * to_original,
        pred.scores[keep],
        categories,
        [names.get(int(c), str(int(c))) for c in categories],
        attributes,
    )


class CollectionImages(Dataset):
    """Decodes and resizes the images of a collection in DataLoader workers (off the model's thread)."""

    def __init__(self, root: Path, files: Sequence[str], resize: tuple[int, int] | None):
        self.root, self.files, self.resize = root, list(files), resize

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> LoadedImage:
        file = self.files[index]
        try:
            image = read_image(self.root / file)
        except ImageReadError as exc:
            return LoadedImage(file, 0, 0, None, str(exc))
        tensor = pil_to_tensor(image).float().div_(255)
        if self.resize is not None:
            size = resized_shape(image.height, image.width, *self.resize)
            if size != (image.height, image.width):
                # as the training Resize does it, so that the model's own resize is the identity
                tensor = F.interpolate(
                    tensor[None], size=size, mode="bilinear", align_corners=False, antialias=True
                )[0].clamp_(0, 1)
        return LoadedImage(file, image.width, image.height, tensor, None)


def _as_list(batch: list[LoadedImage]) -> list[LoadedImage]:
    return batch


def _write_atomic(table: pa.Table, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    pq.write_table(table, tmp)
    tmp.replace(path)


def load_predictions(out_dir: Path) -> pd.DataFrame:
    """The predictions of ``out_dir``: ``predictions.parquet`` plus any part files of unfinished runs.

    When one file has rows from several sources (an unreadable image retried later), the newest wins.
    """
    sources = [out_dir / PREDICTIONS_FILE] if (out_dir / PREDICTIONS_FILE).is_file() else []
    sources += sorted((out_dir / "parts").glob("*.parquet"))  # named part-<time ns>-...: oldest first
    if not sources:
        return predictions_frame([])
    tables = [pq.read_table(p, schema=SCHEMA).to_pandas().assign(_source=i) for i, p in enumerate(sources)]
    table = pd.concat(tables, ignore_index=True)
    newest = table[table["detection"] < 0].groupby("file")["_source"].max()
    table = table[table["_source"].to_numpy() == newest.reindex(table["file"]).to_numpy()]
    return table.drop(columns="_source").reset_index(drop=True)


def merge_parts(out_dir: Path) -> None:
    """Fold the part files into ``predictions.parquet`` (sorted by file, detection) and delete them."""
    parts = sorted((out_dir / "parts").glob("*.parquet"))
    table = load_predictions(out_dir).sort_values(["file", "detection"], ignore_index=True)
    _write_atomic(
        pa.Table.from_pandas(table, schema=SCHEMA, preserve_index=False), out_dir / PREDICTIONS_FILE
    )
    for part in parts:
        part.unlink()


def check_settings(out_dir: Path, model_id: str, settings: InferenceSettings, restart: bool = False) -> None:
    """Refuse to resume into a folder made with another model or other store thresholds / resizing; with
    ``restart``, delete its predictions instead and start over (said in one line)."""
    path = out_dir / SETTINGS_FILE
    wanted = {
        "model": model_id,
        "min_score": settings.min_score,
        "min_attribute_score": settings.min_attribute_score,
        "resize": list(settings.resize) if settings.resize else None,
    }
    if path.is_file():
        previous = json.loads(path.read_text())
        differing = {k: (previous.get(k), v) for k, v in wanted.items() if previous.get(k) != v}
        if not differing:
            return
        detail = "; ".join(f"{k}: {old!r} then, {new!r} now" for k, (old, new) in differing.items())
        if not restart:
            raise FashionsegError(
                f"{out_dir} holds predictions made with other settings ({detail}); use a new output folder, "
                f"pass --restart, or delete {out_dir} to start over"
            )
        print(f"{out_dir}: predictions made with other settings ({', '.join(differing)}); starting over")
        (out_dir / PREDICTIONS_FILE).unlink(missing_ok=True)
        shutil.rmtree(out_dir / "parts", ignore_errors=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(wanted, indent=1))


def infer_collection(
    predictor: PredictorLike,
    root: Path,
    files: Sequence[str],
    out_dir: Path,
    settings: InferenceSettings,
    model_id: str,
    info: DistInfo | None = None,
    restart: bool = False,
) -> InferenceSummary:
    """Predict every image of ``files`` (paths relative to ``root``) not yet in ``out_dir``'s predictions.

    Under ``torchrun`` (``info`` from :func:`fashionseg.distributed.init_from_env`) every rank calls this
    with the same arguments; each predicts its shard and rank 0 merges. Unreadable images get an image row
    with the error and are retried by the next run.
    """
    info = info or DistInfo()
    start = time.perf_counter()
    if info.is_main:
        check_settings(out_dir, model_id, settings, restart)
    barrier(info)
    done = load_predictions(out_dir)
    done = set(done.loc[(done["detection"] < 0) & done["error"].isna(), "file"])
    barrier(info)  # every rank has read the same state before any rank writes a part
    todo = [f for f in files if f not in done]
    shard = todo[info.rank :: info.world_size]
    loader = DataLoader(
        CollectionImages(root, shard, settings.resize),
        batch_size=settings.batch_size,
        num_workers=settings.workers,
        collate_fn=_as_list,
    )
    parts_dir = out_dir / "parts"
    parts_dir.mkdir(parents=True, exist_ok=True)
    records: list[dict[str, Any]] = []
    buffered = unreadable = 0
    seconds_model = 0.0
    progress = tqdm(
        total=len(shard), desc=f"trends inference (rank {info.rank})", unit="img", position=info.rank
    )
    for batch in loader:
        readable = [item for item in batch if item.tensor is not None]
        for item in batch:
            if item.error is not None:
                records.append(image_record(item.file, 0, 0, item.error))
                unreadable += 1
        if readable:
            tick = time.perf_counter()
            preds = predictor.predict([item.tensor for item in readable], batch_size=len(readable))
            seconds_model += time.perf_counter() - tick
            for item, pred in zip(readable, preds, strict=True):
                records += prediction_records(item, pred, predictor.labels, settings)
        buffered += len(batch)
        progress.update(len(batch))
        if buffered >= settings.flush_every:
            _flush(records, parts_dir, info.rank)
            records, buffered = [], 0
    progress.close()
    if records:
        _flush(records, parts_dir, info.rank)
    barrier(info)
    if info.is_main:
        merge_parts(out_dir)
    barrier(info)
    return InferenceSummary(
        images_done_before=len(done),
        images_predicted=len(shard) - unreadable,
        images_unreadable=unreadable,
        seconds_total=time.perf_counter() - start,
        seconds_model=seconds_model,
    )


def _flush(records: list[dict[str, Any]], parts_dir: Path, rank: int) -> None:
    table = pa.Table.from_pylist(records, schema=SCHEMA)
    _write_atomic(table, parts_dir / f"part-{time.time_ns():020d}-r{rank:03d}-{uuid.uuid4().hex[:8]}.parquet")
