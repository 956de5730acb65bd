"""Stage 3 of the fast path: COCO's and FPEval's greedy matching, for every threshold and area range at once.

Per image and category, detections by decreasing score take, one after the other, a free ground truth in
COCO's scan order (the ones ignored in the area range last). COCO's matcher keeps the qualifying ground
truth (IoU >= t_iou) of highest IoU, and lets crowd regions match many times. FPEval's adds the attribute
condition, F1 >= t_f1: a detection keeps the first qualifying ground truth, a later one replaces it only
when both its IoU and its F1 are at least the held ones, and crowd regions match once. Ground truths with
id 0 are taken but their detections count as unmatched, as pycocotools stores the matched id.
:mod:`fashionseg.evaluation.reference` spells the same rules out one detection at a time.
"""

from __future__ import annotations

import numpy as np

from fashionseg.evaluation.instances import Instances
from fashionseg.evaluation.pairs import Bucket
from fashionseg.evaluation.params import AREA_RANGES, F1_THRESHOLDS, IOU_THRESHOLDS

# The thresholds a match starts from (pycocotools' min(t, 1 - 1e-10)): [1, 1, Ti, 1, 1], [1, 1, 1, Tf, 1].
_START_IOU = np.minimum(IOU_THRESHOLDS, 1 - 1e-10)[None, None, :, None, None]
_START_F1 = np.minimum(F1_THRESHOLDS, 1 - 1e-10)[None, None, None, :, None]


def match_buckets(
    buckets: dict[tuple[int, int, bool], Bucket],
    iou_type: str,
    gts: Instances,
    gt_ignore: np.ndarray,
    num_candidates: int,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """FPEval's and COCOeval's (``matched``, ``on_ignored``) of the candidate detections, for one IoU type.

    ``gt_ignore`` bool [ground truths, A]: crowd or outside each area range. FPEval's are bool
    [candidates, Ti, Tf, A], filled for the categories with attributes only; COCOeval's bool
    [candidates, Ti, 1, A], for all (FPEval matches the others as COCO does, so theirs serve both).
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
            m, o = match_detections(ious, bucket.f1s, ignore, np.zeros_like(crowd), id_zero)
            matched[bucket.candidate], on_ignored[bucket.candidate] = m, o
        m, o = match_detections(ious, None, ignore, crowd, id_zero)
        coco_matched[bucket.candidate], coco_on_ignored[bucket.candidate] = m, o
    return (matched[:-1], on_ignored[:-1]), (coco_matched[:-1], coco_on_ignored[:-1])


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
    if ious.shape[2] == 1:
        return _match_one_ground_truth(_qualifying(ious, f1s), gt_ignore, gt_reusable, gt_id_zero)
    if f1s is None:
        return _match_by_iou(ious, gt_ignore, gt_reusable, gt_id_zero)
    if gt_ignore.shape[2] > 1:
        return _match_by_ignore_pattern(ious, f1s, gt_ignore, gt_reusable, gt_id_zero)
    return _match_by_scan(ious, f1s, gt_ignore, gt_reusable, gt_id_zero)


def _qualifying(ious: np.ndarray, f1s: np.ndarray | None) -> np.ndarray:
    """bool [P, D, Ti, Tf, 1] of pairs with one ground truth (``ious``, ``f1s`` [P, D, 1]): whether the
    detection meets each IoU and F1 threshold (Tf = 1, the -1 entry, without F1s); A = 1, broadcast."""
    ok = ious[:, :, :, None, None] >= _START_IOU  # [P, D, Ti, 1, 1]: G = 1 meets the Ti axis
    if f1s is not None:
        ok = ok & (f1s[:, :, :, None, None] >= _START_F1)  # [P, D, Ti, Tf, 1]
    return ok


def _match_one_ground_truth(
    ok: np.ndarray, gt_ignore: np.ndarray, gt_reusable: np.ndarray, gt_id_zero: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`match_detections` of pairs with one ground truth, from :func:`_qualifying`'s ``ok``: the
    first detection that qualifies takes it (all of them, for a crowd). Which one that is does not depend
    on the area range: found once, broadcast over A."""
    num_pairs, num_dt, num_iou, num_f1, _ = ok.shape
    first = (np.arange(num_dt)[None, :, None, None, None] == np.argmax(ok, axis=1)[:, None]) & ok
    matched = ok & (first | gt_reusable[:, None, :, None, None])
    on_ignored = matched & gt_ignore[:, None, :, None, :]
    full = (num_pairs, num_dt, num_iou, num_f1, gt_ignore.shape[2])
    return np.broadcast_to(matched & ~gt_id_zero[:, None, :, None, None], full), on_ignored


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
    ignore = gt_ignore[:, :, None, None, :]  # [P, G, 1, 1, A]
    reusable = gt_reusable[:, :, None, None, None]
    id_zero = gt_id_zero[:, :, None, None, None]
    scan = np.arange(num_gt)[None, :, None, None, None]
    free = np.ones((num_pairs, num_gt, *shape[1:]), dtype=bool)
    matched = np.zeros((num_pairs, num_dt, *shape[1:]), dtype=bool)
    on_ignored = np.zeros_like(matched)
    for d in range(num_dt):
        iou = ious[:, d, :, None, None, None]  # [P, G, 1, 1, 1]
        ok = (iou >= _START_IOU) & free
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


def _match_by_ignore_pattern(
    ious: np.ndarray, f1s: np.ndarray, gt_ignore: np.ndarray, gt_reusable: np.ndarray, gt_id_zero: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """FPEval's matching over several area ranges: ranges that ignore the same ground truths of a pair
    match alike (often "all" and the range holding them all), so each (pair, ignore pattern) is matched
    once, as a pair with a single area range (:func:`_match_by_scan`)."""
    num_pairs, _, num_gt = ious.shape
    num_areas = gt_ignore.shape[2]
    pair_area = np.repeat(np.arange(num_pairs), num_areas)[:, None]
    patterns = np.concatenate([pair_area, gt_ignore.transpose(0, 2, 1).reshape(-1, num_gt)], axis=1)
    unique, inverse = np.unique(patterns, axis=0, return_inverse=True)
    pair, ignore = unique[:, 0], unique[:, 1:, None].astype(bool)
    matched, on_ignored = _match_by_scan(ious[pair], f1s[pair], ignore, gt_reusable[pair], gt_id_zero[pair])
    back = inverse.reshape(num_pairs, num_areas)  # [P, A] -> pattern
    return (
        matched[back, ..., 0].transpose(0, 2, 3, 4, 1),
        on_ignored[back, ..., 0].transpose(0, 2, 3, 4, 1),
    )


def _match_by_scan(
    ious: np.ndarray, f1s: np.ndarray, gt_ignore: np.ndarray, gt_reusable: np.ndarray, gt_id_zero: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """FPEval's scan, as its loops run it: detection after detection, ground truth after ground truth,
    every pair, threshold and area range at once.

    COCO scans ground truths with the ignored ones last (stable), separately for every area range.
    Below, ground truths are indexed by that scan position j; arrays put j first for contiguous slices.
    """
    num_pairs, num_dt, num_gt = ious.shape
    shape = (num_pairs, len(IOU_THRESHOLDS), len(F1_THRESHOLDS), gt_ignore.shape[2])
    order = np.argsort(gt_ignore, axis=1, kind="stable")
    ignore = np.take_along_axis(gt_ignore, order, 1).transpose(1, 0, 2)[:, :, None, None, :]
    reusable = np.take_along_axis(gt_reusable[:, :, None], order, 1).transpose(1, 0, 2)[:, :, None, None, :]
    id_zero = np.take_along_axis(gt_id_zero[:, :, None], order, 1).transpose(1, 0, 2)[:, :, None, None, :]
    iou, f1 = _in_scan_order(ious, order), _in_scan_order(f1s, order)
    any_ignore, any_id_zero = bool(gt_ignore.any()), bool(gt_id_zero.any())
    start_iou, start_f1 = np.broadcast_to(_START_IOU[0], shape), np.broadcast_to(_START_F1[0], shape)
    free = np.ones((num_gt, *shape), dtype=bool)
    matched = np.zeros((num_dt, *shape), dtype=bool)
    on_ignored = np.zeros_like(matched)
    for d in range(num_dt):
        best, regular = _scan_ground_truths(iou[d], f1[d], free, ignore, start_iou, start_f1, any_ignore)
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


def _scan_ground_truths(
    iou: np.ndarray,
    f1: np.ndarray,
    free: np.ndarray,
    ignore: np.ndarray,
    start_iou: np.ndarray,
    start_f1: np.ndarray,
    any_ignore: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """One detection's scan: the scan position of the ground truth it takes (-1: none) [P, Ti, Tf, A], and
    whether that one is not ignored. A later qualifying ground truth replaces the held one when its IoU
    and its F1 are both at least the held ones; COCO stops at the ignored ground truths once it holds a
    regular match."""
    held_iou = start_iou.copy()
    held_f1 = start_f1.copy()
    best = np.full(start_iou.shape, -1, dtype=np.int32)
    regular = np.zeros(start_iou.shape, dtype=bool)  # holds a match to a ground truth that is not ignored
    for j in range(len(free)):
        ok = iou[j] >= held_iou
        ok &= f1[j] >= held_f1
        ok &= free[j]
        if any_ignore:
            ok &= ~(ignore[j] & regular)
            np.copyto(regular, ~ignore[j], where=ok)
        np.copyto(held_iou, iou[j], where=ok)
        np.copyto(held_f1, f1[j], where=ok)
        np.copyto(best, j, where=ok)
    return best, regular


def _in_scan_order(values: np.ndarray, order: np.ndarray) -> np.ndarray:
    """[P, D, G] pair values -> [D, J, P, 1, 1, A]: ground truths in scan order ``order`` [P, G, A]."""
    ordered = np.take_along_axis(values[..., None], order[:, None], 2)  # [P, D, J, A]
    return ordered.transpose(1, 2, 0, 3)[:, :, :, None, None, :]
