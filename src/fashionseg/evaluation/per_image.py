"""Per-image evaluation: how well one model's detections cover each validation image's ground truth
(pycocotools' mask IoU), the table the qualitative chapter picks its examples and failures from, and the
same coverage per category."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from fashionseg.errors import FashionsegError
from fashionseg.evaluation.coco import coco_from_dict

if TYPE_CHECKING:
    from pycocotools.coco import COCO

MISS_IOU = 0.5  # a ground-truth instance whose best mask IoU is below this counts as missed


def _best_ious(
    coco: COCO, results: list[dict[str, Any]], score_threshold: float
) -> dict[int, list[tuple[dict[str, Any], float]]]:
    """Per image id, each non-crowd ground-truth instance with its best mask IoU (0 without a detection)
    among detections of its category scoring at least ``score_threshold``.

    image_quality and missed_by_category both read this, so their counts of missed instances agree.
    """
    from pycocotools import mask as mask_utils

    by_image: dict[int, list[dict[str, Any]]] = {}
    for r in results:
        if r["score"] >= score_threshold:
            by_image.setdefault(r["image_id"], []).append(r)
    best: dict[int, list[tuple[dict[str, Any], float]]] = {}
    for image_id in coco.getImgIds():
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[image_id], iscrowd=False))
        best[image_id] = []
        for ann in anns:
            dets = [
                d["segmentation"]
                for d in by_image.get(image_id, [])
                if d["category_id"] == ann["category_id"]
            ]
            ious = mask_utils.iou(dets, [coco.annToRLE(ann)], [0]) if dets else np.zeros((0, 1))
            best[image_id].append((ann, float(np.max(ious)) if len(dets) else 0.0))
    return best


def image_quality(
    gt: dict[str, Any],
    results: list[dict[str, Any]],
    score_threshold: float = 0.5,
    iou_threshold: float = MISS_IOU,
) -> pd.DataFrame:
    """Per image of an annotation file, how well one model's detections cover its ground truth.

    For each ground-truth instance: the best mask IoU among detections of its category scoring at least
    ``score_threshold``. Columns: ``instances``, ``missed`` (best IoU < ``iou_threshold``), ``mean_iou``
    (mean best IoU; NaN for an image without ground truth). Index: image id.
    """
    rows = {}
    for image_id, pairs in _best_ious(coco_from_dict(gt), results, score_threshold).items():
        best = [iou for _, iou in pairs]
        rows[image_id] = {
            "instances": len(best),
            "missed": sum(b < iou_threshold for b in best),
            "mean_iou": float(np.mean(best)) if best else float("nan"),
        }
    table = pd.DataFrame(rows).T
    table.index.name = "image_id"
    return table.astype({"instances": int, "missed": int})


def missed_by_category(
    gt: dict[str, Any],
    results: list[dict[str, Any]],
    score_threshold: float = 0.5,
    iou_threshold: float = MISS_IOU,
) -> pd.DataFrame:
    """Per ground-truth category, how many of its instances one model misses, by image_quality's rule.

    Columns: ``instances``, ``missed`` (best mask IoU among same-category detections scoring at least
    ``score_threshold`` is below ``iou_threshold``), ``missed_share`` (missed / instances, 0-1). Index:
    category name (from the annotation dict's ``categories``), in category id order; only categories with
    ground truth.
    """
    coco = coco_from_dict(gt)
    counts: dict[int, list[int]] = {}
    for pairs in _best_ious(coco, results, score_threshold).values():
        for ann, iou in pairs:
            count = counts.setdefault(ann["category_id"], [0, 0])
            count[0] += 1
            count[1] += iou < iou_threshold
    rows = {}
    for category_id in sorted(counts):
        if category_id not in coco.cats:
            raise FashionsegError(
                f"ground-truth category id {category_id} is not in the annotation dict's categories list"
            )
        instances, missed = counts[category_id]
        rows[coco.cats[category_id]["name"]] = {
            "instances": instances,
            "missed": missed,
            "missed_share": missed / instances,
        }
    table = pd.DataFrame.from_dict(rows, orient="index", columns=["instances", "missed", "missed_share"])
    table.index.name = "category"
    return table.astype({"instances": int, "missed": int, "missed_share": float})
