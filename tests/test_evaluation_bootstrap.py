"""The bootstrap interval of COCO AP: its AP against pycocotools, its image weights against literal resamples.

Timing note (not a test): 40 images, 20 categories, 2000 detections, 1000 resamples took 2.7-3.9 s for
bootstrap_ap (segm or bbox; about 0.4 s of it the one ``evaluate``), on a 2-core machine under load (nice 19,
with a training job running).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from fashionseg.errors import FashionsegError
from fashionseg.evaluation.bootstrap import bootstrap_ap, evaluate_images, paired_difference, weighted_ap
from fashionseg.evaluation.coco import coco_from_dict, pycocotools_evaluate

IOU_TYPES = ("bbox", "segm")


def _rle(mask: np.ndarray) -> dict[str, Any]:
    encoded = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": list(mask.shape), "counts": encoded["counts"].decode()}


def _box(rng: np.random.Generator, height: int, width: int) -> list[int]:
    w, h = int(rng.integers(4, width // 2)), int(rng.integers(4, height // 2))
    return [int(rng.integers(0, width - w)), int(rng.integers(0, height - h)), w, h]


def _box_mask(box: list[float], height: int, width: int, ellipse: bool = False) -> np.ndarray:
    x, y, w, h = box
    ys, xs = np.mgrid[0:height, 0:width] + 0.5
    if ellipse:
        return ((xs - x - w / 2) / (w / 2)) ** 2 + ((ys - y - h / 2) / (h / 2)) ** 2 <= 1
    return (xs >= x) & (xs < x + w) & (ys >= y) & (ys < y + h)


def _dataset(
    seed: int, num_images: int = 10, num_categories: int = 4, ties: bool = True
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Ground truth (polygons, RLE, one crowd region, an image without any) and noisy predictions.

    Predictions carry both a box and a mask, an extra ``attribute_ids`` key, some wrong categories, false
    positives in a category without ground truth, and (image 1) more than 100 of one category. With
    ``ties`` the scores have one decimal, so many are tied.
    """
    rng = np.random.default_rng(seed)
    images, annotations, predictions = [], [], []
    for image_id in range(1, num_images + 1):
        height, width = (int(v) for v in rng.integers(40, 80, 2))
        images.append({"id": image_id, "height": height, "width": width, "file_name": f"{image_id}.jpg"})
        gts = []
        for _ in range(0 if image_id == 3 else int(rng.integers(1, 6))):
            box, category = _box(rng, height, width), int(rng.integers(1, num_categories + 1))
            ellipse = bool(rng.random() < 0.5)
            mask = _box_mask(box, height, width, ellipse)
            x, y, w, h = box
            polygon = [[x, y, x + w, y, x + w, y + h, x, y + h]]
            segmentation = _rle(mask) if ellipse else polygon
            gts.append({"bbox": box, "category_id": category, "segmentation": segmentation, "mask": mask})
        if image_id == 2:
            box = [0, 0, width // 2, height // 2]
            crowd = {"bbox": box, "category_id": 1, "mask": _box_mask(box, height, width), "iscrowd": 1}
            gts.append({**crowd, "segmentation": _rle(crowd["mask"])})
        for g in gts:
            mask = g.pop("mask")
            annotations.append(
                {
                    **g,
                    "id": len(annotations) + 1,
                    "image_id": image_id,
                    "area": float(mask.sum()),
                    "iscrowd": g.get("iscrowd", 0),
                }
            )
            if rng.random() < 0.85:
                x, y, w, h = g["bbox"]
                jitter = rng.normal(0, 0.15, 4) * [w, h, w, h]
                box = [float(x + jitter[0]), float(y + jitter[1]), float(w + jitter[2]), float(h + jitter[3])]
                category = (
                    g["category_id"] if rng.random() < 0.9 else int(rng.integers(1, num_categories + 1))
                )
                predictions.append(_prediction(rng, image_id, category, box, height, width, ties))
        for _ in range(int(rng.integers(0, 4))):
            category = int(rng.integers(1, num_categories + 2))
            predictions.append(
                _prediction(rng, image_id, category, _box(rng, height, width), height, width, ties)
            )
        if image_id == 1:
            for _ in range(105):
                box = _box(rng, height, width)
                predictions.append(_prediction(rng, image_id, 1, box, height, width, ties, scale=0.5))
    categories = [{"id": c, "name": f"c{c}"} for c in range(1, num_categories + 2)]
    return {"images": images, "annotations": annotations, "categories": categories}, predictions


def _prediction(
    rng: np.random.Generator,
    image_id: int,
    category: int,
    box: list[float],
    height: int,
    width: int,
    ties: bool,
    scale: float = 1.0,
) -> dict[str, Any]:
    score = scale * float(rng.random())
    return {
        "image_id": image_id,
        "category_id": category,
        "bbox": box,
        "segmentation": _rle(_box_mask(box, height, width, bool(rng.random() < 0.5))),
        "score": round(score, 1) if ties else score,
        "attribute_ids": [1, 2],
    }


def _resampled(
    gt: dict[str, Any], predictions: list[dict[str, Any]], counts: list[int]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The literal resample: image ``i`` (in id order) ``counts[i]`` times, each copy under a new id."""
    images, annotations, copies = [], [], []
    new_ids = iter(range(max(image["id"] for image in gt["images"]) + 1, 10**9))
    for image, count in zip(sorted(gt["images"], key=lambda i: i["id"]), counts, strict=True):
        for new_id in [image["id"], *(next(new_ids) for _ in range(count - 1))][:count]:
            images.append({**image, "id": new_id})
            for a in gt["annotations"]:
                if a["image_id"] == image["id"]:
                    annotations.append({**a, "id": len(annotations) + 1, "image_id": new_id})
            copies += [{**p, "image_id": new_id} for p in predictions if p["image_id"] == image["id"]]
    return {**gt, "images": images, "annotations": annotations}, copies


def _pycocotools_ap(gt: dict[str, Any], predictions: list[dict[str, Any]], iou_type: str) -> float:
    return 100.0 * float(pycocotools_evaluate(gt, predictions, iou_type).stats[0])


@pytest.mark.parametrize("iou_type", IOU_TYPES)
@pytest.mark.parametrize("seed", [0, 1])
def test_estimate_is_pycocotools_ap(iou_type: str, seed: int) -> None:
    gt, predictions = _dataset(seed)
    result = bootstrap_ap(gt, predictions, iou_type, resamples=5)
    assert result.estimate == _pycocotools_ap(gt, predictions, iou_type)  # the same float, not just close
    assert 0 < result.estimate < 100
    assert result.images == 10


@pytest.mark.parametrize("iou_type", IOU_TYPES)
def test_doubled_image_weight_is_the_duplicated_image(iou_type: str) -> None:
    gt, predictions = _dataset(2, ties=False)
    counts = [1] * 10
    counts[3] = 2  # image 4: ground truth and detections
    evaluated = evaluate_images(gt, predictions, iou_type)
    doubled = weighted_ap(evaluated, np.array([counts]))[0]
    expected = _pycocotools_ap(*_resampled(gt, predictions, counts), iou_type)
    assert doubled == pytest.approx(expected, abs=1e-12, rel=0)
    assert abs(doubled - weighted_ap(evaluated, np.ones((1, 10)))[0]) > 1e-6


@pytest.mark.parametrize("iou_type", IOU_TYPES)
def test_resample_weights_are_the_resampled_dataset(iou_type: str) -> None:
    gt, predictions = _dataset(3, ties=False)
    counts = [0, 2, 1, 0, 3, 1, 0, 2, 0, 1]  # image 1 (> 100 detections) and the crowd image 2 dropped
    got = weighted_ap(evaluate_images(gt, predictions, iou_type), np.array([counts, [1] * 10]))
    expected = _pycocotools_ap(*_resampled(gt, predictions, counts), iou_type)
    assert got[0] == pytest.approx(expected, abs=1e-12, rel=0)
    assert got[1] == pytest.approx(_pycocotools_ap(gt, predictions, iou_type), abs=1e-12, rel=0)


def test_image_weights_are_counts() -> None:
    """A weight is how often an image is drawn: fractions or negatives are refused, not accumulated."""
    evaluated = evaluate_images(*_dataset(2, num_images=3), "bbox")
    for weights in ([[0.5, 1, 1]], [[-1, 2, 1]]):
        with pytest.raises(FashionsegError, match="whole numbers >= 0"):
            weighted_ap(evaluated, np.array(weights))
    assert (
        weighted_ap(evaluated, np.array([[1.0, 2.0, 0.0]]))[0]
        == weighted_ap(evaluated, np.array([[1, 2, 0]]))[0]
    )


def test_interval_holds_the_estimate() -> None:
    gt, predictions = _dataset(4)
    result = bootstrap_ap(gt, predictions, "segm", resamples=200, level=0.9)
    assert result.low is not None and result.high is not None and result.estimate is not None
    assert result.low <= result.estimate <= result.high
    assert result.low < result.high
    assert (result.level, result.resamples, result.images) == (0.9, 200, 10)


def test_seed_fixes_the_interval() -> None:
    gt, predictions = _dataset(5)
    first = bootstrap_ap(gt, predictions, "bbox", resamples=100, seed=7)
    assert bootstrap_ap(gt, predictions, "bbox", resamples=100, seed=7) == first
    other = bootstrap_ap(gt, predictions, "bbox", resamples=100, seed=8)
    assert (other.low, other.high) != (first.low, first.high)
    assert other.estimate == first.estimate


def test_paired_difference_is_the_difference_of_the_two_aps_on_the_same_resamples() -> None:
    gt, predictions = _dataset(4)
    worse = [{**p, "score": p["score"] * 0.5} if i % 3 else p for i, p in enumerate(predictions)]
    worse = worse[: len(worse) * 2 // 3]
    a, b = evaluate_images(gt, predictions, "segm"), evaluate_images(gt, worse, "segm")
    paired = paired_difference(a, b, resamples=300, seed=3)
    assert paired.estimate == pytest.approx(
        _pycocotools_ap(gt, predictions, "segm") - _pycocotools_ap(gt, worse, "segm")
    )
    assert paired.low <= paired.estimate <= paired.high
    weights = np.random.default_rng(3).multinomial(10, np.full(10, 0.1), size=300)
    differences = weighted_ap(a, weights) - weighted_ap(b, weights)
    assert (paired.low, paired.high) == pytest.approx(tuple(np.percentile(differences, [2.5, 97.5])))
    # a model against itself: no difference in any resample
    same = paired_difference(a, a, resamples=50)
    assert (same.estimate, same.low, same.high) == (0.0, 0.0, 0.0)
    other_images = evaluate_images(_dataset(4, num_images=6)[0], [], "segm")
    with pytest.raises(FashionsegError, match="10 and 6 images"):
        paired_difference(a, other_images)


@pytest.mark.parametrize("iou_type", IOU_TYPES)
def test_perfect_predictions_score_100(iou_type: str) -> None:
    gt, _ = _dataset(6)
    gt["annotations"] = [a for a in gt["annotations"] if not a["iscrowd"]]
    coco = coco_from_dict(gt)
    predictions = [
        {
            "image_id": a["image_id"],
            "category_id": a["category_id"],
            "bbox": a["bbox"],
            "segmentation": coco.annToRLE(a),
            "score": 1.0 - 0.001 * i,
        }
        for i, a in enumerate(gt["annotations"])
    ]
    result = bootstrap_ap(gt, predictions, iou_type, resamples=50)
    assert (result.estimate, result.low, result.high) == (100.0, 100.0, 100.0)


def test_no_predictions_score_0() -> None:
    gt, _ = _dataset(7)
    result = bootstrap_ap(gt, [], "segm", resamples=50)
    assert (result.estimate, result.low, result.high) == (0.0, 0.0, 0.0)


def test_no_ground_truth_gives_none() -> None:
    gt, predictions = _dataset(8)
    gt["annotations"] = []
    result = bootstrap_ap(gt, predictions, "bbox", resamples=20)
    assert (result.estimate, result.low, result.high) == (None, None, None)
    assert result.images == 10


def test_inputs_are_not_modified() -> None:
    gt, predictions = _dataset(9)
    gt_before, predictions_before = copy.deepcopy(gt), copy.deepcopy(predictions)
    for iou_type in IOU_TYPES:
        bootstrap_ap(gt, predictions, iou_type, resamples=10)
    assert gt == gt_before
    assert predictions == predictions_before


@pytest.mark.parametrize(
    ("arguments", "value"),
    [
        ({"iou_type": "keypoints"}, "'keypoints' is not one of bbox, segm"),
        ({"resamples": 0}, "resamples 0"),
        ({"level": 1.0}, "level 1.0"),
        ({"level": 0}, "level 0"),
    ],
)
def test_bad_arguments_raise(arguments: dict[str, Any], value: str) -> None:
    gt, predictions = _dataset(0, num_images=2)
    with pytest.raises(FashionsegError, match=value):
        bootstrap_ap(gt, predictions, **arguments)
