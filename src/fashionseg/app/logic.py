"""What the app computes, apart from Streamlit: upload checks, trained runs, model cards, detection tables.

Plain functions over bytes, PIL images, run folders and :class:`~fashionseg.structures.Prediction` objects, so
they are unit-tested without a server and timed by ``benchmarks/app_latency.py`` exactly as the page runs
them. Nothing is written outside a temporary folder: an upload lives there only while it is decoded, and
exports are returned as bytes.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import re
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from PIL import Image

from fashionseg.config import ModelConfig
from fashionseg.data import ontology
from fashionseg.data.images import ImageReadError, read_image
from fashionseg.data.ontology import LabelSpace
from fashionseg.data.synthetic import render_image
from fashionseg.errors import FashionsegError
from fashionseg.rundir import MODEL_FILE, RunDir
from fashionseg.structures import Prediction, to_coco_results
from fashionseg.visualization import draw_predictions

UPLOAD_TYPES = ("jpg", "jpeg", "png", "webp")
MAX_UPLOAD_MB = 20
# Photos are shrunk to this longer side before inference: detectron2's largest test size, so the model (which
# resizes to its own, smaller, size anyway) sees the same pixels, while full-size masks and overlays of a
# 24-megapixel photo would cost gigabytes.
MAX_SIDE = 1333
DEFAULT_RESULTS = (Path("results"), Path("runs"))
CHECKPOINT_NAME = MODEL_FILE
# the score slider's start, and the floor the model runs at for higher thresholds (see detection_floor)
DEFAULT_SCORE_THRESHOLD = 0.5


class UploadError(FashionsegError):
    """An uploaded file the app cannot use; the message names the file and says what to do."""


@dataclass(frozen=True)
class AppOptions:
    """The page's start-up options (``streamlit run streamlit_app.py -- --weights RUN --results DIR``)."""

    weights: Path | None = None
    results: tuple[Path, ...] = DEFAULT_RESULTS
    max_upload_mb: int = MAX_UPLOAD_MB


def parse_app_args(argv: Sequence[str]) -> AppOptions:
    """Read the options ``fashionseg app`` passes to the page script after ``--``."""
    parser = argparse.ArgumentParser(prog="streamlit_app.py")
    parser.add_argument("--weights", type=Path)
    parser.add_argument("--results", type=Path, action="append")
    parser.add_argument("--max-upload-mb", type=int, default=MAX_UPLOAD_MB)
    args = parser.parse_args(list(argv))
    return AppOptions(args.weights, tuple(args.results or DEFAULT_RESULTS), args.max_upload_mb)


def read_upload(name: str, data: bytes, max_mb: int = MAX_UPLOAD_MB) -> Image.Image:
    """An uploaded file as an RGB image at most ``MAX_SIDE`` px long; :class:`UploadError` says why not.

    Decoding goes through :func:`fashionseg.data.images.read_image`, like every other image the package
    reads: EXIF orientation applied; grayscale, CMYK and 16-bit converted; truncated files and decompression
    bombs refused.
    """
    suffix = Path(name).suffix.lower().lstrip(".")
    if suffix not in UPLOAD_TYPES:
        raise UploadError(f"{name}: only {', '.join(UPLOAD_TYPES)} images are accepted; convert it first")
    if not data:
        raise UploadError(f"{name} is empty (0 bytes); upload the image again")
    if len(data) > max_mb * 2**20:
        raise UploadError(
            f"{name} is {len(data) / 2**20:.1f} MB, over the {max_mb} MB upload limit; upload a smaller image"
        )
    # read_image takes a path: the bytes go to a private temporary folder, removed as soon as they are read.
    with tempfile.TemporaryDirectory(prefix="fashionseg-upload-") as folder:
        path = Path(folder) / f"upload.{suffix}"
        path.write_bytes(data)
        try:
            image = read_image(path)
        except ImageReadError as exc:
            raise UploadError(str(exc).replace(str(path), name)) from None
    return fit_within(image, MAX_SIDE)


def fit_within(image: Image.Image, max_side: int) -> Image.Image:
    """The image scaled down (aspect kept) so that its longer side is at most ``max_side``."""
    if max(image.size) <= max_side:
        return image
    scale = max_side / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.LANCZOS)


def photo_example() -> Image.Image:
    """Grace Hopper in uniform (512 x 600), the sample photo that ships with matplotlib."""
    from matplotlib import cbook

    return read_image(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))


def synthetic_example() -> Image.Image:
    """Two figures (384 x 384) drawn by the embedded dataset's generator: what the demo models learn from."""
    pixels, _ = render_image(np.random.default_rng(0), 384)
    return Image.fromarray(pixels)


# name shown in the example picker -> function returning the RGB image
EXAMPLES: dict[str, Callable[[], Image.Image]] = {
    "Synthetic figures (generated)": synthetic_example,
    "Grace Hopper (photo shipped with matplotlib)": photo_example,
}


@dataclass(frozen=True)
class RunInfo:
    """A trained model the app can load: its checkpoint and, when present, config.yaml and metrics.json."""

    name: str  # how the run is listed: the run folder, e.g. results/demo/R50-FPN
    checkpoint: Path
    config: dict[str, Any] | None
    metrics: dict[str, Any] | None

    @property
    def folder(self) -> Path:
        return self.checkpoint.parent


def _read_mapping(path: Path, parse: Callable[[str], Any]) -> dict[str, Any] | None:
    try:
        value = parse(path.read_text())
    except (OSError, ValueError, yaml.YAMLError):
        return None
    return value if isinstance(value, dict) else None


def _display_name(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def run_info(path: str | Path) -> RunInfo:
    """The run of a folder holding ``model_final.pt``, or of a checkpoint file (config beside it, if any)."""
    path = Path(path)
    checkpoint = path / CHECKPOINT_NAME if path.is_dir() else path
    if not checkpoint.is_file():
        raise FashionsegError(
            f"{checkpoint} does not exist; pass --weights a run folder holding {CHECKPOINT_NAME} "
            "(e.g. runs/demo/R50-FPN) or the checkpoint file itself"
        )
    folder = checkpoint.parent
    return RunInfo(
        name=_display_name(folder if checkpoint.name == CHECKPOINT_NAME else checkpoint),
        checkpoint=checkpoint,
        config=_read_mapping(RunDir(folder).config_file, yaml.safe_load),
        metrics=_read_mapping(RunDir(folder).metrics_file, json.loads),
    )


def discover_runs(roots: Iterable[Path], first: Path | None = None) -> list[RunInfo]:
    """Every ``model_final.pt`` under ``roots`` (sorted), with the run ``first`` (``--weights``) leading."""
    runs = [run_info(first)] if first is not None else []
    seen = {r.checkpoint.resolve() for r in runs}
    for root in roots:
        if not root.is_dir():
            continue
        for checkpoint in sorted(root.rglob(CHECKPOINT_NAME)):
            if checkpoint.resolve() not in seen:
                seen.add(checkpoint.resolve())
                runs.append(run_info(checkpoint.parent))
    return runs


def _ap(metrics: dict[str, Any], task: str, kind: str) -> str:
    try:
        return f"{float(metrics[task][kind]['AP']):.1f}"
    except (KeyError, TypeError, ValueError):
        return "—"


def _preset_of(folder: Path) -> str:
    """The preset of a run at ``<root>/<preset>/<arch>`` (the study's and ``fashionseg train``'s layout)."""
    preset = folder.parent.name
    return "unknown" if preset in {p.name for p in DEFAULT_RESULTS} | {""} else preset


def model_card(run: RunInfo) -> list[tuple[str, str]]:
    """(field, value) rows: architecture, training data, preset, iterations and the run's AP numbers.

    AP values come from the run's metrics.json (0-100, as in the study's Table I); a run without one
    reads "not evaluated".
    """
    cfg = run.config or {}
    model, data, solver = cfg.get("model", {}), cfg.get("data", {}), cfg.get("solver", {})
    if not data:
        training_data = "unknown (no config.yaml beside the checkpoint)"
    elif data.get("synthetic"):
        training_data = (
            f"synthetic Fashionpedia-style images ({data.get('synth_train', '?')} train), {data['root']}"
        )
    else:
        training_data = f"{data.get('root', '?')}/{data.get('train_annotations', '?')}"
    rows = [
        ("run", run.name),
        ("architecture", str(model.get("arch", "unknown"))),
        ("training data", training_data),
        ("preset", _preset_of(run.folder)),
        (
            "iterations",
            f"{solver['max_iter']:,} × {solver.get('ims_per_batch', '?')} images" if solver else "unknown",
        ),
        ("initial weights", str(model.get("weights", "unknown"))),
    ]
    if run.metrics is None:
        return [*rows, ("accuracy", "not evaluated (no metrics.json)")]
    return [
        *rows,
        ("box AP", _ap(run.metrics, "bbox", "coco")),
        ("mask AP", _ap(run.metrics, "segm", "coco")),
        ("box AP^IoU+F1", _ap(run.metrics, "bbox", "iou_f1")),
        ("mask AP^IoU+F1", _ap(run.metrics, "segm", "iou_f1")),
    ]


@dataclass(frozen=True)
class Controls:
    """The page's filters: which detections and attributes are shown, drawn, tabulated and exported."""

    score_threshold: float = DEFAULT_SCORE_THRESHOLD
    attribute_threshold: float = ModelConfig.attribute_threshold  # the model's own, unless changed
    categories: tuple[int, ...] | None = None  # None: every category


def detection_floor(score_threshold: float) -> float:
    """The score from which the model keeps detections, for the page's score threshold.

    The mask and attribute heads run only on the detections above it (on a CPU each one costs time, and an
    image can hold up to ``box_detections_per_img`` of them at a score of 0), and one model run serves every
    threshold at or above it: raising the slider from the default re-selects cached detections, lowering it
    below runs the model once more, at the lower floor.
    """
    return min(score_threshold, DEFAULT_SCORE_THRESHOLD)


def select(pred: Prediction, labels: LabelSpace, controls: Controls) -> Prediction:
    """The detections passing the controls, their ``attribute_ids`` recomputed at the attribute threshold.

    Attributes are kept only for categories the model learned them on (``labels.attribute_category_ids``);
    for the others (zipper, pocket, ...) the attribute head's outputs carry no meaning.
    """
    keep = pred.scores >= controls.score_threshold
    if controls.categories is not None:
        keep &= np.isin(pred.category_ids, controls.categories)
    shown = pred.select(keep)
    with_attributes = set(labels.attribute_category_ids)
    attribute_ids = []
    for i in range(len(shown)):
        scores = shown.attribute_scores[i]
        order = [j for j in np.argsort(-scores, kind="stable") if scores[j] >= controls.attribute_threshold]
        wanted = int(shown.category_ids[i]) in with_attributes
        attribute_ids.append([labels.attribute_ids[j] for j in order] if wanted else [])
    return dataclasses.replace(shown, attribute_ids=attribute_ids)


@cache
def _category_info() -> dict[int, ontology.Category]:
    return {c.id: c for c in ontology.categories()}


@cache
def _attribute_group() -> dict[int, str]:
    return {a.id: a.supercategory for a in ontology.attributes()}


@cache
def _group_order() -> tuple[str, ...]:
    return tuple(ontology.attribute_groups())


def detections_table(shown: Prediction, labels: LabelSpace) -> pd.DataFrame:
    """One row per detection of :func:`select`'s output: category, supercategory, confidence, attributes.

    Attributes fill one column per attribute group (nickname, silhouette, length, ...), each cell listing
    "name probability" pairs, most probable first; only groups with an entry get a column.
    """
    names = dict(zip(labels.category_ids, labels.category_names, strict=True))
    attribute_names = dict(zip(labels.attribute_ids, labels.attribute_names, strict=True))
    column = {a: j for j, a in enumerate(labels.attribute_ids)}
    rows = []
    for i in range(len(shown)):
        category_id = int(shown.category_ids[i])
        info = _category_info().get(category_id)
        row: dict[str, Any] = {
            "category": names[category_id],
            "supercategory": info.supercategory if info else "—",
            "confidence": round(float(shown.scores[i]), 3),
        }
        for a in shown.attribute_ids[i]:
            group = _attribute_group().get(a, "other")
            entry = f"{attribute_names[a]} {shown.attribute_scores[i, column[a]]:.2f}"
            row[group] = f"{row[group]}, {entry}" if group in row else entry
        rows.append(row)
    groups = [g for g in (*_group_order(), "other") if any(g in r for r in rows)]
    columns = ["category", "supercategory", "confidence", *groups]
    return pd.DataFrame(rows, columns=columns).fillna("")


def detections_json(shown: Prediction, labels: LabelSpace, image_id: int = 1) -> bytes:
    """COCO-results JSON of the shown detections, with ``attribute_ids`` and ``attribute_scores``."""
    return json.dumps(to_coco_results(shown, image_id, labels), indent=1).encode()


def overlay(image: Image.Image, shown: Prediction, labels: LabelSpace) -> Image.Image:
    """The image with the shown detections' masks, boxes, names and top three attributes drawn on it."""
    return draw_predictions(image, shown, labels, score_threshold=0.0, max_attributes=3)


def file_stem(name: str) -> str:
    """A download file name's stem from an upload's or example's name: letters, digits, ``._-`` only."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name).stem).strip("_.") or "image"


def png_bytes(image: Image.Image) -> bytes:
    """The image encoded as PNG, for the download button."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
