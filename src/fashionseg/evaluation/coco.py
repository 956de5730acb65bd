"""COCO box and mask AP through pycocotools' ``COCOeval``, on the 0-100 scale detectron2 reports.

For mask AP the predictions go to ``loadRes`` without their ``bbox``: with a box present, pycocotools takes
the box area as the detection's area, which changes the small/medium/large split (detectron2 drops the box
for the same reason). AP, AP50 and AP75 do not depend on it.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

COCO_KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl")


@dataclass(frozen=True)
class CocoResult:
    """``stats``: pycocotools' 12 summary numbers (0-1, -1 where there is no ground truth).

    ``precision``: ``COCOeval.eval["precision"]`` [T=10 IoU thresholds, R=101 recall thresholds,
    K categories, A=4 area ranges, M=3 detection limits]; ``category_ids`` [K] its category order.
    """

    stats: np.ndarray
    precision: np.ndarray
    category_ids: tuple[int, ...]

    def metrics(self) -> dict[str, float | None]:
        """AP, AP50, AP75, APs, APm, APl on the 0-100 scale; None where there is no ground truth."""
        return {key: _percent(value) for key, value in zip(COCO_KEYS, self.stats[:6], strict=True)}

    def category_ap(self, category_ids: Sequence[int]) -> float | None:
        """AP (IoU 0.50:0.95, all areas, 100 detections) over these categories' precision, 0-100 scale."""
        index = [self.category_ids.index(c) for c in category_ids]
        values = self.precision[:, :, index, 0, -1]
        return _percent(float(np.mean(values[values > -1]))) if np.any(values > -1) else None


def coco_evaluate(gt: dict[str, Any], predictions: Sequence[dict[str, Any]], iou_type: str) -> CocoResult:
    """COCOeval of checked ``predictions`` against the annotation dict ``gt`` for ``iou_type`` (bbox|segm).

    Neither input is modified (pycocotools writes into the dicts it is given; it gets copies).
    """
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = coco_from_dict(gt)
        coco_dt = results_coco(coco_gt, predictions, iou_type)
        evaluator = COCOeval(coco_gt, coco_dt, iou_type)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return CocoResult(
        np.asarray(evaluator.stats, dtype=np.float64),
        evaluator.eval["precision"],
        tuple(int(c) for c in evaluator.params.catIds),
    )


def coco_from_dict(gt: dict[str, Any]) -> COCO:
    """A pycocotools ``COCO`` index over shallow copies of ``gt``'s annotations."""
    coco = COCO()
    coco.dataset = {**gt, "annotations": [dict(a) for a in gt["annotations"]]}
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def results_coco(coco_gt: COCO, predictions: Sequence[dict[str, Any]], iou_type: str) -> COCO:
    """``coco_gt.loadRes`` of copies of ``predictions`` (no ``bbox`` for segm); an empty index for none.

    ``loadRes`` itself fails on an empty list, yet no predictions is a valid input scoring 0.
    """
    if not predictions:
        empty = COCO()
        empty.dataset = {"images": coco_gt.dataset["images"], "categories": coco_gt.dataset["categories"]}
        empty.dataset["annotations"] = []
        with contextlib.redirect_stdout(io.StringIO()):
            empty.createIndex()
        return empty
    drop = "bbox" if iou_type == "segm" else "segmentation"
    copies = [{k: v for k, v in p.items() if k != drop} for p in predictions]
    with contextlib.redirect_stdout(io.StringIO()):
        return coco_gt.loadRes(copies)


def _percent(value: float) -> float | None:
    return None if value < 0 else 100.0 * float(value)
