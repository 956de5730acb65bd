"""Fashionpedia's attribute-aware average precision, AP^IoU+F1, with the official tool's numbers.

The official tool is the ``fashionpedia`` package's ``FPEval`` (a ``COCOeval`` subclass). This module keeps
its definition exactly and computes it with numpy:

- Per image and category, detections by decreasing score (at most 100) are matched greedily to the ground
  truths in COCO's order (crowd and out-of-area ground truths last). A pair qualifies when IoU >= t_iou AND
  attribute-F1 >= t_f1; a detection keeps the first qualifying ground truth, and a later one replaces it only
  when both its IoU and its F1 are at least the held ones. Crowd regions match once (COCO lets them match
  many times; FPEval's matcher does not).
- t_iou and t_f1 each run 0.50:0.05:0.95 plus a -1 entry that switches that constraint off: the -1 F1 entry
  gives the IoU-only family, the -1 IoU entry the F1-only family.
- Attribute-F1 of a pair is sklearn's ``f1_score(gt, pred, average="macro")`` of the two multi-hot vectors
  over all attributes listed in the ground-truth file (:func:`attribute_f1_matrix`).
- Categories without attributes are matched by IoU alone with COCO's matcher (crowds match many times).
- Headline means run over "slices": each category with attributes gives one slice per F1 threshold (10),
  every other category one slice scored by IoU alone; Fashionpedia has 18*10 + 28 = 208. Slices without
  ground truth (-1) are left out of means.

The work is vectorised over the 11 x 11 thresholds and 4 area ranges at once, and over image-category pairs
bucketed by their numbers of detections and ground truths (the F1 matrices of a bucket are one matrix
product; a bucket's pairs are matched together, detection after detection, or at once when they have one
ground truth). Only detections in a pair with ground truth enter the per-threshold tables (the others are
false positives, or ignored outside an area range, whatever the thresholds), and all categories' curves are
read out together, at the true positives only: nothing loops over categories or detections.

COCO's AP (pycocotools' ``COCOeval``) comes out of the same pass, from the same IoUs: it is every category
matched by COCO's matcher, which the categories without attributes already are; only the categories with
attributes are matched once more, by IoU alone. Its curves are laid out as ``COCOeval.eval``'s, so that
:mod:`fashionseg.evaluation.coco` summarises them with pycocotools' own reductions and gets its exact floats.
Box IoUs are computed here with pycocotools' own float operations; mask IoUs by pycocotools, once an image.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain, compress
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils
from tqdm.auto import tqdm

from fashionseg.evaluation.results import Predictions, sorted_ranks

# Exactly pycocotools' thresholds (np.linspace, not np.arange, whose points drift) plus FPEval's -1 entry.
IOU_THRESHOLDS = np.append(np.linspace(0.5, 0.95, 10), -1.0)
F1_THRESHOLDS = np.append(np.linspace(0.5, 0.95, 10), -1.0)
RECALL_THRESHOLDS = np.linspace(0.0, 1.0, 101)
AREA_RANGES = {"all": (0, 1e5**2), "small": (0, 32**2), "medium": (32**2, 96**2), "large": (96**2, 1e5**2)}
MAX_DETECTIONS = (1, 10, 100)
FAMILIES = ("iou_f1", "iou", "f1")
SUPERCATEGORY_KEYS = {"outerwear": "APo", "accessory": "APa", "part": "APp"}

_AREA_LOW = np.array([lo for lo, _ in AREA_RANGES.values()], dtype=np.float64)
_AREA_HIGH = np.array([hi for _, hi in AREA_RANGES.values()], dtype=np.float64)
_CURVE_CHUNK = 1 << 22  # detections x curves handled at once in accumulate
_CURVES_AT_ONCE = 512  # curves whose precision is read out together


@dataclass(frozen=True)
class Accumulation:
    """FPEval's accumulated curves for one IoU type.

    ``precision`` [Ti=11, Tf=11, R=101, K, A=4] and ``recall`` [Ti, Tf, K, A, M=3] over the IoU and F1
    thresholds (last entry -1: constraint off), recall thresholds, categories ``category_ids`` [K], area
    ranges (all, small, medium, large) and detection limits (1, 10, 100); -1 where a category has no ground
    truth in that area. Precision is kept at 100 detections only, the one limit FPEval's AP summaries read.
    Categories without attributes (``with_attributes`` [K] False) fill only Tf = -1.

    ``coco_precision`` [T=10, R, K, A] and ``coco_recall`` [T, K, A, M] are ``COCOeval.eval``'s precision
    (at 100 detections, the one limit its AP summaries read) and recall: every category matched by IoU
    alone, crowd regions many times.
    """

    precision: np.ndarray
    recall: np.ndarray
    category_ids: tuple[int, ...]
    with_attributes: np.ndarray
    coco_precision: np.ndarray
    coco_recall: np.ndarray


def attribute_f1_matrix(dt_attributes: np.ndarray, gt_attributes: np.ndarray) -> np.ndarray:
    """Attribute-F1 of each detection-ground truth pair: bool [..., D, N], [..., G, N] -> float64 [..., D, G].

    N is the number of attributes in the ground-truth file. The F1 is sklearn's binary "macro" average:
    the mean, over the classes 1 and 0 present in either vector, of 2*tp / (true count + predicted count),
    so two empty lists give 1.0 and {a} against {} gives (0 + 2(N-1)/(2N-1)) / 2, about 0.499 for N = 294.
    Computed from the counts with the same floating-point operations as sklearn, so thresholds tie alike.
    """
    num = dt_attributes.shape[-1]
    dt = dt_attributes.astype(np.float64)
    gt = gt_attributes.astype(np.float64)
    tp = dt @ np.swapaxes(gt, -1, -2)
    n_dt = dt.sum(axis=-1)[..., :, None]
    n_gt = gt.sum(axis=-1)[..., None, :]
    pos_den = n_gt + n_dt
    neg_den = (num - n_gt) + (num - n_dt)
    f_pos = np.divide(2.0 * tp, pos_den, out=np.zeros_like(tp), where=pos_den > 0)
    f_neg = np.divide(2.0 * (num - n_dt - n_gt + tp), neg_den, out=np.zeros_like(tp), where=neg_den > 0)
    present = (pos_den > 0).astype(np.float64) + (neg_den > 0)
    return (f_neg + f_pos) / present


def match_detections(
    ious: np.ndarray,
    f1s: np.ndarray | None,
    gt_ignore: np.ndarray,
    gt_reusable: np.ndarray,
    gt_id_zero: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """FPEval's (or, with ``f1s=None``, COCOeval's) greedy matching of P image-category pairs at once.

    ``ious`` [P, D, G] with detections by decreasing score; ``f1s`` [P, D, G] attribute F1, or None to
    match by IoU alone (the F1 axis then has one entry, -1); ``gt_ignore`` bool [P, G, A] crowd or outside
    area range a; ``gt_reusable`` bool [P, G] may match several detections (COCO's crowd rule);
    ``gt_id_zero`` bool [P, G] ground truths with id 0, whose matches pycocotools stores as "unmatched".
    Returns ``matched`` and ``on_ignored`` bool [P, D, Ti, Tf, A]: the detection counts as a match, and
    the ground truth it took is ignored (to be read only: they may be broadcast views).
    """
    num_pairs, num_dt, num_gt = ious.shape
    num_areas = gt_ignore.shape[2]
    f1_thresholds = F1_THRESHOLDS if f1s is not None else F1_THRESHOLDS[-1:]
    shape = (num_pairs, len(IOU_THRESHOLDS), len(f1_thresholds), num_areas)
    start_iou = np.minimum(IOU_THRESHOLDS, 1 - 1e-10)[None, None, :, None, None]
    start_f1 = np.minimum(f1_thresholds, 1 - 1e-10)[None, None, None, :, None]
    if num_gt == 1:  # one ground truth: the first detection that qualifies takes it (all, for a crowd)
        # Which detection that is does not depend on the area range: found once, broadcast over A.
        ok = ious[:, :, :, None, None] >= start_iou  # [P, D, Ti, 1, 1]
        if f1s is not None:
            ok = ok & (f1s[:, :, :, None, None] >= start_f1)  # [P, D, Ti, Tf, 1]
        first = (np.arange(num_dt)[None, :, None, None, None] == np.argmax(ok, axis=1)[:, None]) & ok
        matched = ok & (first | gt_reusable[:, None, :, None, None])
        on_ignored = matched & gt_ignore[:, None, :, None, :]
        full = (num_pairs, num_dt, *shape[1:])
        return np.broadcast_to(matched & ~gt_id_zero[:, None, :, None, None], full), on_ignored
    if f1s is None:
        return _match_by_iou(ious, gt_ignore, gt_reusable, gt_id_zero)
    if num_areas > 1:
        # Area ranges that ignore the same ground truths of a pair match alike (often "all" and the range
        # holding them all): match each (pair, ignore pattern) once, as a pair with a single area range.
        pair_area = np.repeat(np.arange(num_pairs), num_areas)[:, None]
        patterns = np.concatenate([pair_area, gt_ignore.transpose(0, 2, 1).reshape(-1, num_gt)], axis=1)
        unique, inverse = np.unique(patterns, axis=0, return_inverse=True)
        pair, ignore = unique[:, 0], unique[:, 1:, None].astype(bool)
        f1_of_pair = None if f1s is None else f1s[pair]
        matched, on_ignored = match_detections(
            ious[pair], f1_of_pair, ignore, gt_reusable[pair], gt_id_zero[pair]
        )
        back = inverse.reshape(num_pairs, num_areas)  # [P, A] -> pattern
        return matched[back, ..., 0].transpose(0, 2, 3, 4, 1), on_ignored[back, ..., 0].transpose(
            0, 2, 3, 4, 1
        )
    # COCO scans ground truths with the ignored ones last (stable), separately for every area range.
    # Below, ground truths are indexed by that scan position j; arrays put j first for contiguous slices.
    order = np.argsort(gt_ignore, axis=1, kind="stable")
    ignore = np.take_along_axis(gt_ignore, order, 1).transpose(1, 0, 2)[:, :, None, None, :]
    reusable = np.take_along_axis(gt_reusable[:, :, None], order, 1).transpose(1, 0, 2)[:, :, None, None, :]
    id_zero = np.take_along_axis(gt_id_zero[:, :, None], order, 1).transpose(1, 0, 2)[:, :, None, None, :]
    iou = _in_scan_order(ious, order)
    f1 = None if f1s is None else _in_scan_order(f1s, order)
    any_ignore, any_id_zero = bool(gt_ignore.any()), bool(gt_id_zero.any())
    start_iou, start_f1 = np.broadcast_to(start_iou[0], shape), np.broadcast_to(start_f1[0], shape)
    free = np.ones((num_gt, *shape), dtype=bool)
    matched = np.zeros((num_dt, *shape), dtype=bool)
    on_ignored = np.zeros_like(matched)
    for d in range(num_dt):
        held_iou = start_iou.copy()
        held_f1 = start_f1.copy()
        best = np.full(shape, -1, dtype=np.int32)
        regular = np.zeros(shape, dtype=bool)  # holds a match to a ground truth that is not ignored
        for j in range(num_gt):
            ok = iou[d, j] >= held_iou
            if f1 is not None:
                ok &= f1[d, j] >= held_f1
            ok &= free[j]
            if any_ignore:  # COCO stops at the ignored ground truths once it holds a regular match
                ok &= ~(ignore[j] & regular)
                np.copyto(regular, ~ignore[j], where=ok)
            np.copyto(held_iou, iou[d, j], where=ok)
            if f1 is not None:
                np.copyto(held_f1, f1[d, j], where=ok)
            np.copyto(best, j, where=ok)
        found = best >= 0
        matched[d] = found
        if any_ignore:
            on_ignored[d] = found & ~regular
        for j in range(num_gt):
            took = best == j
            free[j] &= ~took | reusable[j]
            if any_id_zero:
                matched[d] &= ~(took & id_zero[j])
    return matched.transpose(1, 0, 2, 3, 4), on_ignored.transpose(1, 0, 2, 3, 4)


def _match_by_iou(
    ious: np.ndarray, gt_ignore: np.ndarray, gt_reusable: np.ndarray, gt_id_zero: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """COCOeval's matching for :func:`match_detections`, all ground truths of a detection at once.

    COCO's scan keeps the free ground truth of highest IoU at or above the threshold, the later one of a tie,
    among the ones not ignored, or among the ignored ones when no other qualifies: an argmax, where FPEval's
    two-sided rule needs the scan.
    """
    num_pairs, num_dt, num_gt = ious.shape
    shape = (num_pairs, len(IOU_THRESHOLDS), 1, gt_ignore.shape[2])
    start_iou = np.minimum(IOU_THRESHOLDS, 1 - 1e-10)[None, None, :, None, None]  # [1, 1, Ti, 1, 1]
    ignore = gt_ignore[:, :, None, None, :]  # [P, G, 1, 1, A]
    reusable = gt_reusable[:, :, None, None, None]
    id_zero = gt_id_zero[:, :, None, None, None]
    scan = np.arange(num_gt)[None, :, None, None, None]
    free = np.ones((num_pairs, num_gt, *shape[1:]), dtype=bool)
    matched = np.zeros((num_pairs, num_dt, *shape[1:]), dtype=bool)
    on_ignored = np.zeros_like(matched)
    for d in range(num_dt):
        iou = ious[:, d, :, None, None, None]  # [P, G, 1, 1, 1]
        ok = (iou >= start_iou) & free
        regular = ok & ~ignore
        any_regular = regular.any(axis=1)
        pool = np.where(any_regular[:, None], regular, ok)
        found = pool.any(axis=1)
        best = num_gt - 1 - np.argmax(np.where(pool, iou, -np.inf)[:, ::-1], axis=1)  # the later of a tie
        took = (scan == best[:, None]) & found[:, None]
        free &= ~took | reusable
        matched[:, d] = found & ~(took & id_zero).any(axis=1)
        on_ignored[:, d] = found & ~any_regular
    return matched, on_ignored


def _in_scan_order(values: np.ndarray, order: np.ndarray) -> np.ndarray:
    """[P, D, G] pair values -> [D, J, P, 1, 1, A]: ground truths in scan order ``order`` [P, G, A]."""
    ordered = np.take_along_axis(values[..., None], order[:, None], 2)  # [P, D, J, A]
    return ordered.transpose(1, 2, 0, 3)[:, :, :, None, None, :]


def precision_recall(
    tps: np.ndarray, neutral: np.ndarray, rank: np.ndarray, num_gt: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """COCO's interpolated precision at the 101 recall thresholds, and recall, for X curves at once.

    ``tps``, ``neutral`` bool [X, n]: per curve and detection (by decreasing score), a true positive, or
    ignored (neither true nor false positive); every other detection is a false positive. ``rank`` [n] the
    detection's place in its image's list, ``num_gt`` int [X] > 0 ground truths per curve.
    Returns precision [X, R=101] (at 100 detections) and recall [X, M=3] (at 1, 10, 100 detections), the
    same floats as ``COCOeval.accumulate``.
    """
    curve, row = np.nonzero(tps)  # true positives, curve after curve, by rank
    seen = np.cumsum(~neutral, axis=1, dtype=np.int32)[curve, row]  # = tp + fp there
    return curves_at_true_positives(curve, rank[row], seen, num_gt)


def curves_at_true_positives(
    curve: np.ndarray, rank: np.ndarray, seen: np.ndarray, num_gt: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`precision_recall` from the true positives alone: their curve, rank and detections seen.

    ``curve`` int [t] sorted (each curve's true positives together, by decreasing score), ``rank`` [t] their
    places in their images' lists, ``seen`` [t] the true and false positives of their curve up to and
    including them; ``num_gt`` int [X] ground truths per curve. Curves without ground truth get -1.

    Precision rises only at true positives, so COCO's running maximum from the right, read at the first
    detection reaching a recall, is the maximum over that and the later true positives: the maxima of the
    stretches between the thresholds' true positives (one ``maximum.reduceat``), then a running maximum
    over the 101 thresholds.
    """
    num_curves = num_gt.size
    precision = -np.ones((num_curves, len(RECALL_THRESHOLDS)))
    recall = -np.ones((num_curves, len(MAX_DETECTIONS)))
    scored = np.flatnonzero(num_gt > 0)  # true positives need ground truth: all of them are on these
    if not scored.size:
        return precision, recall
    compact = np.zeros(num_curves, dtype=np.int64)
    compact[scored] = np.arange(scored.size)
    curve = compact[curve]
    num_gt = num_gt[scored]
    found = np.bincount(curve, minlength=scored.size)
    first = np.r_[0, np.cumsum(found)[:-1]]
    k = np.arange(curve.size) - first[curve] + 1  # the k-th true positive of its curve
    value = k / (np.asarray(seen, dtype=np.float64) + np.spacing(1))
    # COCO takes the first detection whose recall tp/num_gt reaches each threshold: x -> x/num_gt is monotone
    # in floating point, so that is the need-th true positive, need being the smallest count that reaches
    # it (the first detection for need 0; none, precision 0, when the curve has fewer).
    counts, which = np.unique(num_gt, return_inverse=True)
    need = recall_steps(counts)[which.ravel()]  # [curves, R]
    out = np.zeros((scored.size, len(RECALL_THRESHOLDS)))
    active = np.flatnonzero(found)  # curves without a true positive keep precision 0
    if active.size:
        size = found[active, None]
        start = first[active, None] + np.clip(need[active] - 1, 0, size - 1)  # non-decreasing, in range
        suffix = np.maximum.reduceat(value, start.ravel()).reshape(start.shape).T.copy()  # [R, curves]
        for r in range(len(RECALL_THRESHOLDS) - 2, -1, -1):  # a row at a time: 3x numpy's accumulate here
            np.maximum(suffix[r], suffix[r + 1], out=suffix[r])
        out[active] = np.where(need[active] <= size, suffix.T, 0.0)
    precision[scored] = out
    top = [np.bincount(curve[rank < m], minlength=scored.size) for m in MAX_DETECTIONS[:-1]]
    recall[scored] = np.stack([*top, found], axis=1) / num_gt[:, None]
    return precision, recall


def recall_steps(counts: np.ndarray) -> np.ndarray:
    """int [U, R]: for each ground-truth count c > 0, the fewest true positives k with k / c >= each recall
    threshold, in float64 as COCOeval's ``searchsorted(tp / c, recall_thresholds)`` compares them."""
    c = np.asarray(counts, dtype=np.int64)[:, None]
    k = np.clip(np.ceil(RECALL_THRESHOLDS * c).astype(np.int64), 0, c)  # off by one at most: rounding
    while True:
        lower = (k > 0) & ((k - 1) / c >= RECALL_THRESHOLDS)
        higher = (k < c) & (k / c < RECALL_THRESHOLDS)
        if not (lower.any() or higher.any()):
            return k
        k = k - lower + higher


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
    gts = _gt_instances(gt["annotations"], gt, iou_types, category_ids, with_attributes)
    dts = _dt_instances(predictions, gt, category_ids, with_attributes)

    # Ground truths by (image, category) in file order; detections by (image, category, decreasing score),
    # the best 100 of each. Images in id order, as COCOeval concatenates them.
    gt_order = np.lexsort((gts.category, gts.image))
    dt_pair = dts.image * num_cats + dts.category
    dt_order = np.lexsort((-dts.score, dt_pair))
    dt_key = dt_pair[dt_order]
    rank = np.arange(dt_order.size) - np.searchsorted(dt_key, dt_key)
    kept = rank < MAX_DETECTIONS[-1]
    dt_order, dt_key, rank = dt_order[kept], dt_key[kept], rank[kept]
    gt_ignore = gts.crowd[:, None] | _outside(gts.area[iou_types[0]])  # [n_gt, A]; same area for all types
    num_gt = np.stack([np.bincount(gts.category[~ignore], minlength=num_cats) for ignore in gt_ignore.T], 1)
    buckets, candidates = _pair_buckets(
        gts, dts, gt_order, dt_order, num_cats, with_attributes, iou_types, show_progress
    )
    f1s = {  # padding takes the last candidate's or first ground truth's attributes; its IoU never matches
        size: attribute_f1_matrix(
            dts.attribute_rows(dt_order[candidates[np.minimum(bucket.candidate, candidates.size - 1)]]),
            gts.attribute_rows(np.maximum(bucket.gt, 0)),
        )
        for size, bucket in buckets.items()
        if size[2]
    }
    # Kept detections category after category, each by decreasing score (ties: image order, as COCOeval's
    # stable sort of the images' lists laid end to end). Candidates: the ones in a pair with ground truth.
    category = dt_key % num_cats
    rows = np.lexsort((-dts.score[dt_order], category))
    candidate_of = np.full(dt_order.size, -1)
    candidate_of[candidates] = np.arange(candidates.size)
    order = _ScoreOrder(
        category[rows],
        np.searchsorted(category[rows], np.arange(num_cats + 1)),
        rank[rows],
        candidate_of[rows],
    )
    attribute_k, plain_k = np.flatnonzero(with_attributes), np.flatnonzero(~with_attributes)

    out = {}
    thresholds = (len(IOU_THRESHOLDS), len(F1_THRESHOLDS))
    for iou_type in iou_types:
        outside = _outside(dts.area[iou_type][dt_order[rows]])
        fp, coco = _match_buckets(buckets, f1s, iou_type, gts, gt_ignore, candidates.size)
        precision = np.full((*thresholds, len(RECALL_THRESHOLDS), num_cats, len(AREA_RANGES)), -1.0)
        recall = np.full((*thresholds, num_cats, len(AREA_RANGES), len(MAX_DETECTIONS)), -1.0)
        coco_thresholds = len(IOU_THRESHOLDS) - 1  # COCO has no "IoU off" entry
        coco_precision = np.full((coco_thresholds, len(RECALL_THRESHOLDS), num_cats, len(AREA_RANGES)), -1.0)
        coco_recall = np.full((coco_thresholds, num_cats, len(AREA_RANGES), len(MAX_DETECTIONS)), -1.0)
        # FPEval on the categories with attributes: every IoU and F1 threshold.
        p, r = _group_curves(*fp, attribute_k, order, outside, num_gt)
        precision[:, :, :, attribute_k], recall[:, :, attribute_k] = p, r
        # The others: COCO's matcher for both (FPEval fills only its F1 entry -1 for them).
        p, r = _group_curves(*coco, plain_k, order, outside, num_gt)
        precision[:, -1:, :, plain_k], recall[:, -1:, plain_k] = p, r
        coco_precision[:, :, plain_k], coco_recall[:, plain_k] = p[:-1, 0], r[:-1, 0]
        # COCO on the categories with attributes: matched once more, by IoU alone.
        p, r = _group_curves(coco[0][:, :-1], coco[1][:, :-1], attribute_k, order, outside, num_gt)
        coco_precision[:, :, attribute_k], coco_recall[:, attribute_k] = p[:, 0], r[:, 0]
        out[iou_type] = Accumulation(
            precision, recall, category_ids, with_attributes, coco_precision, coco_recall
        )
    return out


@dataclass(frozen=True)
class _ScoreOrder:
    """The kept detections category after category, each by decreasing score, as n parallel arrays."""

    category: np.ndarray  # int [n] category index, ascending
    bounds: np.ndarray  # int [K + 1] where each category's detections start
    rank: np.ndarray  # int [n] place in the image's list of the category
    candidate: np.ndarray  # int [n] index into the matching results; -1: no ground truth in the pair


def _group_curves(
    matched: np.ndarray,
    on_ignored: np.ndarray,
    members: np.ndarray,
    order: _ScoreOrder,
    outside: np.ndarray,
    num_gt: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Precision [Ti, F, R, K, A] (100 detections) and recall [Ti, F, K, A, M] of the categories ``members``.

    ``matched``, ``on_ignored`` bool [candidates, Ti, F, A] from the matching; ``outside`` bool [n, A] the
    detections (in ``order``) outside each area range; ``num_gt`` [categories, A] ground truths not ignored.
    All members' curves are computed together, and only the candidates go into the [curves, detections]
    tables: a detection without ground truth in its pair is a false positive, or ignored where it is
    outside the area range, whatever the thresholds, so it only adds to the counts before the next one.
    """
    num_iou, num_f1, num_areas = matched.shape[1:]
    num_curves, num_members = num_iou * num_f1 * num_areas, members.size
    if not num_members:
        return np.empty((num_iou, num_f1, len(RECALL_THRESHOLDS), 0, num_areas)), np.empty(
            (num_iou, num_f1, 0, num_areas, len(MAX_DETECTIONS))
        )
    group = np.full(order.bounds.size - 1, -1)
    group[members] = np.arange(num_members)
    # False positives without a candidate before each detection, per area range, within its category.
    free = (order.candidate < 0)[:, None] & ~outside
    before = np.cumsum(free, axis=0) - free
    start = np.r_[before, np.zeros((1, num_areas), dtype=before.dtype)][order.bounds[:-1]]
    before -= start[order.category]
    columns = np.flatnonzero((group[order.category] >= 0) & (order.candidate >= 0))
    index = order.candidate[columns]
    member = group[order.category[columns]]
    first_column = np.searchsorted(member, np.arange(num_members))  # each member's first column
    is_matched = matched[index]
    ignored = (on_ignored[index] | (~is_matched & outside[columns][:, None, None, :])).reshape(-1, num_curves)
    is_matched = is_matched.reshape(-1, num_curves)
    members_gt = num_gt[members].T  # [A, K]
    gt_per_curve = members_gt[np.arange(num_curves) % num_areas].ravel()  # curve x * K + member
    area_of = np.arange(num_curves) % num_areas
    precision = np.empty((num_curves * num_members, len(RECALL_THRESHOLDS)))
    recall = np.empty((num_curves * num_members, len(MAX_DETECTIONS)))
    # Threshold combinations a few at a time: their tables then stay in the CPU's cache.
    step = max(1, min(_CURVE_CHUNK // max(columns.size, 1), _CURVES_AT_ONCE // num_members))
    for lo in range(0, num_curves, step):
        hi = min(lo + step, num_curves)
        counted = ~ignored[:, lo:hi].T  # [x, columns]
        tps = is_matched[:, lo:hi].T & counted
        seen = np.cumsum(counted, axis=1, dtype=np.int32)
        x, column = np.nonzero(tps)
        m = member[column]
        first = first_column[m]
        # True and false positives up to the column in its category: its candidates' ones, from the
        # table, and the others' before it.
        seen_at = (
            seen[x, column] - seen[x, first] + counted[x, first] + before[columns[column], area_of[lo + x]]
        )
        curve = x * num_members + m  # curves lo*K .. hi*K, numbered from 0 here
        p, r = curves_at_true_positives(
            curve, order.rank[columns[column]], seen_at, gt_per_curve[lo * num_members : hi * num_members]
        )
        precision[lo * num_members : hi * num_members], recall[lo * num_members : hi * num_members] = p, r
    precision = precision.reshape(num_iou, num_f1, num_areas, num_members, -1).transpose(0, 1, 4, 3, 2)
    recall = recall.reshape(num_iou, num_f1, num_areas, num_members, -1).transpose(0, 1, 3, 2, 4)
    return precision, recall


def _match_buckets(
    buckets: dict[tuple[int, int, bool], _Bucket],
    f1s: dict[tuple[int, int, bool], np.ndarray],
    iou_type: str,
    gts: _Instances,
    gt_ignore: np.ndarray,
    num_candidates: int,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """FPEval's and COCOeval's (``matched``, ``on_ignored``) of the candidate detections, for one IoU type.

    FPEval's are bool [candidates, Ti, Tf, A], filled for the categories with attributes only; COCOeval's
    bool [candidates, Ti, 1, A], for all (FPEval matches the others as COCO does, so theirs serve both).
    """
    shape = (num_candidates + 1, len(IOU_THRESHOLDS), len(F1_THRESHOLDS), len(AREA_RANGES))
    matched = np.zeros(shape, dtype=bool)  # the last row: where the padding of the buckets lands
    on_ignored = np.zeros_like(matched)
    coco_matched = np.zeros((num_candidates + 1, len(IOU_THRESHOLDS), 1, len(AREA_RANGES)), dtype=bool)
    coco_on_ignored = np.zeros_like(coco_matched)
    for (_, _, attributes), bucket in buckets.items():
        real = bucket.gt >= 0  # padding: ignored by no area range, never matched (IoU -inf)
        ious, ignore = bucket.ious[iou_type], gt_ignore[bucket.gt] & real[..., None]
        crowd, id_zero = gts.crowd[bucket.gt] & real, gts.id_zero[bucket.gt] & real
        if attributes:
            m, o = match_detections(ious, f1s[bucket.size], ignore, np.zeros_like(crowd), id_zero)
            matched[bucket.candidate], on_ignored[bucket.candidate] = m, o
        m, o = match_detections(ious, None, ignore, crowd, id_zero)
        coco_matched[bucket.candidate], coco_on_ignored[bucket.candidate] = m, o
    return (matched[:-1], on_ignored[:-1]), (coco_matched[:-1], coco_on_ignored[:-1])


@dataclass(frozen=True)
class _Bucket:
    """Image-category pairs with the same (padded) numbers of detections and ground truths, stacked."""

    size: tuple[int, int, bool]  # (D, G, whether the category carries attributes)
    candidate: np.ndarray  # int [P, D] the detections' candidate indices; the number of candidates: padding
    gt: np.ndarray  # int [P, G] ground-truth indices; -1: padding
    ious: dict[str, np.ndarray]  # IoU type -> [P, D, G]


def _pair_buckets(
    gts: _Instances,
    dts: _Instances,
    gt_order: np.ndarray,
    dt_order: np.ndarray,
    num_cats: int,
    with_attributes: np.ndarray,
    iou_types: Sequence[str],
    show_progress: bool,
) -> tuple[dict[tuple[int, int, bool], _Bucket], np.ndarray]:
    """The image-category pairs that have both detections and ground truths, by (D, G, with attributes).

    Also returns the candidates: int [c] the positions (in ``dt_order``) of the pairs' detections, pair after
    pair; buckets refer to them by index. Mask IoUs come from one pycocotools call per image, each pair's
    block gathered from it; box IoUs are computed for the buckets' pairs alone (:func:`_box_iou`).
    """
    gt_keys, gt_start, gt_count = np.unique(
        gts.image[gt_order] * num_cats + gts.category[gt_order], return_index=True, return_counts=True
    )
    dt_keys, dt_start, dt_count = np.unique(
        dts.image[dt_order] * num_cats + dts.category[dt_order], return_index=True, return_counts=True
    )
    pairs, dt_pair, gt_pair = np.intersect1d(dt_keys, gt_keys, assume_unique=True, return_indices=True)
    # The pairs' detections (positions in dt_order) and ground truths, pair after pair, images in order.
    dt_start, dt_count, gt_start, gt_count = (
        dt_start[dt_pair],
        dt_count[dt_pair],
        gt_start[gt_pair],
        gt_count[gt_pair],
    )
    dt_offset, gt_offset = np.r_[0, np.cumsum(dt_count)], np.r_[0, np.cumsum(gt_count)]
    positions = np.repeat(dt_start - dt_offset[:-1], dt_count) + np.arange(dt_offset[-1])
    ground_truths = gt_order[np.repeat(gt_start - gt_offset[:-1], gt_count) + np.arange(gt_offset[-1])]

    image_first_pair = np.unique(pairs // num_cats, return_index=True)[1]
    image_of_pair = np.repeat(np.arange(image_first_pair.size), np.diff(np.r_[image_first_pair, pairs.size]))
    image_bounds = np.r_[image_first_pair, pairs.size]
    image_width = (gt_offset[image_bounds[1:]] - gt_offset[image_bounds[:-1]])[image_of_pair]  # [pairs]
    dt_bounds, gt_bounds = dt_offset[image_bounds].tolist(), gt_offset[image_bounds].tolist()
    # Mask IoUs: one pycocotools call per image. Box IoUs are computed per bucket below, with numpy.
    mask_types = [t for t in iou_types if t == "segm"]
    flat_ious: dict[str, list[np.ndarray]] = {t: [] for t in mask_types}
    for image in tqdm(
        range(image_first_pair.size if mask_types else 0),
        desc="evaluate (IoUs)",
        unit="image",
        disable=not show_progress,
        leave=False,
    ):
        d = dt_order[positions[dt_bounds[image] : dt_bounds[image + 1]]]
        g = ground_truths[gt_bounds[image] : gt_bounds[image + 1]]
        crowd = gts.crowd[g].astype(np.uint8)
        for t in mask_types:
            flat_ious[t].append(np.ravel(mask_utils.iou(dts.geometry(t, d), gts.geometry(t, g), crowd)))
    # Where each pair's block starts in its image's flattened IoU matrix, laid end to end.
    image_start = np.r_[0, np.cumsum(np.diff(dt_offset[image_bounds]) * np.diff(gt_offset[image_bounds]))]
    row0 = dt_offset[:-1] - dt_offset[image_bounds[:-1]][image_of_pair]
    col0 = gt_offset[:-1] - gt_offset[image_bounds[:-1]][image_of_pair]
    block_start = image_start[image_of_pair] + row0 * image_width + col0
    # A last -inf entry: the IoU of the padding detections, which therefore never match.
    all_ious = {t: np.concatenate([*v, [-np.inf]]) for t, v in flat_ious.items()}

    # Buckets of pairs with one ground truth are matched without a loop. For the others the detections are
    # padded to a power of two and the ground truths to the most in the bucket (padding never matches), so
    # that few, large buckets are looped over.
    attributes = with_attributes[pairs % num_cats]
    several = gt_count > 1
    padded = np.where(several, 2 ** np.ceil(np.log2(dt_count)).astype(np.int64), dt_count)
    size_key = (padded * 2 + attributes) * 2 + several
    width = np.ones_like(gt_count)
    for key in np.unique(size_key[several]):
        chosen = size_key == key
        width[chosen] = gt_count[chosen].max()
    buckets = {}
    for key in np.unique(size_key):
        chosen = np.flatnonzero(size_key == key)
        size = (int(padded[chosen[0]]), int(width[chosen[0]]), bool(attributes[chosen[0]]))
        rows, cols = np.arange(size[0]), np.arange(size[1])
        real = rows < dt_count[chosen, None]  # [P, D]
        real_gt = cols < gt_count[chosen, None]  # [P, G]
        padding = ~(real[..., None] & real_gt[:, None])  # [P, D, G]; the last IoU entry is -inf
        cell = block_start[chosen, None, None] + rows[:, None] * image_width[chosen, None, None] + cols
        ious = {t: all_ious[t][np.where(padding, all_ious[t].size - 1, cell)] for t in mask_types}
        gt_index = ground_truths[gt_offset[chosen, None] + np.minimum(cols, gt_count[chosen, None] - 1)]
        if "bbox" in iou_types:
            dt_index = dt_order[
                positions[dt_offset[chosen, None] + np.minimum(rows, dt_count[chosen, None] - 1)]
            ]
            box_iou = _box_iou(dts.boxes[dt_index], gts.boxes[gt_index], gts.crowd[gt_index])
            ious["bbox"] = np.where(padding, -np.inf, box_iou)
        buckets[size] = _Bucket(
            size,
            np.where(real, dt_offset[chosen, None] + rows, positions.size),
            np.where(real_gt, gt_index, -1),
            ious,
        )
    return buckets, positions


def _box_iou(dt: np.ndarray, gt: np.ndarray, crowd: np.ndarray) -> np.ndarray:
    """pycocotools' box IoU (``bbIou``, the same float operations) of [P, D, 4] and [P, G, 4] xywh boxes.

    ``crowd`` bool [P, G]: the union is the detection's area (COCO's crowd rule). Returns [P, D, G].
    """
    dx, dy, dw, dh = (dt[:, :, None, i] for i in range(4))
    gx, gy, gw, gh = (gt[:, None, :, i] for i in range(4))
    w = np.minimum(dw + dx, gw + gx) - np.maximum(dx, gx)
    h = np.minimum(dh + dy, gh + gy) - np.maximum(dy, gy)
    inter = w * h
    area = dw * dh
    union = np.where(crowd[:, None, :], area, area + gw * gh - inter)
    return np.divide(inter, union, out=np.zeros_like(inter), where=(w > 0) & (h > 0))


def summarize(
    acc: Accumulation, family: str, category_ids: Collection[int] | None = None
) -> dict[str, float]:
    """FPEval's summary numbers of one family ("iou_f1", "iou", "f1") over ``category_ids`` (all if None).

    Keys as FPEval names them: AP, AP_IOU50, AP_IOU75 (IoU families), AP_F150, AP_F175 (F1 families),
    AP_IOU{50,75}_F1{50,75} (iou_f1), APs, APm, APl, AR@1, AR@10, AR@100, ARs@100, ARm@100, ARl@100.
    Values on FPEval's 0-1 scale, -1 where no slice has ground truth.
    """
    use_iou, use_f1 = family in ("iou_f1", "iou"), family in ("iou_f1", "f1")
    out = {"AP": summary_value(acc, family, category_ids)}
    if use_iou:
        for iou_thr in (0.5, 0.75):
            out[f"AP_IOU{round(iou_thr * 100)}"] = summary_value(acc, family, category_ids, iou_thr=iou_thr)
    if use_f1:
        for f1_thr in (0.5, 0.75):
            out[f"AP_F1{round(f1_thr * 100)}"] = summary_value(acc, family, category_ids, f1_thr=f1_thr)
    if use_iou and use_f1:
        for iou_thr in (0.5, 0.75):
            for f1_thr in (0.5, 0.75):
                key = f"AP_IOU{round(iou_thr * 100)}_F1{round(f1_thr * 100)}"
                out[key] = summary_value(acc, family, category_ids, iou_thr=iou_thr, f1_thr=f1_thr)
    for area in ("small", "medium", "large"):
        out[f"AP{area[0]}"] = summary_value(acc, family, category_ids, area=area)
    for max_det in MAX_DETECTIONS:
        out[f"AR@{max_det}"] = summary_value(acc, family, category_ids, recall=True, max_det=max_det)
    for area in ("small", "medium", "large"):
        out[f"AR{area[0]}@100"] = summary_value(acc, family, category_ids, recall=True, area=area)
    return out


def summary_value(
    acc: Accumulation,
    family: str,
    category_ids: Collection[int] | None = None,
    *,
    recall: bool = False,
    iou_thr: float | None = None,
    f1_thr: float | None = None,
    area: str = "all",
    max_det: int = 100,
) -> float:
    """FPEval's ``_summarize``: the mean AP (or AR) over the family's slices, -1 when none is defined.

    IoU families average the 10 IoU thresholds (or take ``iou_thr``), the F1 family takes the -1 entry; a
    category with attributes gives one slice per F1 threshold in the F1 families (or ``f1_thr``'s), any
    other category the -1 (IoU alone) slice.
    """
    if not recall and max_det != MAX_DETECTIONS[-1]:
        raise ValueError(f"AP is kept at {MAX_DETECTIONS[-1]} detections only, not {max_det}")
    use_iou, use_f1 = family in ("iou_f1", "iou"), family in ("iou_f1", "f1")
    if not use_iou:
        t = np.array([len(IOU_THRESHOLDS) - 1])
    elif iou_thr is None:
        t = np.arange(len(IOU_THRESHOLDS) - 1)
    else:
        t = np.flatnonzero(IOU_THRESHOLDS == iou_thr)
    keep = set(acc.category_ids if category_ids is None else category_ids)
    kept = np.array([c in keep for c in acc.category_ids], dtype=bool)
    by_f1 = kept & acc.with_attributes if use_f1 else np.zeros_like(kept)
    f1_index = np.arange(F1_THRESHOLDS.size - 1)
    if f1_thr is not None:
        f1_index = np.flatnonzero(F1_THRESHOLDS == f1_thr)
    chosen = np.zeros((len(acc.category_ids), len(F1_THRESHOLDS)), dtype=bool)  # [K, F] the slices
    chosen[kept & ~by_f1, -1] = True
    chosen[np.ix_(np.flatnonzero(by_f1), f1_index)] = True
    k, f = (x[None, :] for x in np.nonzero(chosen))  # category after category, F1 thresholds in order
    if not k.size or not t.size:
        return -1.0
    a, m = list(AREA_RANGES).index(area), MAX_DETECTIONS.index(max_det)
    if recall:
        values = acc.recall[t[:, None], f, k, a, m]
    else:  # [T, R, slices], FPEval's order: the mean then adds the same floats in the same order
        values = np.swapaxes(acc.precision[t[:, None], f, :, k, a], 1, 2)
    defined = values[values > -1]
    return float(np.mean(defined)) if defined.size else -1.0


def supercategory_has_attributes(acc: Accumulation, members: Collection[int]) -> bool:
    """Whether a supercategory is scored in the F1 families (FPEval skips accessories, which have none)."""
    return any(w for c, w in zip(acc.category_ids, acc.with_attributes, strict=True) if c in members)


def family_metrics(
    acc: Accumulation, family: str, supercategories: Mapping[str, Collection[int]]
) -> dict[str, float]:
    """:func:`summarize` of a family over all categories plus APo / APa / APp per supercategory (0-1 scale).

    ``supercategories`` maps outerwear / accessory / part to category ids; a supercategory without
    attribute categories is left out of the F1 families, as FPEval leaves out accessories.
    """
    out = summarize(acc, family)
    for name, members in supercategories.items():
        if family == "iou" or supercategory_has_attributes(acc, members):
            out[SUPERCATEGORY_KEYS[name]] = summary_value(acc, family, members)
    return out


@dataclass(frozen=True)
class _Instances:
    """Ground truths or detections as flat arrays over their n entries."""

    image: np.ndarray  # int64 [n] rank of the image id among the ground truth's
    category: np.ndarray  # int64 [n] index into the sorted category ids
    score: np.ndarray  # float64 [n] (ground truth: zeros)
    crowd: np.ndarray  # bool [n]
    id_zero: np.ndarray  # bool [n] id 0 (ground truth)
    attributes: _AttributeLists  # the entries' attributes; empty for categories without
    area: dict[str, np.ndarray]  # IoU type -> float64 [n]: box / mask area (ground truth: annotated area)
    boxes: np.ndarray | None  # float64 [n, 4] when bbox is evaluated
    rles: list[dict[str, Any]] | None  # [n] compressed RLEs when segm is evaluated

    def geometry(self, iou_type: str, index: np.ndarray) -> np.ndarray | list[dict[str, Any]]:
        """What pycocotools' ``iou`` takes for these entries: boxes [m, 4] or a list of RLEs."""
        return self.boxes[index] if iou_type == "bbox" else [self.rles[i] for i in index]

    def attribute_rows(self, index: np.ndarray) -> np.ndarray:
        """bool [*index.shape, N]: the multi-hot attribute vectors of the entries ``index``."""
        return self.attributes.rows(index)


@dataclass(frozen=True)
class _AttributeLists:
    """n entries' attribute lists, as columns of the ground-truth file's N attributes laid end to end.

    Only the detections that meet a ground truth of their category get a multi-hot row: with 100
    detections an image, a dense [n, N] matrix would be mostly unread.
    """

    start: np.ndarray  # int64 [n + 1] where each entry's columns start in ``column``
    column: np.ndarray  # int64 [m] attribute columns
    num_attributes: int

    @classmethod
    def of(
        cls, counts: np.ndarray, column: np.ndarray, keep: np.ndarray, num_attributes: int
    ) -> _AttributeLists:
        """Lists of ``counts`` [n] columns each, laid end to end in ``column``; emptied where not ``keep``."""
        if not keep.all():
            column = column[np.repeat(keep, counts)]
            counts = np.where(keep, counts, 0)
        return cls(np.r_[0, np.cumsum(counts)], column, num_attributes)

    def rows(self, index: np.ndarray) -> np.ndarray:
        """bool [*index.shape, N]: multi-hot rows of the entries ``index`` (ints in [0, n))."""
        flat = np.asarray(index, dtype=np.int64).ravel()
        begin = self.start[flat]
        counts = self.start[flat + 1] - begin
        offset = np.repeat(begin - (np.cumsum(counts) - counts), counts)
        out = np.zeros((flat.size, self.num_attributes), dtype=bool)
        out[np.repeat(np.arange(flat.size), counts), self.column[offset + np.arange(offset.size)]] = True
        return out.reshape(*np.shape(index), self.num_attributes)


def _gt_instances(
    annotations: Sequence[dict[str, Any]],
    gt: dict[str, Any],
    iou_types: Sequence[str],
    category_ids: Sequence[int],
    with_attributes: np.ndarray,
) -> _Instances:
    """The flat arrays of the ground-truth annotations (area: the annotated one, for either IoU type)."""
    n = len(annotations)
    category = _category_index([a["category_id"] for a in annotations], category_ids)
    rles = _gt_rles(annotations, gt) if "segm" in iou_types else None
    boxes = None
    if "bbox" in iou_types:
        boxes = np.array([a["bbox"] for a in annotations], dtype=np.float64).reshape(n, 4)
    return _Instances(
        image=_image_rank([a["image_id"] for a in annotations], gt),
        category=category,
        score=np.zeros(n),
        crowd=np.array([bool(a.get("iscrowd", 0)) for a in annotations], dtype=bool),
        id_zero=np.array([a.get("id") == 0 for a in annotations], dtype=bool),
        attributes=_attribute_lists(
            [a.get("attribute_ids") for a in annotations], category, with_attributes, gt
        ),
        area=dict.fromkeys(iou_types, np.array([a["area"] for a in annotations], dtype=np.float64)),
        boxes=boxes,
        rles=rles,
    )


def _dt_instances(
    predictions: Predictions, gt: dict[str, Any], category_ids: Sequence[int], with_attributes: np.ndarray
) -> _Instances:
    """The flat arrays of checked predictions (area: the box's for bbox, the mask's for segm)."""
    n, index = len(predictions), predictions.index
    if index is None:
        category = _category_index(predictions.category_id, category_ids)
        image = _image_rank(predictions.image_id, gt)
        attributes = _attribute_lists(predictions.attribute_ids, category, with_attributes, gt)
    else:  # numbered while checking
        category, image = index.category, index.image
        num_attributes = len({a["id"] for a in gt.get("attributes", [])})
        attributes = _AttributeLists.of(
            index.attribute_count, index.attribute_column, with_attributes[category], num_attributes
        )
    boxes, rles = predictions.bbox, predictions.segmentation
    area = {"bbox": boxes[:, 2] * boxes[:, 3]} if boxes is not None else {}
    if rles is not None:
        area["segm"] = predictions.segmentation_area
        if area["segm"] is None:
            area["segm"] = _mask_areas(rles)
    return _Instances(
        image=image,
        category=category,
        score=np.asarray(predictions.score, dtype=np.float64),
        crowd=np.zeros(n, dtype=bool),
        id_zero=np.zeros(n, dtype=bool),
        attributes=attributes,
        area=area,
        boxes=boxes,
        rles=rles,
    )


def _image_rank(image_ids: Sequence[Any], gt: dict[str, Any]) -> np.ndarray:
    """int64 [n]: each image id's rank among the ground truth's image ids (COCOeval's image order)."""
    rank = sorted_ranks(im["id"] for im in gt["images"])
    return np.fromiter(map(rank.__getitem__, image_ids), np.int64, len(image_ids))


def _category_index(ids: Sequence[int], category_ids: Sequence[int]) -> np.ndarray:
    index = sorted_ranks(category_ids)
    return np.fromiter(map(index.__getitem__, ids), np.int64, len(ids))


def _attribute_lists(
    lists: Sequence[list[int] | None], category: np.ndarray, with_attributes: np.ndarray, gt: dict[str, Any]
) -> _AttributeLists:
    """The entries' attribute lists (None: none) as columns of the ground-truth file's sorted attributes;
    empty for categories without attributes."""
    column = sorted_ranks({a["id"] for a in gt.get("attributes", [])})
    keep = with_attributes[category]
    kept = list(compress(lists, keep.tolist()))  # the others' lists are not read (nor checked)
    if None in kept:
        kept = [atts or [] for atts in kept]
    counts = np.zeros(len(lists), dtype=np.int64)
    counts[keep] = np.fromiter(map(len, kept), np.int64, len(kept))
    columns = np.fromiter(map(column.__getitem__, chain.from_iterable(kept)), np.int64, int(counts.sum()))
    return _AttributeLists(np.r_[0, np.cumsum(counts)], columns, len(column))


def _gt_rles(annotations: Sequence[dict[str, Any]], gt: dict[str, Any]) -> list[dict[str, Any]]:
    """The annotations' compressed RLEs, as ``COCO.annToRLE`` makes them (:func:`_rle`).

    Polygons are rasterised by one pycocotools call an image (each polygon is encoded on its own, so the
    RLEs are the same), then merged per annotation as ``annToRLE`` merges them; a call per annotation was
    a tenth of an evaluation with few detections an image.
    """
    sizes = {im["id"]: (im["height"], im["width"]) for im in gt["images"]}
    rles: list[Any] = [None] * len(annotations)
    polygons: dict[Any, list[int]] = {}  # image id -> annotations with polygons, in order
    for i, a in enumerate(annotations):
        segmentation = a["segmentation"]
        # frPyObjects reads a list as polygons when its first entry has over 4 numbers (4: a box)
        if isinstance(segmentation, list) and segmentation and len(segmentation[0]) > 4:
            polygons.setdefault(a["image_id"], []).append(i)
        else:
            rles[i] = _rle(segmentation, *sizes[a["image_id"]])
    for image_id, members in polygons.items():
        parts = [annotations[i]["segmentation"] for i in members]
        encoded = mask_utils.frPyObjects(list(chain.from_iterable(parts)), *sizes[image_id])
        stops = np.cumsum([len(part) for part in parts]).tolist()
        for i, stop, part in zip(members, stops, parts, strict=True):
            own = encoded[stop - len(part) : stop]
            rles[i] = own[0] if len(own) == 1 else mask_utils.merge(own)
    return rles


def _rle(segmentation: Any, height: int, width: int) -> dict[str, Any]:
    """A compressed RLE of a polygon list or an RLE, as ``COCO.annToRLE`` makes it."""
    if isinstance(segmentation, list):
        return mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
    if isinstance(segmentation["counts"], list):
        return mask_utils.frPyObjects(segmentation, height, width)
    return segmentation


def _mask_areas(rles: list[dict[str, Any]]) -> np.ndarray:
    """float64 [n] pixel areas. pycocotools' ``area`` fails on lists over 255 with numpy 2: chunks of 255."""
    chunks = [mask_utils.area(rles[i : i + 255]) for i in range(0, len(rles), 255)]
    return np.concatenate(chunks).astype(np.float64) if chunks else np.zeros(0)


def _outside(area: np.ndarray) -> np.ndarray:
    """bool [n, A]: area outside each area range (bounds belong to the range, as in COCO)."""
    return (area[:, None] < _AREA_LOW) | (area[:, None] > _AREA_HIGH)
