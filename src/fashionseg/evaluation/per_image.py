"""Per-image evaluation: how well one model's detections cover each validation image's ground truth
(pycocotools' mask IoU), the table the qualitative chapter picks its examples and failures from."""

from __future__ import annotations

import contextlib
import io
from typing import Any

import numpy as np
import pandas as pd

MISS_IOU = 0.5  # a ground-truth instance whose best mask IoU is below this counts as missed


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
    from pycocotools import mask as mask_utils
    from pycocotools.coco import COCO

    coco = COCO()
    coco.dataset = gt
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints "creating index..."
        coco.createIndex()
    by_image: dict[int, list[dict[str, Any]]] = {}
    for r in results:
        if r["score"] >= score_threshold:
            by_image.setdefault(r["image_id"], []).append(r)
    rows = {}
    for image_id in coco.getImgIds():
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[image_id], iscrowd=False))
        best = []
        for ann in anns:
            dets = [
                d["segmentation"]
                for d in by_image.get(image_id, [])
                if d["category_id"] == ann["category_id"]
            ]
            ious = mask_utils.iou(dets, [coco.annToRLE(ann)], [0]) if dets else np.zeros((0, 1))
            best.append(float(np.max(ious)) if len(dets) else 0.0)
        rows[image_id] = {
            "instances": len(anns),
            "missed": sum(b < iou_threshold for b in best),
            "mean_iou": float(np.mean(best)) if best else float("nan"),
        }
    table = pd.DataFrame(rows).T
    table.index.name = "image_id"
    return table.astype({"instances": int, "missed": int})
