"""Stage 4 of the fast path: ``COCOeval.accumulate``, precision at the 101 recall thresholds and recall.

:func:`interpolated_precision` is the one accumulate: COCO's interpolated precision of many curves at once,
read from their true positives alone. The metrics' curves (:func:`group_curves`: every threshold, area range
and category of a group together) and the bootstrap's resampled ones (:mod:`fashionseg.evaluation.bootstrap`)
both go through it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fashionseg.evaluation.params import MAX_DETECTIONS, RECALL_THRESHOLDS

_CURVE_CHUNK = 1 << 22  # detections x curves handled at once in group_curves
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


@dataclass(frozen=True)
class ScoreOrder:
    """The kept detections category after category, each by decreasing score, as n parallel arrays."""

    category: np.ndarray  # int [n] category index, ascending
    bounds: np.ndarray  # int [K + 1] where each category's detections start
    rank: np.ndarray  # int [n] place in the image's list of the category
    candidate: np.ndarray  # int [n] index into the matching results; -1: no ground truth in the pair


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
    """
    precision = interpolated_precision(curve, seen, num_gt)
    recall = -np.ones((num_gt.size, len(MAX_DETECTIONS)))
    scored = np.flatnonzero(num_gt > 0)  # true positives need ground truth: all of them are on these
    if scored.size:
        top = [np.bincount(curve[rank < m], minlength=num_gt.size) for m in MAX_DETECTIONS[:-1]]
        found = np.stack([*top, np.bincount(curve, minlength=num_gt.size)], axis=1)
        recall[scored] = found[scored] / num_gt[scored, None]
    return precision, recall


def interpolated_precision(
    curve: np.ndarray, seen: np.ndarray, num_gt: np.ndarray, recall_thresholds: np.ndarray = RECALL_THRESHOLDS
) -> np.ndarray:
    """COCO's interpolated precision [X, R] of X curves, from their true positives alone.

    ``curve`` int [t] sorted (each curve's true positives together, by decreasing score); ``seen`` [t] the
    true and false positives of their curve up to and including them; ``num_gt`` int [X] ground truths per
    curve (-1 precision where 0).

    Precision rises only at true positives, so COCO's running maximum from the right, read at the first
    detection reaching a recall, is the maximum over that and the later true positives: the maxima of the
    stretches between the thresholds' true positives (one ``maximum.reduceat``), then a running maximum
    over the thresholds.
    """
    num_curves = num_gt.size
    precision = -np.ones((num_curves, len(recall_thresholds)))
    scored = np.flatnonzero(num_gt > 0)  # true positives need ground truth: all of them are on these
    if not scored.size:
        return precision
    compact = np.zeros(num_curves, dtype=np.int64)
    compact[scored] = np.arange(scored.size)
    curve = compact[curve]
    num_gt = num_gt[scored]
    found = np.bincount(curve, minlength=scored.size)
    first = np.r_[0, np.cumsum(found)[:-1]]
    k = np.arange(curve.size) - first[curve] + 1  # the k-th true positive of its curve
    value = k / (np.asarray(seen, dtype=np.float64) + np.spacing(1))
    precision[scored] = 0.0  # where no true positive is found
    active = np.flatnonzero(found)
    if active.size:
        # COCO takes the first detection whose recall tp/num_gt reaches each threshold: x -> x/num_gt is
        # monotone in floating point, so that is the need-th true positive, need being the smallest count
        # that reaches it (the first detection for need 0; none, precision 0, when the curve has fewer).
        size = found[active, None]
        counts, which = np.unique(num_gt[active], return_inverse=True)
        need = recall_steps(counts, recall_thresholds)[which.ravel()]  # [curves, R]
        start = np.clip(need - 1, 0, size - 1) + first[active, None]  # non-decreasing, in range
        suffix = np.maximum.reduceat(value, start.ravel()).reshape(start.shape).T.copy()  # [R, curves]
        for r in range(len(recall_thresholds) - 2, -1, -1):  # a row at a time: 3x numpy's accumulate here
            np.maximum(suffix[r], suffix[r + 1], out=suffix[r])
        precision[scored[active]] = np.where(need <= size, suffix.T, 0.0)
    return precision


def recall_steps(counts: np.ndarray, recall_thresholds: np.ndarray = RECALL_THRESHOLDS) -> np.ndarray:
    """int [U, R]: for each ground-truth count c > 0, the fewest true positives k with k / c >= each recall
    threshold, in float64 as COCOeval's ``searchsorted(tp / c, recall_thresholds)`` compares them."""
    c = np.asarray(counts, dtype=np.int64)[:, None]
    k = np.clip(np.ceil(recall_thresholds * c).astype(np.int64), 0, c)  # off by one at most: rounding
    while True:
        lower = (k > 0) & ((k - 1) / c >= recall_thresholds)
        higher = (k < c) & (k / c < recall_thresholds)
        if not (lower.any() or higher.any()):
            return k
        k = k - lower + higher


def group_curves(
    matched: np.ndarray,
    on_ignored: np.ndarray,
    members: np.ndarray,
    order: ScoreOrder,
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
