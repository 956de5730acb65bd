"""Evaluating a training run: predict a split with its weights, score it, write the run's result files.

``evaluate_run(run_dir)`` writes ``predictions_<split>.json`` and ``metrics.json`` (with a ``speed`` entry)
and the final point of ``learning_curve.jsonl``; training adds the curve's earlier points through
:func:`evaluate_predictor` and :func:`write_curve_point`. Every file is written atomically.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from fashionseg import checkpoint
from fashionseg.config import read_config
from fashionseg.data.images import read_image
from fashionseg.evaluation import evaluate
from fashionseg.predict import Predictor

LEARNING_CURVE = "learning_curve.jsonl"


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


def curve_point(iteration: int, train_seconds: float, metrics: dict[str, Any]) -> dict[str, Any]:
    """One line of ``learning_curve.jsonl``: validation AP after ``iteration`` iterations and
    ``train_seconds`` of training (evaluation time excluded)."""
    point: dict[str, Any] = {"iteration": iteration, "train_seconds": round(train_seconds, 2)}
    for iou_type in ("bbox", "segm"):
        coco = metrics.get(iou_type, {}).get("coco", {})
        for key in ("AP", "AP50", "AP75"):
            if key in coco:
                point[f"{iou_type}_{key}"] = coco[key]
        iou_f1 = metrics.get(iou_type, {}).get("iou_f1", {})
        if "AP" in iou_f1:
            point[f"{iou_type}_AP_iou_f1"] = iou_f1["AP"]
    return point


def write_curve_point(run_dir: Path, point: dict[str, Any]) -> None:
    """Add (or replace) the learning-curve point of ``point['iteration']``, keeping the file sorted."""
    path = run_dir / LEARNING_CURVE
    points = [json.loads(line) for line in path.read_text().splitlines() if line] if path.exists() else []
    points = sorted(
        [p for p in points if p["iteration"] != point["iteration"]] + [point], key=lambda p: p["iteration"]
    )
    checkpoint.write_text_atomic(path, "".join(json.dumps(p) + "\n" for p in points))


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
    run_dir = Path(run_dir)
    cfg = read_config(run_dir / "config.yaml")
    predictor = Predictor.from_checkpoint(run_dir / "model_final.pt", device=cfg.device)
    metrics, results, model_seconds, n_images = evaluate_predictor(
        predictor, cfg.data, split, batch_size, max_images, show_progress
    )
    checkpoint.write_text_atomic(run_dir / f"predictions_{split}.json", json.dumps(results))
    log = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line]
    times = [r["time"] for r in log]
    metrics["speed"] = {
        "train_s_per_iter": float(np.median(times[1:] if len(times) > 1 else times)) if times else None,
        "inference_ms_per_image": 1000 * model_seconds / max(1, n_images),
        "device": str(predictor.device),
        "images": n_images,
    }
    checkpoint.write_text_atomic(run_dir / "metrics.json", json.dumps(metrics, indent=1))
    if split == "val" and log and log[-1]["iteration"] == cfg.solver.max_iter:
        write_curve_point(
            run_dir, curve_point(cfg.solver.max_iter, log[-1].get("train_seconds", 0.0), metrics)
        )
    return metrics
