"""Evaluating a training run: predict a split with its weights, score it, write the run's result files.

``evaluate_run(run_dir)`` writes ``predictions_<split>.json`` and ``metrics.json`` (with a ``speed`` entry,
:func:`speed_entry`) and the final point of ``learning_curve.jsonl``; training adds the curve's earlier
points through :func:`evaluate_predictor` and :func:`write_curve_point`. Every file is written atomically;
the files' names and readers are :class:`fashionseg.rundir.RunDir`'s.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from fashionseg import checkpoint
from fashionseg.data.images import read_image
from fashionseg.evaluation import evaluate
from fashionseg.predict import Predictor
from fashionseg.rundir import RunDir, curve_point

WARMUP_BATCHES = 0  # evaluate_predictor times every batch, the first included


def evaluate_predictor(
    predictor: Any,
    data_cfg: Any,
    split: str = "val",
    batch_size: int = 4,
    max_images: int | None = None,
    show_progress: bool = True,
    iou_types: tuple[str, ...] = ("bbox", "segm"),
) -> tuple[dict[str, Any], list[dict[str, Any]], float, int]:
    """Predict a split with ``predictor`` and evaluate it: (metrics, COCO results, model seconds, images).

    The ground truth is cut to the predictor's categories and to the first ``max_images`` images.
    """
    annotations = data_cfg.path(getattr(data_cfg, f"{split}_annotations"))
    images_dir = data_cfg.path(getattr(data_cfg, f"{split}_images"))
    gt = json.loads(annotations.read_text())
    images = gt["images"][:max_images] if max_images else gt["images"]
    keep_cats = set(predictor.labels.category_ids)
    keep_imgs = {im["id"] for im in images}
    gt = {
        **gt,
        "images": images,
        "categories": [c for c in gt["categories"] if c["id"] in keep_cats],
        "annotations": [
            a for a in gt["annotations"] if a["image_id"] in keep_imgs and a["category_id"] in keep_cats
        ],
    }
    results: list[dict[str, Any]] = []
    model_seconds = 0.0
    for start in tqdm(
        range(0, len(images), batch_size),
        desc=f"predict {split}",
        disable=not show_progress,
        dynamic_ncols=True,
        leave=False,
    ):
        batch = images[start : start + batch_size]
        pil_images = [read_image(images_dir / im["file_name"]) for im in batch]
        tic = time.perf_counter()
        preds = predictor.predict(pil_images, batch_size=batch_size)
        model_seconds += time.perf_counter() - tic
        for im, pred in zip(batch, preds, strict=True):
            results += predictor.to_coco_results(pred, im["id"])
    metrics = evaluate(gt, results, iou_types=iou_types, show_progress=False)
    return metrics, results, model_seconds, len(images)


def write_curve_point(run_dir: Path, point: dict[str, Any]) -> None:
    """Add (or replace) the learning-curve point of ``point['iteration']``, keeping the file sorted."""
    run = RunDir(run_dir)
    points = sorted(
        [p for p in run.curve() if p["iteration"] != point["iteration"]] + [point],
        key=lambda p: p["iteration"],
    )
    checkpoint.write_text_atomic(run.curve_file, "".join(json.dumps(p) + "\n" for p in points))


def speed_entry(
    log: list[dict[str, Any]], model_seconds: float, images: int, device: str, batch_size: int
) -> dict[str, Any]:
    """``metrics.json``'s ``speed``: the median training seconds per iteration of the run's log (its first
    interval left out when there are others), the model's inference milliseconds per image, and what that
    was measured under: device, images timed, inference batch and warm-up batches."""
    times = [r["time"] for r in log]
    return {
        "train_s_per_iter": float(np.median(times[1:] if len(times) > 1 else times)) if times else None,
        "inference_ms_per_image": 1000 * model_seconds / max(1, images),
        "device": device,
        "images": images,
        "batch_size": batch_size,
        "warmup_batches": WARMUP_BATCHES,
    }


def evaluate_run(
    run_dir: str | Path,
    split: str = "val",
    batch_size: int = 4,
    max_images: int | None = None,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Predict on a split with ``model_final.pt``; write ``predictions_<split>.json`` and ``metrics.json``.

    Returns the metrics dict (layout in ARCHITECTURE.md) with a ``speed`` entry: the median training
    seconds per iteration from ``metrics.jsonl`` and the model's inference milliseconds per image. The
    result is also the last point of the run's learning curve (``learning_curve.jsonl``).
    """
    run = RunDir(run_dir)
    cfg = run.config()
    predictor = Predictor.from_checkpoint(run.model_file, device=cfg.device)
    metrics, results, model_seconds, n_images = evaluate_predictor(
        predictor, cfg.data, split, batch_size, max_images, show_progress
    )
    checkpoint.write_text_atomic(run.predictions_file(split), json.dumps(results))
    log = run.log()
    metrics["speed"] = speed_entry(log, model_seconds, n_images, str(predictor.device), batch_size)
    checkpoint.write_text_atomic(run.metrics_file, json.dumps(metrics, indent=1))
    if split == "val" and log and log[-1]["iteration"] == cfg.solver.max_iter:
        write_curve_point(
            run.path, curve_point(cfg.solver.max_iter, log[-1].get("train_seconds", 0.0), metrics)
        )
    return metrics
