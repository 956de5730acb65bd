"""The fast path: Fashionpedia's attribute-aware AP^IoU+F1 and COCO's AP, the official tools' numbers.

The official tool is the ``fashionpedia`` package's ``FPEval`` (a ``COCOeval`` subclass). Its definition,
one image and category at a time, is written out in :mod:`fashionseg.evaluation.reference`, the
specification this fast path is tested to equal float for float:

- Per image and category, detections by decreasing score (at most 100) are matched greedily to the ground
  truths in COCO's order (crowd and out-of-area ground truths last). A pair qualifies when IoU >= t_iou AND
  attribute-F1 >= t_f1; a detection keeps the first qualifying ground truth, and a later one replaces it only
  when both its IoU and its F1 are at least the held ones. Crowd regions match once (COCO lets them match
  many times; FPEval's matcher does not).
- t_iou and t_f1 each run 0.50:0.05:0.95 plus a -1 entry that switches that constraint off: the -1 F1 entry
  gives the IoU-only family, the -1 IoU entry the F1-only family.
- Attribute-F1 of a pair is sklearn's ``f1_score(gt, pred, average="macro")`` of the two multi-hot vectors
  over all attributes listed in the ground-truth file (:func:`.pairs.attribute_f1_matrix`).
- Categories without attributes are matched by IoU alone with COCO's matcher (crowds match many times).
- Headline means run over "slices": each category with attributes gives one slice per F1 threshold (10),
  every other category one slice scored by IoU alone; Fashionpedia has 18*10 + 28 = 208. Slices without
  ground truth (-1) are left out of means.

The work runs in stages, each a module: :mod:`.instances` (flat arrays of ground truths and detections),
:mod:`.pairs` (the image-category pairs with both, bucketed by size, with their IoUs and F1s),
:mod:`.matching` (the greedy matching of a bucket's pairs together, over the 11 x 11 thresholds and 4 area
ranges at once), :mod:`.curves` (precision and recall, read out at the true positives only) and
:mod:`.summary` (the means). This module runs the first four; nothing loops over categories or detections.

COCO's AP (pycocotools' ``COCOeval``) comes out of the same pass, from the same IoUs: it is every category
matched by COCO's matcher, which the categories without attributes already are; only the categories with
attributes are matched once more, by IoU alone. Its curves are laid out as ``COCOeval.eval``'s, so that
:func:`.summary.coco_result` summarises them with pycocotools' own reductions and gets its exact floats.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

import numpy as np

from fashionseg.evaluation.curves import Accumulation, ScoreOrder, group_curves
from fashionseg.evaluation.instances import Instances, dt_instances, gt_instances, outside_area_ranges
from fashionseg.evaluation.matching import match_buckets
from fashionseg.evaluation.pairs import Bucket, pair_buckets
from fashionseg.evaluation.params import (
    AREA_RANGES,
    F1_THRESHOLDS,
    IOU_THRESHOLDS,
    MAX_DETECTIONS,
    RECALL_THRESHOLDS,
)
from fashionseg.evaluation.results import Predictions


def accumulate(
    gt: dict[str, Any],
    predictions: Predictions | Sequence[dict[str, Any]],
    iou_types: Sequence[str],
    attribute_category_ids: Collection[int],
    show_progress: bool = False,
) -> dict[str, Accumulation]:
    """FPEval's and COCOeval's ``evaluate`` + ``accumulate`` of checked ``predictions`` against ``gt``.

    ``gt`` is the annotation dict, ``predictions`` :class:`Predictions` or checked prediction dicts. One
    :class:`Accumulation` per IoU type of ``iou_types`` ("bbox": box IoU and area; "segm": mask IoU and
    area); ``attribute_category_ids`` are the categories FPEval matches on IoU and attribute-F1, the others
    by IoU alone. Work that does not depend on the IoU type (ordering, pairing, F1) is done once, and the
    IoUs once for both evaluators.
    """
    category_ids = tuple(sorted(c["id"] for c in gt["categories"]))
    num_cats = len(category_ids)
    with_attributes = np.array([c in set(attribute_category_ids) for c in category_ids], dtype=bool)
    if not isinstance(predictions, Predictions):
        predictions = Predictions.from_dicts(predictions, iou_types)
    gts = gt_instances(gt["annotations"], gt, iou_types, category_ids, with_attributes)
    dts = dt_instances(predictions, gt, category_ids, with_attributes)

    # Ground truths by (image, category) in file order; detections by (image, category, decreasing score),
    # the best 100 of each. Images in id order, as COCOeval concatenates them.
    gt_order = np.lexsort((gts.category, gts.image))
    dt_pair = dts.image * num_cats + dts.category
    dt_order = np.lexsort((-dts.score, dt_pair))
    dt_key = dt_pair[dt_order]
    rank = np.arange(dt_order.size) - np.searchsorted(dt_key, dt_key)
    kept = rank < MAX_DETECTIONS[-1]
    dt_order, dt_key, rank = dt_order[kept], dt_key[kept], rank[kept]
    gt_ignore = gts.crowd[:, None] | outside_area_ranges(gts.area[iou_types[0]])  # [n_gt, A]; all types
    buckets, candidates = pair_buckets(
        gts, dts, gt_order, dt_order, num_cats, with_attributes, iou_types, show_progress
    )
    order, rows = _score_order(dts, dt_order, dt_key % num_cats, rank, candidates, num_cats)
    return {
        iou_type: _accumulation(
            buckets,
            iou_type,
            gts,
            gt_ignore,
            candidates.size,
            order,
            outside_area_ranges(dts.area[iou_type][dt_order[rows]]),
            category_ids,
            with_attributes,
        )
        for iou_type in iou_types
    }


def _score_order(
    dts: Instances,
    dt_order: np.ndarray,
    category: np.ndarray,
    rank: np.ndarray,
    candidates: np.ndarray,
    num_cats: int,
) -> tuple[ScoreOrder, np.ndarray]:
    """The kept detections category after category, each by decreasing score (ties: image order, as
    COCOeval's stable sort of the images' lists laid end to end), and that order ``rows`` of ``dt_order``.

    ``category`` and ``rank`` [n] are the kept detections' (in ``dt_order``); ``candidates`` the ones in
    a pair with ground truth, which the matching results are indexed by.
    """
    rows = np.lexsort((-dts.score[dt_order], category))
    candidate_of = np.full(dt_order.size, -1)
    candidate_of[candidates] = np.arange(candidates.size)
    order = ScoreOrder(
        category[rows],
        np.searchsorted(category[rows], np.arange(num_cats + 1)),
        rank[rows],
        candidate_of[rows],
    )
    return order, rows


def _accumulation(
    buckets: dict[tuple[int, int, bool], Bucket],
    iou_type: str,
    gts: Instances,
    gt_ignore: np.ndarray,
    num_candidates: int,
    order: ScoreOrder,
    outside: np.ndarray,
    category_ids: tuple[int, ...],
    with_attributes: np.ndarray,
) -> Accumulation:
    """Both evaluators' curves for one IoU type: the buckets matched, then each group's curves."""
    num_cats = len(category_ids)
    num_gt = np.stack(  # [K, A] ground truths not ignored
        [np.bincount(gts.category[~ignore], minlength=num_cats) for ignore in gt_ignore.T], 1
    )
    fp, coco = match_buckets(buckets, iou_type, gts, gt_ignore, num_candidates)
    attribute_k, plain_k = np.flatnonzero(with_attributes), np.flatnonzero(~with_attributes)
    thresholds = (len(IOU_THRESHOLDS), len(F1_THRESHOLDS))
    precision = np.full((*thresholds, len(RECALL_THRESHOLDS), num_cats, len(AREA_RANGES)), -1.0)
    recall = np.full((*thresholds, num_cats, len(AREA_RANGES), len(MAX_DETECTIONS)), -1.0)
    coco_thresholds = len(IOU_THRESHOLDS) - 1  # COCO has no "IoU off" entry
    coco_precision = np.full((coco_thresholds, len(RECALL_THRESHOLDS), num_cats, len(AREA_RANGES)), -1.0)
    coco_recall = np.full((coco_thresholds, num_cats, len(AREA_RANGES), len(MAX_DETECTIONS)), -1.0)
    # FPEval on the categories with attributes: every IoU and F1 threshold.
    p, r = group_curves(*fp, attribute_k, order, outside, num_gt)
    precision[:, :, :, attribute_k], recall[:, :, attribute_k] = p, r
    # The others: COCO's matcher for both (FPEval fills only its F1 entry -1 for them).
    p, r = group_curves(*coco, plain_k, order, outside, num_gt)
    precision[:, -1:, :, plain_k], recall[:, -1:, plain_k] = p, r
    coco_precision[:, :, plain_k], coco_recall[:, plain_k] = p[:-1, 0], r[:-1, 0]
    # COCO on the categories with attributes: matched once more, by IoU alone.
    p, r = group_curves(coco[0][:, :-1], coco[1][:, :-1], attribute_k, order, outside, num_gt)
    coco_precision[:, :, attribute_k], coco_recall[:, attribute_k] = p[:, 0], r[:, 0]
    return Accumulation(precision, recall, category_ids, with_attributes, coco_precision, coco_recall)
