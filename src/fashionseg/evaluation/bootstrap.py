"""A percentile-bootstrap confidence interval over validation images for COCO AP (box or mask).

A 40-image validation split is a small sample: two models' APs can differ by a point or more from which
images happened to be drawn. Resampling the images with replacement and recomputing AP gives the spread of
that noise, so a comparison can say whether a difference is larger than it.

Resampling images with replacement is the same as giving each image an integer weight (how often it was
drawn), and an image's matches do not depend on the other images. So pycocotools' ``COCOeval.evaluate``
runs once, and each resample only re-accumulates the precision curves with every detection and ground-truth
instance counted its image's weight times: :func:`weighted_ap` is ``COCOeval.accumulate`` (area ``all``,
100 detections) with weights, vectorised over the resamples. With all weights 1 it gives pycocotools' AP
float for float.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pycocotools.cocoeval import COCOeval

from fashionseg.errors import FashionsegError
from fashionseg.evaluation.coco import coco_from_dict, results_coco

IOU_TYPES = ("bbox", "segm")
_MAX_DETECTIONS = 100
# Elements of one [resamples, IoU thresholds, detections or R * K] block: bounds memory for many resamples
# or detections (a few arrays of this size are alive at once).
_BLOCK_ELEMENTS = 1 << 21


@dataclass(frozen=True)
class BootstrapInterval:
    """AP over all images (``estimate``) and its percentile interval ``[low, high]`` at ``level``, 0-100.

    All three are None when the ground truth has no annotations. ``resamples`` is the number of bootstrap
    resamples drawn, ``images`` the number of validation images resampled.
    """

    estimate: float | None
    low: float | None
    high: float | None
    level: float
    resamples: int
    images: int


@dataclass(frozen=True)
class CategoryMatches:
    """One category's evaluated detections over all images, in pycocotools' accumulate order.

    Detections sorted by score, highest first, with pycocotools' stable sort. ``tps``/``fps`` [T, D]: whether
    each is a true / false positive at each IoU threshold (ignored ones are neither); ``image`` [D]: the index
    of its image; ``gt_counts`` [I]: non-ignored ground-truth instances per image.
    """

    tps: np.ndarray
    fps: np.ndarray
    image: np.ndarray
    gt_counts: np.ndarray


@dataclass(frozen=True)
class EvaluatedImages:
    """``COCOeval.evaluate``'s matches, per category that has ground truth or detections in some image.

    ``images``: the number of images (pycocotools' sorted ``imgIds``); ``recall_thresholds`` [R].
    """

    categories: tuple[CategoryMatches, ...]
    images: int
    recall_thresholds: np.ndarray


def bootstrap_ap(
    gt: dict[str, Any],
    predictions: Sequence[dict[str, Any]],
    iou_type: str = "segm",
    resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> BootstrapInterval:
    """COCO AP (IoU .50:.95, all areas, 100 detections) of ``predictions`` on ``gt``, with its interval.

    The images of ``gt`` are drawn with replacement ``resamples`` times (``numpy.random.default_rng(seed)``);
    ``low``/``high`` are the ``(1 - level) / 2`` and ``1 - (1 - level) / 2`` percentiles of the resampled
    APs. Resamples without any ground truth are dropped. Neither input is modified.
    """
    if iou_type not in IOU_TYPES:
        raise FashionsegError(f"iou_type {iou_type!r} is not one of {', '.join(IOU_TYPES)}")
    _check_resampling(resamples, level)
    evaluated = evaluate_images(gt, predictions, iou_type)
    return _percentile_interval(lambda w: weighted_ap(evaluated, w), evaluated.images, resamples, level, seed)


def paired_difference(
    first: EvaluatedImages,
    second: EvaluatedImages,
    resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> BootstrapInterval:
    """AP of ``first`` minus AP of ``second`` (two models' :func:`evaluate_images` on the same ground
    truth), with a paired percentile interval: each resample draws one set of images and scores both models
    on it, so the interval is the noise of the *difference*, narrower than two separate intervals suggest.
    An interval that excludes 0 is a difference larger than the sampling of the validation images."""
    if first.images != second.images:
        raise FashionsegError(
            f"the two evaluations cover {first.images} and {second.images} images: a paired interval "
            "needs both models evaluated on the same ground truth"
        )
    _check_resampling(resamples, level)

    def difference(weights: np.ndarray) -> np.ndarray:
        return weighted_ap(first, weights) - weighted_ap(second, weights)

    return _percentile_interval(difference, first.images, resamples, level, seed)


def _check_resampling(resamples: int, level: float) -> None:
    if isinstance(resamples, bool) or not isinstance(resamples, int) or resamples < 1:
        raise FashionsegError(f"resamples {resamples!r} must be an integer >= 1")
    if not 0 < level < 1:
        raise FashionsegError(f"level {level!r} must lie strictly between 0 and 1 (e.g. 0.95)")


def _percentile_interval(
    statistic: Callable[[np.ndarray], np.ndarray], images: int, resamples: int, level: float, seed: int
) -> BootstrapInterval:
    """``statistic`` (image weights [B, I] -> values [B], NaN where undefined) at unit weights, with the
    percentile interval of its values over ``resamples`` multinomial resamples of the ``images``."""
    estimate = statistic(np.ones((1, images)))[0]
    if np.isnan(estimate):
        return BootstrapInterval(None, None, None, level, resamples, images)
    weights = np.random.default_rng(seed).multinomial(images, np.full(images, 1 / images), size=resamples)
    values = statistic(weights)
    values = values[~np.isnan(values)]
    if not values.size:
        return BootstrapInterval(float(estimate), None, None, level, resamples, images)
    low, high = np.percentile(values, [50 * (1 - level), 50 * (1 + level)])
    return BootstrapInterval(float(estimate), float(low), float(high), level, resamples, images)


def evaluate_images(
    gt: dict[str, Any], predictions: Sequence[dict[str, Any]], iou_type: str
) -> EvaluatedImages:
    """One ``COCOeval.evaluate`` of ``predictions`` on ``gt`` (area ``all``), kept as per-category matches.

    Categories without ground truth or detections in any image are left out: pycocotools' precision is -1
    for them, which the AP skips.
    """
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = coco_from_dict(gt)
        evaluator = COCOeval(coco_gt, results_coco(coco_gt, predictions, iou_type), iou_type)
        evaluator.evaluate()
    params = evaluator.params
    num_images, num_areas = len(params.imgIds), len(params.areaRng)
    all_area = params.areaRngLbl.index("all")
    categories = []
    for k in range(len(params.catIds)):
        start = (k * num_areas + all_area) * num_images
        per_image = [
            (i, e) for i, e in enumerate(evaluator.evalImgs[start : start + num_images]) if e is not None
        ]
        if per_image:
            categories.append(_category_matches(per_image, num_images))
    return EvaluatedImages(tuple(categories), num_images, np.asarray(params.recThrs, dtype=np.float64))


def _category_matches(per_image: list[tuple[int, dict[str, Any]]], num_images: int) -> CategoryMatches:
    """``COCOeval.accumulate``'s concatenation and stable sort of one category's per-image results."""
    scores = np.concatenate(
        [np.asarray(e["dtScores"][:_MAX_DETECTIONS], dtype=np.float64) for _, e in per_image]
    )
    order = np.argsort(-scores, kind="mergesort")
    matched = np.concatenate([e["dtMatches"][:, :_MAX_DETECTIONS] for _, e in per_image], axis=1)[:, order]
    ignored = np.concatenate([e["dtIgnore"][:, :_MAX_DETECTIONS] for _, e in per_image], axis=1)[:, order]
    image = np.concatenate(
        [np.full(min(len(e["dtScores"]), _MAX_DETECTIONS), i, dtype=np.intp) for i, e in per_image]
    )
    gt_counts = np.zeros(num_images)
    for i, e in per_image:
        gt_counts[i] = np.count_nonzero(e["gtIgnore"] == 0)
    tps = np.logical_and(matched, np.logical_not(ignored))
    fps = np.logical_and(np.logical_not(matched), np.logical_not(ignored))
    return CategoryMatches(tps, fps, image[order], gt_counts)


def weighted_ap(evaluated: EvaluatedImages, weights: np.ndarray) -> np.ndarray:
    """AP (0-100) for each row of image ``weights`` [B, I]; NaN where no category has ground truth.

    The mean over the valid entries of precision [T, R, K], in that layout, as ``COCOeval.summarize`` takes
    it: the mean adds the same numbers in the same order, so all-ones weights give pycocotools' float.
    """
    weights = np.asarray(weights, dtype=np.float64)
    aps = np.full(len(weights), np.nan)
    if not evaluated.categories:
        return aps
    thresholds = evaluated.categories[0].tps.shape[0]
    widest = max(
        max(c.tps.shape[1] for c in evaluated.categories),
        len(evaluated.recall_thresholds) * len(evaluated.categories),
    )
    block = max(1, _BLOCK_ELEMENTS // (thresholds * max(1, widest)))
    for start in range(0, len(weights), block):
        w = weights[start : start + block]
        precision = np.stack(
            [_precision(c, w, evaluated.recall_thresholds) for c in evaluated.categories], axis=-1
        )
        for b, p in enumerate(precision, start=start):
            valid = p[p > -1]
            if valid.size:
                aps[b] = 100.0 * float(np.mean(valid))
    return aps


def _precision(category: CategoryMatches, weights: np.ndarray, recall_thresholds: np.ndarray) -> np.ndarray:
    """``COCOeval.accumulate``'s precision [B, T, R] for one category, each image counted its weight times.

    -1 in the rows whose weights leave no ground truth, as pycocotools has for a category without any.
    """
    npig = weights @ category.gt_counts  # [B]
    valid = npig > 0
    w = weights[:, category.image][:, None, :]  # [B, 1, D]
    tp = np.cumsum(w * category.tps, axis=2)  # [B, T, D]
    fp = np.cumsum(w * category.fps, axis=2)
    rc = tp / np.where(valid, npig, 1.0)[:, None, None]
    pr = tp / (fp + tp + np.spacing(1))
    # Right-to-left running maximum: the precision envelope pycocotools' loop builds.
    envelope = np.maximum.accumulate(pr[..., ::-1], axis=2)[..., ::-1]
    # searchsorted(rc, recThrs, side="left") for every row at once: rc is non-decreasing along D, so the index
    # for threshold r is the number of detections with fewer than r + 1 thresholds <= their recall.
    rows, detections = rc.shape[0] * rc.shape[1], rc.shape[2]
    bins = len(recall_thresholds) + 1
    reached = np.searchsorted(recall_thresholds, rc, side="right").reshape(rows, detections)
    counts = np.bincount((np.arange(rows)[:, None] * bins + reached).ravel(), minlength=rows * bins)
    index = np.cumsum(counts.reshape(rows, bins), axis=1)[:, :-1]  # [rows, R]
    # An index past the last detection leaves pycocotools' precision 0 there.
    padded = np.concatenate([envelope.reshape(rows, detections), np.zeros((rows, 1))], axis=1)
    q = np.take_along_axis(padded, index, axis=1).reshape(rc.shape[0], rc.shape[1], -1)
    q[~valid] = -1.0
    return q
