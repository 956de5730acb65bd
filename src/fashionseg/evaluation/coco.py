"""COCO box and mask AP by pycocotools' own ``COCOeval``: the reference the fast path is tested against.

The metrics themselves come from the fast path (:func:`fashionseg.evaluation.accumulate`,
then :func:`fashionseg.evaluation.summary.coco_result`), the one vectorised pass that also computes the
Fashionpedia metric from the same IoUs: pycocotools' ``COCOeval`` loops over images in Python and took 87%
of an evaluation. :func:`pycocotools_evaluate` runs ``COCOeval`` itself (tests, benchmark); the bootstrap
uses its matching (:mod:`fashionseg.evaluation.bootstrap`).

For mask AP a prediction's area is its mask's: with a box present, pycocotools' ``loadRes`` takes the box area
as the detection's area, which changes the small/medium/large split (detectron2 drops the box for the same
reason, and so does :func:`pycocotools_evaluate`). AP, AP50 and AP75 do not depend on it.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from typing import Any

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from fashionseg.evaluation.summary import CocoResult


def pycocotools_evaluate(
    gt: dict[str, Any], predictions: Sequence[dict[str, Any]], iou_type: str
) -> CocoResult:
    """pycocotools' ``COCOeval`` of checked ``predictions`` against the annotation dict ``gt`` (bbox|segm).

    The reference for :func:`fashionseg.evaluation.summary.coco_result` (tests, benchmark). Neither input is
    modified (pycocotools writes into the dicts it is given; it gets copies).
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
