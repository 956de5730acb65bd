"""Stage 2 of the fast path: the image-category pairs that have both detections and ground truths, with the
IoU and attribute-F1 of every detection-ground truth couple in them.

Only these pairs need matching: in any other pair a detection is a false positive, or ignored outside an
area range, whatever the thresholds. Pairs are stacked into buckets of equal (padded) numbers of detections
and ground truths, so that the matching handles a bucket's pairs together (:mod:`.matching`). Mask IoUs come
from one pycocotools call per image, each pair's block gathered from it; box IoUs are computed per bucket
with pycocotools' own float operations (:func:`box_iou`); a bucket's F1s are one matrix product.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pycocotools import mask as mask_utils
from tqdm.auto import tqdm

from fashionseg.evaluation.instances import Instances


@dataclass(frozen=True)
class Bucket:
    """Image-category pairs with the same (padded) numbers of detections and ground truths, stacked.

    Padding detections and ground truths have IoU -inf with everything, so they never match; their F1s
    (taken from a real entry of the pair) are never read.
    """

    size: tuple[int, int, bool]  # (D, G, whether the category carries attributes)
    candidate: np.ndarray  # int [P, D] the detections' candidate indices; the number of candidates: padding
    gt: np.ndarray  # int [P, G] ground-truth indices; -1: padding
    ious: dict[str, np.ndarray]  # IoU type -> [P, D, G]
    f1s: np.ndarray | None  # [P, D, G] attribute F1 (:func:`attribute_f1_matrix`); None without attributes


@dataclass(frozen=True)
class _Pairs:
    """The pairs with both detections and ground truths, pair after pair, images in order.

    Arrays over the P pairs, their c detections (the candidates) and g ground truths laid end to end.
    """

    key: np.ndarray  # int [P] image rank * K + category index
    dt_count: np.ndarray  # int [P]
    gt_count: np.ndarray  # int [P]
    dt_offset: np.ndarray  # int [P + 1] where each pair's detections start among the candidates
    gt_offset: np.ndarray  # int [P + 1] where each pair's ground truths start in ``ground_truths``
    candidates: np.ndarray  # int [c] the detections' positions in the detection order
    ground_truths: np.ndarray  # int [g] ground-truth indices
    image_bounds: np.ndarray  # int [images + 1] where each image's pairs start
    image_of_pair: np.ndarray  # int [P] the image (0 .. images - 1, among the pairs' images) of each pair


@dataclass(frozen=True)
class _MaskIous:
    """Mask IoUs of the pairs: each image's [d, g] matrix flattened, the images' laid end to end."""

    flat: dict[str, np.ndarray]  # IoU type -> float64 [...]; a last -inf entry, the padding's IoU
    block_start: np.ndarray  # int [P] where each pair's block starts in ``flat``
    row_length: np.ndarray  # int [P] the ground truths of the pair's image (a row of its matrix)


def pair_buckets(
    gts: Instances,
    dts: Instances,
    gt_order: np.ndarray,
    dt_order: np.ndarray,
    num_cats: int,
    with_attributes: np.ndarray,
    iou_types: Sequence[str],
    show_progress: bool,
) -> tuple[dict[tuple[int, int, bool], Bucket], np.ndarray]:
    """The image-category pairs that have both detections and ground truths, by (D, G, with attributes).

    ``gt_order`` sorts the ground truths by (image, category), ``dt_order`` the detections by (image,
    category, decreasing score), the kept ones only. Also returns the candidates: int [c] the positions (in
    ``dt_order``) of the pairs' detections, pair after pair; buckets refer to them by index.
    """
    pairs = _pairs(gts, dts, gt_order, dt_order, num_cats)
    mask_ious = _mask_ious(pairs, gts, dts, dt_order, iou_types, show_progress)
    attributes = with_attributes[pairs.key % num_cats]
    size_key, padded, width = _bucket_shapes(pairs, attributes)
    buckets = {}
    for key in np.unique(size_key):
        chosen = np.flatnonzero(size_key == key)
        size = (int(padded[chosen[0]]), int(width[chosen[0]]), bool(attributes[chosen[0]]))
        buckets[size] = _bucket(size, chosen, pairs, mask_ious, gts, dts, dt_order, iou_types)
    return buckets, pairs.candidates


def _pairs(
    gts: Instances, dts: Instances, gt_order: np.ndarray, dt_order: np.ndarray, num_cats: int
) -> _Pairs:
    """The pairs present on both sides, and their detections and ground truths, pair after pair."""
    gt_keys, gt_start, gt_count = np.unique(
        gts.image[gt_order] * num_cats + gts.category[gt_order], return_index=True, return_counts=True
    )
    dt_keys, dt_start, dt_count = np.unique(
        dts.image[dt_order] * num_cats + dts.category[dt_order], return_index=True, return_counts=True
    )
    key, dt_pair, gt_pair = np.intersect1d(dt_keys, gt_keys, assume_unique=True, return_indices=True)
    dt_start, dt_count, gt_start, gt_count = (
        dt_start[dt_pair],
        dt_count[dt_pair],
        gt_start[gt_pair],
        gt_count[gt_pair],
    )
    dt_offset, gt_offset = np.r_[0, np.cumsum(dt_count)], np.r_[0, np.cumsum(gt_count)]
    candidates = np.repeat(dt_start - dt_offset[:-1], dt_count) + np.arange(dt_offset[-1])
    ground_truths = gt_order[np.repeat(gt_start - gt_offset[:-1], gt_count) + np.arange(gt_offset[-1])]
    image_first_pair = np.unique(key // num_cats, return_index=True)[1]
    image_of_pair = np.repeat(np.arange(image_first_pair.size), np.diff(np.r_[image_first_pair, key.size]))
    return _Pairs(
        key,
        dt_count,
        gt_count,
        dt_offset,
        gt_offset,
        candidates,
        ground_truths,
        np.r_[image_first_pair, key.size],
        image_of_pair,
    )


def _mask_ious(
    pairs: _Pairs,
    gts: Instances,
    dts: Instances,
    dt_order: np.ndarray,
    iou_types: Sequence[str],
    show_progress: bool,
) -> _MaskIous:
    """One pycocotools ``iou`` call per image (segm only: box IoUs are computed per bucket, with numpy)."""
    bounds, image_of_pair = pairs.image_bounds, pairs.image_of_pair
    row_length = (pairs.gt_offset[bounds[1:]] - pairs.gt_offset[bounds[:-1]])[image_of_pair]  # [P]
    dt_bounds, gt_bounds = pairs.dt_offset[bounds].tolist(), pairs.gt_offset[bounds].tolist()
    mask_types = [t for t in iou_types if t == "segm"]
    flat: dict[str, list[np.ndarray]] = {t: [] for t in mask_types}
    for image in tqdm(
        range(bounds.size - 1 if mask_types else 0),
        desc="evaluate (IoUs)",
        unit="image",
        disable=not show_progress,
        leave=False,
    ):
        d = dt_order[pairs.candidates[dt_bounds[image] : dt_bounds[image + 1]]]
        g = pairs.ground_truths[gt_bounds[image] : gt_bounds[image + 1]]
        crowd = gts.crowd[g].astype(np.uint8)
        for t in mask_types:
            flat[t].append(np.ravel(mask_utils.iou(dts.geometry(t, d), gts.geometry(t, g), crowd)))
    # Where each pair's block starts in its image's flattened IoU matrix, laid end to end.
    image_start = np.r_[0, np.cumsum(np.diff(pairs.dt_offset[bounds]) * np.diff(pairs.gt_offset[bounds]))]
    row0 = pairs.dt_offset[:-1] - pairs.dt_offset[bounds[:-1]][image_of_pair]
    col0 = pairs.gt_offset[:-1] - pairs.gt_offset[bounds[:-1]][image_of_pair]
    block_start = image_start[image_of_pair] + row0 * row_length + col0
    # A last -inf entry: the IoU of the padding detections, which therefore never match.
    return _MaskIous({t: np.concatenate([*v, [-np.inf]]) for t, v in flat.items()}, block_start, row_length)


def _bucket_shapes(pairs: _Pairs, attributes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each pair's bucket key, and its bucket's padded numbers of detections and ground truths, all [P].

    Pairs with one ground truth are matched without a loop, in buckets of their own size. For the others
    the detections are padded to a power of two and the ground truths to the most in the bucket (padding
    never matches), so that few, large buckets are looped over.
    """
    several = pairs.gt_count > 1
    padded = np.where(several, 2 ** np.ceil(np.log2(pairs.dt_count)).astype(np.int64), pairs.dt_count)
    size_key = (padded * 2 + attributes) * 2 + several
    width = np.ones_like(pairs.gt_count)
    for key in np.unique(size_key[several]):
        chosen = size_key == key
        width[chosen] = pairs.gt_count[chosen].max()
    return size_key, padded, width


def _bucket(
    size: tuple[int, int, bool],
    chosen: np.ndarray,
    pairs: _Pairs,
    mask_ious: _MaskIous,
    gts: Instances,
    dts: Instances,
    dt_order: np.ndarray,
    iou_types: Sequence[str],
) -> Bucket:
    """The pairs ``chosen`` (int [P]) stacked and padded to ``size``, with their IoUs and F1s."""
    dt_count, gt_count = pairs.dt_count[chosen, None], pairs.gt_count[chosen, None]
    dt_offset, gt_offset = pairs.dt_offset[chosen, None], pairs.gt_offset[chosen, None]
    rows, cols = np.arange(size[0]), np.arange(size[1])
    real = rows < dt_count  # [P, D]
    real_gt = cols < gt_count  # [P, G]
    padding = ~(real[..., None] & real_gt[:, None])  # [P, D, G]
    row_start = (
        mask_ious.block_start[chosen, None, None] + rows[:, None] * mask_ious.row_length[chosen, None, None]
    )
    cell = row_start + cols  # [P, D, G] the pairs' IoUs in the flat mask IoUs; padding: the -inf entry
    ious = {t: flat[np.where(padding, flat.size - 1, cell)] for t, flat in mask_ious.flat.items()}
    # Padding takes the pair's last detection and ground truth: its IoU is set to -inf, its F1 unread.
    gt_index = pairs.ground_truths[gt_offset + np.minimum(cols, gt_count - 1)]
    dt_index = dt_order[pairs.candidates[dt_offset + np.minimum(rows, dt_count - 1)]]
    if "bbox" in iou_types:
        box = box_iou(dts.boxes[dt_index], gts.boxes[gt_index], gts.crowd[gt_index])
        ious["bbox"] = np.where(padding, -np.inf, box)
    f1s = None
    if size[2]:
        f1s = attribute_f1_matrix(dts.attribute_rows(dt_index), gts.attribute_rows(gt_index))
    return Bucket(
        size,
        np.where(real, dt_offset + rows, pairs.candidates.size),
        np.where(real_gt, gt_index, -1),
        ious,
        f1s,
    )


def box_iou(dt: np.ndarray, gt: np.ndarray, crowd: np.ndarray) -> np.ndarray:
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
