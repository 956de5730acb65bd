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
ground truth). Precision is read at the true positives only; nothing loops over detections of a category.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils
from tqdm.auto import tqdm

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


@dataclass(frozen=True)
class Accumulation:
    """FPEval's accumulated curves for one IoU type.

    ``precision`` [Ti=11, Tf=11, R=101, K, A=4] and ``recall`` [Ti, Tf, K, A, M=3] over the IoU and F1
    thresholds (last entry -1: constraint off), recall thresholds, categories ``category_ids`` [K], area
    ranges (all, small, medium, large) and detection limits (1, 10, 100); -1 where a category has no ground
    truth in that area. Precision is kept at 100 detections only, the one limit FPEval's AP summaries read.
    Categories without attributes (``with_attributes`` [K] False) fill only Tf = -1.
    """

    precision: np.ndarray
    recall: np.ndarray
    category_ids: tuple[int, ...]
    with_attributes: np.ndarray


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
    the ground truth it took is ignored.
    """
    num_pairs, num_dt, num_gt = ious.shape
    num_areas = gt_ignore.shape[2]
    f1_thresholds = F1_THRESHOLDS if f1s is not None else F1_THRESHOLDS[-1:]
    shape = (num_pairs, len(IOU_THRESHOLDS), len(f1_thresholds), num_areas)
    start_iou = np.minimum(IOU_THRESHOLDS, 1 - 1e-10)[None, None, :, None, None]
    start_f1 = np.minimum(f1_thresholds, 1 - 1e-10)[None, None, None, :, None]
    if num_gt == 1:  # one ground truth: the first detection that qualifies takes it (all, for a crowd)
        ok = ious[:, :, :, None, None] >= start_iou
        if f1s is not None:
            ok = ok & (f1s[:, :, :, None, None] >= start_f1)
        ok = np.broadcast_to(ok, (num_pairs, num_dt, *shape[1:]))
        first = np.cumsum(ok, axis=1) == 1
        matched = ok & (first | gt_reusable[:, None, :, None, None])
        on_ignored = matched & gt_ignore[:, None, :, None, :]
        return matched & ~gt_id_zero[:, None, :, None, None], on_ignored
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

    Only true positives are visited: precision rises only at them, so COCO's running maximum from the right
    read at the first detection reaching a recall is the maximum over that and the later true positives.
    """
    num_curves, n = tps.shape
    curve, row = np.nonzero(tps)  # true positives, curve after curve, by rank
    found = np.bincount(curve, minlength=num_curves)
    first = np.r_[0, np.cumsum(found)[:-1]]
    k = np.arange(curve.size) - first[curve] + 1  # the k-th true positive of its curve
    seen = np.cumsum(~neutral, axis=1, dtype=np.int32)[curve, row].astype(np.float64)  # = tp + fp there
    at_tp = np.zeros((num_curves, max(int(found.max(initial=0)), 1)))
    at_tp[curve, k - 1] = k / (seen + np.spacing(1))
    at_tp = np.maximum.accumulate(at_tp[:, ::-1], axis=1)[:, ::-1]
    # COCO takes the first detection whose recall tp/num_gt reaches each threshold: x -> x/num_gt is monotone
    # in floating point, so that is the need-th true positive, need being the smallest count that reaches
    # it (the first detection for need 0; none, precision 0, when the curve has fewer).
    need = np.empty((num_curves, len(RECALL_THRESHOLDS)), dtype=np.int64)
    for count in np.unique(num_gt):
        need[num_gt == count] = np.searchsorted(np.arange(count + 1) / count, RECALL_THRESHOLDS, side="left")
    picked = at_tp[np.arange(num_curves)[:, None], np.clip(need - 1, 0, at_tp.shape[1] - 1)]
    precision = np.where(need <= found[:, None], picked, 0.0)
    top = [np.bincount(curve[rank[row] < m], minlength=num_curves) for m in MAX_DETECTIONS[:-1]]
    return precision, np.stack([*top, found], axis=1) / num_gt[:, None]


def accumulate(
    gt: dict[str, Any],
    predictions: Sequence[dict[str, Any]],
    iou_types: Sequence[str],
    attribute_category_ids: Collection[int],
    show_progress: bool = False,
) -> dict[str, Accumulation]:
    """FPEval's ``evaluate`` + ``accumulate`` of checked ``predictions`` against the annotation dict ``gt``.

    One :class:`Accumulation` per IoU type of ``iou_types`` ("bbox": box IoU and area; "segm": mask IoU
    and area); ``attribute_category_ids`` are the categories matched on IoU and attribute-F1, the others
    by IoU alone. Work that does not depend on the IoU type (ordering, pairing, F1) is done once.
    """
    category_ids = tuple(sorted(c["id"] for c in gt["categories"]))
    num_cats = len(category_ids)
    with_attributes = np.array([c in set(attribute_category_ids) for c in category_ids], dtype=bool)
    gts = _instances(gt["annotations"], gt, iou_types, category_ids, with_attributes, is_gt=True)
    dts = _instances(predictions, gt, iou_types, category_ids, with_attributes, is_gt=False)

    # Ground truths by (image, category) in file order; detections by (image, category, decreasing score),
    # the best 100 of each. Images in id order, as COCOeval concatenates them.
    gt_order = np.lexsort((gts.category, gts.image))
    dt_order = np.lexsort((-dts.score, dts.category, dts.image))
    dt_key = dts.image[dt_order] * num_cats + dts.category[dt_order]
    rank = np.arange(dt_order.size) - np.searchsorted(dt_key, dt_key)
    kept = rank < MAX_DETECTIONS[-1]
    dt_order, dt_key, rank = dt_order[kept], dt_key[kept], rank[kept]
    gt_ignore = gts.crowd[:, None] | _outside(gts.area[iou_types[0]])  # [n_gt, A]; same area for all types
    num_gt = np.stack([np.bincount(gts.category[~ignore], minlength=num_cats) for ignore in gt_ignore.T], 1)
    buckets = _pair_buckets(gts, dts, gt_order, dt_order, num_cats, with_attributes, iou_types, show_progress)
    f1s = {  # padding rows (position n) take the last detection's attributes; their IoU keeps them unmatched
        size: attribute_f1_matrix(
            dts.attributes[dt_order[np.minimum(bucket.position, dt_order.size - 1)]],
            gts.attributes[bucket.gt],
        )
        for size, bucket in buckets.items()
        if size[2]
    }
    category = dt_key % num_cats
    by_category = np.argsort(category, kind="stable")
    bounds = np.searchsorted(category[by_category], np.arange(num_cats + 1))
    category_rows = []
    for k in range(num_cats):
        rows = by_category[bounds[k] : bounds[k + 1]]
        category_rows.append(rows[np.argsort(-dts.score[dt_order[rows]], kind="stable")])  # ties: image order

    out = {}
    thresholds = (len(IOU_THRESHOLDS), len(F1_THRESHOLDS))
    for iou_type in iou_types:
        matched, on_ignored = _match_buckets(buckets, f1s, iou_type, gts, gt_ignore, dt_order.size)
        ignored = on_ignored | (~matched & _outside(dts.area[iou_type][dt_order])[:, None, None, :])
        precision = -np.ones((*thresholds, len(RECALL_THRESHOLDS), num_cats, len(AREA_RANGES)))
        recall = -np.ones((*thresholds, num_cats, len(AREA_RANGES), len(MAX_DETECTIONS)))
        for k, rows in enumerate(category_rows):
            f1_slice = slice(None) if with_attributes[k] else slice(-1, None)
            curve_major = [np.moveaxis(x[rows, :, f1_slice], 0, -1).copy() for x in (matched, ignored)]
            precision[:, f1_slice, :, k], recall[:, f1_slice, k] = _category_curves(
                *curve_major, rank[rows], num_gt[k]
            )
        out[iou_type] = Accumulation(precision, recall, category_ids, with_attributes)
    return out


def _match_buckets(
    buckets: dict[tuple[int, int, bool], _Bucket],
    f1s: dict[tuple[int, int, bool], np.ndarray],
    iou_type: str,
    gts: _Instances,
    gt_ignore: np.ndarray,
    num_dt: int,
) -> tuple[np.ndarray, np.ndarray]:
    """``matched`` and ``on_ignored`` bool [num_dt, Ti, Tf, A] of the kept detections, for one IoU type.

    Detections of pairs without ground truth stay unmatched; categories without attributes fill Tf = -1.
    """
    matched = np.zeros((num_dt + 1, len(IOU_THRESHOLDS), len(F1_THRESHOLDS), len(AREA_RANGES)), dtype=bool)
    on_ignored = np.zeros_like(matched)  # row num_dt: where the padding of the buckets lands
    for (_, _, attributes), bucket in buckets.items():
        m, o = match_detections(
            bucket.ious[iou_type],
            f1s.get(bucket.size),
            gt_ignore[bucket.gt],
            gts.crowd[bucket.gt] & (not attributes),
            gts.id_zero[bucket.gt],
        )
        f1_slice = slice(None) if attributes else slice(-1, None)
        matched[bucket.position, :, f1_slice], on_ignored[bucket.position, :, f1_slice] = m, o
    return matched[:-1], on_ignored[:-1]


@dataclass(frozen=True)
class _Bucket:
    """Image-category pairs with the same numbers of detections and ground truths, stacked."""

    size: tuple[int, int, bool]  # (D, G, whether the category carries attributes)
    position: np.ndarray  # int [P, D] detection positions in the kept, sorted order; n for padding
    gt: np.ndarray  # int [P, G] ground-truth indices
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
) -> dict[tuple[int, int, bool], _Bucket]:
    """The image-category pairs that have both detections and ground truths, by (D, G, with attributes).

    IoUs come from one pycocotools call per image and IoU type; each pair's block is gathered from it.
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
    flat_ious: dict[str, list[np.ndarray]] = {t: [] for t in iou_types}
    for image in tqdm(
        range(image_first_pair.size), desc="AP^IoU+F1", unit="image", disable=not show_progress, leave=False
    ):
        d = dt_order[positions[dt_bounds[image] : dt_bounds[image + 1]]]
        g = ground_truths[gt_bounds[image] : gt_bounds[image + 1]]
        crowd = gts.crowd[g].astype(np.uint8)
        for t in iou_types:
            flat_ious[t].append(np.ravel(mask_utils.iou(dts.geometry(t, d), gts.geometry(t, g), crowd)))
    # Where each pair's block starts in its image's flattened IoU matrix, laid end to end.
    image_start = np.r_[0, np.cumsum(np.diff(dt_offset[image_bounds]) * np.diff(gt_offset[image_bounds]))]
    row0 = dt_offset[:-1] - dt_offset[image_bounds[:-1]][image_of_pair]
    col0 = gt_offset[:-1] - gt_offset[image_bounds[:-1]][image_of_pair]
    block_start = image_start[image_of_pair] + row0 * image_width + col0
    # A last -inf entry: the IoU of the padding detections, which therefore never match.
    all_ious = {t: np.concatenate([*v, [-np.inf]]) for t, v in flat_ious.items()}

    # Buckets of pairs with one ground truth are matched without a loop; for the others the detections are
    # padded to a power of two, so that fewer, larger buckets are looped over.
    attributes = with_attributes[pairs % num_cats]
    padded = np.where(gt_count == 1, dt_count, 2 ** np.ceil(np.log2(dt_count)).astype(np.int64))
    size_key = (padded * (gt_count.max(initial=0) + 1) + gt_count) * 2 + attributes
    buckets = {}
    for key in np.unique(size_key):
        chosen = np.flatnonzero(size_key == key)
        size = (int(padded[chosen[0]]), int(gt_count[chosen[0]]), bool(attributes[chosen[0]]))
        rows, cols = np.arange(size[0]), np.arange(size[1])
        real = rows < dt_count[chosen, None]  # [P, D]
        cell = block_start[chosen, None, None] + rows[:, None] * image_width[chosen, None, None] + cols
        cell = np.where(real[..., None], cell, all_ious[iou_types[0]].size - 1)  # [P, D, G]
        position = positions[dt_offset[chosen, None] + np.minimum(rows, dt_count[chosen, None] - 1)]
        buckets[size] = _Bucket(
            size,
            np.where(real, position, dt_order.size),
            ground_truths[gt_offset[chosen, None] + cols],
            {t: all_ious[t][cell] for t in iou_types},
        )
    return buckets


def _category_curves(
    matched: np.ndarray, ignored: np.ndarray, rank: np.ndarray, num_gt: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Precision [Ti, Tf, R, A] (at 100 detections) and recall [Ti, Tf, A, M] of one category.

    ``matched``, ``ignored`` bool [Ti, Tf, A, n] for its n detections by decreasing score, ``rank`` [n]
    their place in their image's list, ``num_gt`` [A] its ground truths not ignored per area range.
    """
    curves = matched.shape[:-1]
    counts = np.broadcast_to(num_gt, curves).ravel()
    scored = np.flatnonzero(counts > 0)  # curves without ground truth stay -1
    tps = (matched & ~ignored).reshape(counts.size, rank.size)
    neutral = ignored.reshape(counts.size, rank.size)
    precision = -np.ones((counts.size, len(RECALL_THRESHOLDS)))
    recall = -np.ones((counts.size, len(MAX_DETECTIONS)))
    for chunk in np.array_split(scored, max(1, rank.size * scored.size // _CURVE_CHUNK)):  # bounds memory
        precision[chunk], recall[chunk] = precision_recall(tps[chunk], neutral[chunk], rank, counts[chunk])
    return precision.reshape(*curves, -1).transpose(0, 1, 3, 2), recall.reshape(*curves, -1)


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
    slices = []  # (F1 index, category index)
    for k, c in enumerate(acc.category_ids):
        if c not in keep:
            continue
        if not (use_f1 and acc.with_attributes[k]):
            slices.append((len(F1_THRESHOLDS) - 1, k))
        elif f1_thr is None:
            slices += [(f, k) for f in range(len(F1_THRESHOLDS) - 1)]
        else:
            slices += [(int(f), k) for f in np.flatnonzero(F1_THRESHOLDS == f1_thr)]
    if not slices or not t.size:
        return -1.0
    f, k = (np.array(x)[None, :] for x in zip(*slices, strict=True))
    a, m = list(AREA_RANGES).index(area), MAX_DETECTIONS.index(max_det)
    if recall:
        values = acc.recall[t[:, None], f, k, a, m]
    else:
        values = acc.precision[t[:, None], f, :, k, a]
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
    attributes: np.ndarray  # bool [n, N] multi-hot over the ground-truth file's attributes
    area: dict[str, np.ndarray]  # IoU type -> float64 [n]: box / mask area (ground truth: annotated area)
    boxes: np.ndarray | None  # float64 [n, 4] when bbox is evaluated
    rles: list[dict[str, Any]] | None  # [n] compressed RLEs when segm is evaluated

    def geometry(self, iou_type: str, index: np.ndarray) -> np.ndarray | list[dict[str, Any]]:
        """What pycocotools' ``iou`` takes for these entries: boxes [m, 4] or a list of RLEs."""
        return self.boxes[index] if iou_type == "bbox" else [self.rles[i] for i in index]


def _instances(
    entries: Sequence[dict[str, Any]],
    gt: dict[str, Any],
    iou_types: Sequence[str],
    category_ids: Sequence[int],
    with_attributes: np.ndarray,
    is_gt: bool,
) -> _Instances:
    """The flat arrays of annotation or (checked) prediction ``entries``."""
    n = len(entries)
    image_rank = {image_id: r for r, image_id in enumerate(sorted(im["id"] for im in gt["images"]))}
    cat_index = {c: k for k, c in enumerate(category_ids)}
    category = [cat_index[e["category_id"]] for e in entries]
    scored = with_attributes.tolist()
    attr_column = {a: j for j, a in enumerate(sorted({a["id"] for a in gt.get("attributes", [])}))}
    attribute_lists = [
        e.get("attribute_ids") or [] if scored[k] else [] for e, k in zip(entries, category, strict=True)
    ]
    attributes = np.zeros((n, len(attr_column)), dtype=bool)
    rows = np.repeat(np.arange(n), [len(a) for a in attribute_lists])
    attributes[rows, [attr_column[a] for atts in attribute_lists for a in atts]] = True
    boxes = rles = None
    if "bbox" in iou_types:
        boxes = np.array([e["bbox"] for e in entries], dtype=np.float64).reshape(n, 4)
    if "segm" in iou_types and is_gt:
        sizes = {im["id"]: (im["height"], im["width"]) for im in gt["images"]}
        rles = [_rle(e["segmentation"], *sizes[e["image_id"]]) for e in entries]
    elif "segm" in iou_types:
        rles = [e["segmentation"] for e in entries]  # checked predictions: compressed RLEs already
    if is_gt:  # the annotated area, for either IoU type
        area = dict.fromkeys(iou_types, np.array([e["area"] for e in entries], dtype=np.float64))
        score = np.zeros(n)
        crowd = np.array([bool(e.get("iscrowd", 0)) for e in entries], dtype=bool)
        id_zero = np.array([e.get("id") == 0 for e in entries], dtype=bool)
    else:
        area = {"bbox": boxes[:, 2] * boxes[:, 3]} if boxes is not None else {}
        area |= {"segm": _mask_areas(rles)} if rles is not None else {}
        score = np.array([e["score"] for e in entries], dtype=np.float64)
        crowd = id_zero = np.zeros(n, dtype=bool)
    return _Instances(
        image=np.array([image_rank[e["image_id"]] for e in entries], dtype=np.int64),
        category=np.array(category, dtype=np.int64),
        score=score,
        crowd=crowd,
        id_zero=id_zero,
        attributes=attributes,
        area=area,
        boxes=boxes,
        rles=rles,
    )


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
