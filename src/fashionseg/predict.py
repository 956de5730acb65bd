"""Prediction: a trained model on any images, as COCO-results JSON (with attributes) and overlay PNGs.

``Predictor`` is the one way the CLI, the notebooks, the app and the trend statistics run a model. It takes
images at their own size (the model's transform resizes them and maps the results back), so boxes and masks
are always in the input image's pixel coordinates.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torchvision.transforms.functional import pil_to_tensor
from tqdm.auto import tqdm

from fashionseg import checkpoint, precision
from fashionseg.allocator import keep_freed_memory
from fashionseg.config import from_dict
from fashionseg.data.images import ImageReadError, read_image
from fashionseg.data.ontology import LabelSpace
from fashionseg.distributed import resolve_device
from fashionseg.errors import FashionsegError
from fashionseg.models import build_model
from fashionseg.rundir import RunDir
from fashionseg.structures import Prediction, to_coco_results
from fashionseg.visualization import draw_predictions

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")


def _checkpoint_path(path: str | Path) -> Path:
    path = Path(path)
    return RunDir(path).model_file if path.is_dir() else path


class Predictor:
    """A trained model ready for inference: ``Predictor.from_checkpoint(path).predict(images)``."""

    def __init__(
        self,
        model: torch.nn.Module,
        labels: LabelSpace,
        config: dict[str, Any],
        device: torch.device,
        amp: bool | None = None,
    ):
        keep_freed_memory()  # inference allocates and frees the same large blocks per batch too
        self.model = model.eval().to(device)
        self.labels = labels
        self.config = config
        self.device = device
        # the run's precision (solver.amp: bfloat16 on CPUs that have it, float16 on CUDA) unless told
        self.amp = bool(config.get("solver", {}).get("amp", False)) if amp is None else amp
        # predict() sets the model's score threshold for the length of a call; the app shares one
        # Predictor between its sessions' threads, so calls take turns
        self._lock = threading.Lock()

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "auto", amp: bool | None = None) -> Predictor:
        """Load ``model_final.pt`` (or a run folder holding one), read with ``weights_only=True``.

        ``amp`` None runs at the precision the model trained with (``solver.amp``), False in float32.
        """
        ckpt_path = _checkpoint_path(path)
        ckpt = checkpoint.load(ckpt_path, required=("model", "labels", "config"))
        cfg = from_dict(ckpt["config"])
        if cfg.model.pretext_archs:
            raise FashionsegError(
                f"{ckpt_path} is a joint pretext run's ({', '.join(cfg.model.pretext_archs)} on one ResNet), "
                "not one detector: `fashionseg pretrain` evaluates its designs and exports the trunk"
            )
        labels = LabelSpace.from_dict(ckpt["labels"])
        model_cfg = cfg.model.__class__(**{**cfg.model.__dict__, "weights": "none"})
        model = build_model(model_cfg, labels, min_size=cfg.data.min_size, max_size=cfg.data.max_size)
        try:
            model.load_state_dict(ckpt["model"])
        except RuntimeError as exc:
            raise FashionsegError(
                f"{ckpt_path}: the weights do not fit a {cfg.model.arch} model: {exc}"
            ) from None
        return cls(model, labels, ckpt["config"], resolve_device(device), amp)

    @property
    def arch(self) -> str:
        return self.config["model"]["arch"]

    @torch.inference_mode()
    def predict(
        self, images: Sequence[Image.Image | torch.Tensor], batch_size: int = 4, score_threshold: float = 0.0
    ) -> list[Prediction]:
        """Detect garments in RGB images (PIL, or float tensors [3, H, W] in 0-1).

        Detections scoring below ``score_threshold`` are dropped inside the model, before the mask and
        attribute heads run on them: on a CPU the mask head's cost grows with every kept detection.
        """
        out: list[Prediction] = []
        heads = self.model.roi_heads
        with self._lock:
            # the heads keep a detection iff its score is >= min_score (and above their own threshold),
            # the same comparison _to_prediction makes, so exactly the kept detections reach the mask head
            heads.min_score = score_threshold
            try:
                for start in range(0, len(images), batch_size):
                    batch = [self._to_tensor(im).to(self.device) for im in images[start : start + batch_size]]
                    with precision.autocast(self.device, self.amp):
                        results = self.model(batch)
                    for result in results:
                        out.append(self._to_prediction(result, score_threshold))
            finally:
                heads.min_score = None
        return out

    @staticmethod
    def _to_tensor(image: Image.Image | torch.Tensor) -> torch.Tensor:
        if isinstance(image, torch.Tensor):
            return image
        return pil_to_tensor(image.convert("RGB")).float().div_(255)

    def _to_prediction(self, result: dict[str, Any], score_threshold: float) -> Prediction:
        keep = (result["scores"] >= score_threshold).cpu().numpy()
        masks = result["masks"][:, 0] > 0.5 if result["masks"].ndim == 4 else result["masks"] > 0.5
        pred = Prediction(
            boxes=result["boxes"].float().cpu().numpy(),
            scores=result["scores"].float().cpu().numpy(),
            category_ids=np.asarray(
                [self.labels.category_of(int(x)) for x in result["labels"]], dtype=np.int64
            ),
            masks=masks.cpu().numpy(),
            attribute_scores=result["attribute_scores"].float().cpu().numpy(),
            attribute_ids=[list(map(int, ids)) for ids in result["attribute_ids"]],
        )
        return pred.select(keep)

    def to_coco_results(self, pred: Prediction, image_id: int) -> list[dict[str, Any]]:
        """COCO-results entries with ``attribute_ids`` and their ``attribute_scores`` (same order)."""
        return to_coco_results(pred, image_id, self.labels)


def list_images(paths: Iterable[str | Path]) -> list[Path]:
    """Image files named directly or found (recursively, sorted) in the folders given."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file())
        elif p.is_file():
            files.append(p)
        else:
            raise FashionsegError(f"{p} is neither an image file nor a folder")
    return files


def predict_files(
    predictor: Predictor,
    files: Sequence[Path],
    out_dir: Path,
    batch_size: int = 4,
    score_threshold: float = 0.5,
    overlays: bool = True,
) -> dict[str, Any]:
    """Run on image files; write ``predictions.json`` and ``overlays/*.png`` under ``out_dir``.

    A file that cannot be read is reported and skipped; the others go on. Returns a summary dict.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    if overlays:
        (out_dir / "overlays").mkdir(exist_ok=True)
    results: list[dict[str, Any]] = []
    images_meta: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    progress = tqdm(total=len(files), desc="predict", unit="img", dynamic_ncols=True)
    for start in range(0, len(files), batch_size):
        batch_files, batch_images = [], []
        for f in files[start : start + batch_size]:
            try:
                batch_images.append(read_image(f))
                batch_files.append(f)
            except ImageReadError as exc:
                skipped.append({"file": str(f), "error": str(exc)})
                print(f"skipped {f}: {exc}", file=sys.stderr)
        preds = predictor.predict(batch_images, batch_size=batch_size, score_threshold=score_threshold)
        for f, image, pred in zip(batch_files, batch_images, preds, strict=True):
            image_id = len(images_meta) + 1
            images_meta.append(
                {"id": image_id, "file_name": str(f), "width": image.width, "height": image.height}
            )
            results += predictor.to_coco_results(pred, image_id)
            if overlays:
                draw_predictions(image, pred, predictor.labels, score_threshold=score_threshold).save(
                    out_dir / "overlays" / f"{image_id:05d}_{f.stem}.png"
                )
        progress.update(len(files[start : start + batch_size]))
    progress.close()
    summary = {"images": images_meta, "skipped": skipped, "detections": len(results)}
    write_atomic(out_dir / "predictions.json", json.dumps(results))
    write_atomic(out_dir / "images.json", json.dumps(summary, indent=1))
    return summary


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename: an interrupted run leaves the
    earlier file or none, never a partial one that reads as complete."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "inputs", nargs="+", metavar="IMAGE_OR_DIR", help="image files and/or folders of images"
    )
    parser.add_argument("--weights", required=True, help="RUN/model_final.pt (or the run folder)")
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument(
        "--score-threshold", type=float, default=0.5, help="keep detections scoring at least this"
    )
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    parser.add_argument("--no-overlays", action="store_true", help="write only predictions.json")


def run(args: argparse.Namespace) -> int:
    files = list_images(args.inputs)
    if not files:
        raise FashionsegError(f"no images ({', '.join(IMAGE_SUFFIXES)}) found in {', '.join(args.inputs)}")
    predictor = Predictor.from_checkpoint(args.weights, device=args.device)
    summary = predict_files(
        predictor, files, args.out, args.batch_size, args.score_threshold, overlays=not args.no_overlays
    )
    print(
        f"{len(summary['images'])} images, {summary['detections']} detections"
        f" -> {args.out / 'predictions.json'}"
        + (
            f"; {len(summary['skipped'])} unreadable images skipped (see images.json)"
            if summary["skipped"]
            else ""
        )
    )
    return 1 if summary["skipped"] and not summary["images"] else 0
