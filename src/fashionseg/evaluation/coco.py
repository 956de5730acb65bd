"""COCO box and mask AP, on the 0-100 scale detectron2 reports, with pycocotools' exact numbers.

The curves come from :func:`fashionseg.evaluation.attribute_ap.accumulate`, the one vectorised pass that also
computes the Fashionpedia metric from the same IoUs: pycocotools' ``COCOeval`` loops over images in Python
and took 87% of an evaluation. :func:`coco_result` summarises the curves with ``COCOeval.summarize``'s own
reductions over the same array layout, so each number is the float pycocotools gives.
:func:`pycocotools_evaluate` runs ``COCOeval`` itself: the reference the tests and the benchmark compare with.

For mask AP a prediction's area is its mask's: with a box present, pycocotools' ``loadRes`` takes the box area
as the detection's area, which changes the small/medium/large split (detectron2 drops the box for the same
reason, and so does :func:`pycocotools_evaluate`). AP, AP50 and AP75 do not depend on it.
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

from fashionseg.evaluation.attribute_ap import AREA_RANGES, IOU_THRESHOLDS, MAX_DETECTIONS

COCO_KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl")
# COCOeval.summarize's 12 numbers: (AP or AR, IoU threshold or None for all, area range, detection limit).
_SUMMARIES = (
    (True, None, "all", 100),
    (True, 0.5, "all", 100),
    (True, 0.75, "all", 100),
    (True, None, "small", 100),
    (True, None, "medium", 100),
    (True, None, "large", 100),
    (False, None, "all", 1),
    (False, None, "all", 10),
    (False, None, "all", 100),
    (False, None, "small", 100),
    (False, None, "medium", 100),
    (False, None, "large", 100),
)


@dataclass(frozen=True)
class CocoResult:
    """``stats``: pycocotools' 12 summary numbers (0-1, -1 where there is no ground truth).

    ``precision``: ``COCOeval.eval["precision"]`` at 100 detections [T=10 IoU thresholds, R=101 recall
    thresholds, K categories, A=4 area ranges]; ``category_ids`` [K] its category order.
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
        values = self.precision[:, :, index, 0]
        return _percent(float(np.mean(values[values > -1]))) if np.any(values > -1) else None


def coco_result(precision: np.ndarray, recall: np.ndarray, category_ids: Sequence[int]) -> CocoResult:
    """``COCOeval.summarize`` of ``precision`` [T, R, K, A] (100 detections) and ``recall`` [T, K, A, M].

    The same selections and ``np.mean`` over arrays of pycocotools' layout: the mean sees the same values in
    the same order, so the summaries are pycocotools' floats, not just close to them.
    """
    areas, limits = list(AREA_RANGES), list(MAX_DETECTIONS)
    stats = np.zeros(len(_SUMMARIES))
    for i, (is_ap, iou_thr, area, max_det) in enumerate(_SUMMARIES):
        s = precision if is_ap else recall
        if iou_thr is not None:
            s = s[np.where(iou_thr == IOU_THRESHOLDS[:-1])[0]]
        s = (
            s[:, :, :, [areas.index(area)]]
            if is_ap
            else s[:, :, [areas.index(area)], [limits.index(max_det)]]
        )
        stats[i] = np.mean(s[s > -1]) if np.any(s > -1) else -1
    return CocoResult(stats, precision, tuple(int(c) for c in category_ids))


def pycocotools_evaluate(
    gt: dict[str, Any], predictions: Sequence[dict[str, Any]], iou_type: str
) -> CocoResult:
    """pycocotools' ``COCOeval`` of checked ``predictions`` against the annotation dict ``gt`` (bbox|segm).

    The reference for :func:`coco_result` (tests, benchmark). Neither input is modified (pycocotools writes
    into the dicts it is given; it gets copies).
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
        evaluator.eval["precision"][..., -1],
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
