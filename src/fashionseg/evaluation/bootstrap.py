"""A percentile-bootstrap confidence interval over validation images for COCO AP (box or mask).

A 40-image validation split is a small sample: two models' APs can differ by a point or more from which
images happened to be drawn. Resampling the images with replacement and recomputing AP gives the spread of
that noise, so a comparison can say whether a difference is larger than it.

Resampling images with replacement is the same as giving each image an integer weight (how often it was
drawn), and an image's matches do not depend on the other images. So pycocotools' ``COCOeval.evaluate``
runs once, and each resample only re-accumulates the precision curves with every detection and ground-truth
instance counted its image's weight times: :func:`weighted_ap` is ``COCOeval.accumulate`` (area ``all``,
100 detections) with weights, vectorised over the resamples, by the metrics' own accumulate
(:func:`fashionseg.evaluation.curves.interpolated_precision`). With all weights 1 it gives pycocotools' AP
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
from fashionseg.evaluation.curves import interpolated_precision

IOU_TYPES = ("bbox", "segm")
_MAX_DETECTIONS = 100
# Elements of one [resamples, IoU thresholds, detections or R * K] block: bounds memory for many resamples
# or detections (a few arrays of this size are alive at once).
_BLOCK_ELEMENTS = 1 << 21
# Resampled curves accumulated in one call: enough that numpy's per-call work is spread thin.
_CURVES_PER_CALL = 1 << 12


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
    weights = np.asarray(weights)
    if weights.size and (np.any(weights < 0) or np.any(weights != np.round(weights))):
        raise FashionsegError("image weights must be whole numbers >= 0: how often each image is drawn")
    weights = weights.astype(np.int64)
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
        precision = _precision(evaluated, weights[start : start + block])
        for b, p in enumerate(precision, start=start):
            valid = p[p > -1]
            if valid.size:
                aps[b] = 100.0 * float(np.mean(valid))
    return aps


def _precision(evaluated: EvaluatedImages, weights: np.ndarray) -> np.ndarray:
    """``COCOeval.accumulate``'s precision [B, T, R, K], each image counted its weight times.

    All categories' resampled curves at once, by the metrics' own accumulate
    (:func:`fashionseg.evaluation.curves.interpolated_precision`); -1 in the rows whose weights leave a
    category no ground truth, as pycocotools has for a category without any.
    """
    num_resamples, num_thresholds = len(weights), len(evaluated.categories[0].tps)
    per_call = max(1, _CURVES_PER_CALL // (num_resamples * num_thresholds))  # categories
    parts = []
    for lo in range(0, len(evaluated.categories), per_call):
        curves, seen, num_gt = [], [], []
        for k, category in enumerate(evaluated.categories[lo : lo + per_call]):
            curve, seen_at = _true_positives(category, weights)
            curves.append(curve + k * num_resamples * num_thresholds)
            seen.append(seen_at)
            num_gt.append(np.repeat((weights @ category.gt_counts).astype(np.int64), num_thresholds))
        curve, seen_at = np.concatenate(curves), np.concatenate(seen)
        parts.append(
            interpolated_precision(curve, seen_at, np.concatenate(num_gt), evaluated.recall_thresholds)
        )
    precision = np.concatenate(parts).reshape(len(evaluated.categories), num_resamples, num_thresholds, -1)
    return precision.transpose(1, 2, 3, 0)


def _true_positives(category: CategoryMatches, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One category's true positives on the resampled curves b * T + t, in curve order, and the true and
    false positives of their curve up to and including each: int [t], [t].

    An image drawn w times holds each of its true positives w times, one after the other. Precision rises
    along such a run (tp <= tp + fp), so its last copy, the weighted curve's point, is the maximum COCO's
    interpolation reads from any of them: the precision is the weighted curve's.
    """
    num_thresholds = len(category.tps)
    w = weights[:, category.image]  # [B, D]
    seen = np.cumsum(w[:, None, :] * (category.tps | category.fps), axis=2)  # [B, T, D]
    b, t, d = np.nonzero(category.tps & (w[:, None, :] > 0))  # curve after curve, by decreasing score
    count = w[b, d]
    copy = np.repeat(np.arange(count.size), count)
    later = np.repeat(np.cumsum(count), count) - np.arange(copy.size) - 1  # copies after it in its run
    return (b * num_thresholds + t)[copy], seen[b, t, d][copy] - later
