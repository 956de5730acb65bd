"""The fast path equals the metric's specification (:mod:`fashionseg.evaluation.reference`) float for float.

Every precision and recall entry of both evaluators (FPEval's 11 x 11 thresholds, COCOeval's 10) and the
summaries, boxes and masks, on small generated datasets holding what the definitions treat specially: crowd
regions (RLE and uncompressed), polygons, annotation id 0, images without ground truth or detections,
categories with detections only, tied scores, over 100 detections of one image and category, and attribute
lists whose F1s fall on both sides of every F1 threshold.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from support import gt_annotation

from fashionseg.data import ontology
from fashionseg.evaluation import accumulate
from fashionseg.evaluation.ground_truth import load_ground_truth
from fashionseg.evaluation.reference import attribute_f1, reference_curves, reference_summary
from fashionseg.evaluation.results import load_predictions
from fashionseg.evaluation.summary import COCO_KEYS, coco_result, summarize

ONTOLOGY = ontology.ontology_json()
ATTRIBUTE_IDS = [a["id"] for a in ONTOLOGY["attributes"]]
SHIRT, DRESS, SLEEVE, SHOE, BAG = 0, 10, 31, 23, 24  # with attributes (0, 10, 31), without (23, 24)
CATEGORIES = [c for c in ONTOLOGY["categories"] if c["id"] in (SHIRT, DRESS, SLEEVE, SHOE, BAG, 1)]
IOU_TYPES = ("bbox", "segm")


def _rle(mask: np.ndarray) -> dict[str, Any]:
    return {"size": list(mask.shape), "counts": mask_utils.encode(np.asfortranarray(mask))["counts"].decode()}


def _mask(box: list[float], height: int, width: int, ellipse: bool) -> np.ndarray:
    x, y, w, h = box
    ys, xs = np.mgrid[0:height, 0:width] + 0.5
    if ellipse:
        return (((xs - x - w / 2) / (w / 2)) ** 2 + ((ys - y - h / 2) / (h / 2)) ** 2 <= 1).astype(np.uint8)
    return ((xs >= x) & (xs < x + w) & (ys >= y) & (ys < y + h)).astype(np.uint8)


def _near(rng: np.random.Generator, box: list[float], height: int, width: int) -> list[float]:
    x, y, w, h = box
    w2, h2 = (float(np.clip(s * (1 + rng.normal(0, 0.2)), 2, m - 1)) for s, m in ((w, width), (h, height)))
    return [
        float(np.clip(x + rng.normal(0, 0.15) * w, 0, width - w2)),
        float(np.clip(y, 0, height - h2)),
        w2,
        h2,
    ]


def dataset(
    seed: int, num_images: int = 10, burst: bool = False
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Ground truth (ids from 0) and predictions; attributes from a pool of 8, so F1s spread over 0.5-1."""
    rng = np.random.default_rng(seed)
    pool = ATTRIBUTE_IDS[:8]
    images, annotations, predictions = [], [], []
    for image_id in range(1, num_images + 1):
        height, width = (int(v) for v in rng.integers(30, 200, 2))  # all three area ranges
        images.append({"id": image_id, "height": height, "width": width, "file_name": f"{image_id}.jpg"})
        gts = []
        for _ in range(0 if image_id == 4 else int(rng.integers(1, 8))):
            category = int(rng.choice([SHIRT, SHIRT, DRESS, SLEEVE, SHOE, BAG]))
            if gts and rng.random() < 0.4:  # an overlapping instance of the same category
                category, box = gts[-1]["category_id"], _near(rng, gts[-1]["bbox"], height, width)
            else:
                w, h = float(rng.uniform(3, 0.9 * width)), float(rng.uniform(3, 0.9 * height))
                box = [float(rng.uniform(0, width - w)), float(rng.uniform(0, height - h)), w, h]
            mask = _mask(box, height, width, bool(rng.random() < 0.5))
            if not mask.any():
                continue
            crowd = bool(rng.random() < 0.15)
            segmentation: Any = _rle(mask)
            if crowd and rng.random() < 0.5:
                flat = mask.flatten(order="F")
                runs = np.diff(np.r_[0, np.flatnonzero(np.diff(flat)) + 1, flat.size]).tolist()
                segmentation = {"size": [height, width], "counts": [0, *runs] if flat[0] else runs}
            elif not crowd and rng.random() < 0.3:
                x, y, w, h = box
                segmentation = [[x, y, x + w, y, x + w, y + h, x, y + h]]
            # the first id is 0, which pycocotools reads as "unmatched"
            ann = gt_annotation(len(annotations), image_id, category, mask, segmentation, crowd, rng, pool)
            gts.append(ann)
            annotations.append(ann)
        if image_id == 5:  # an image without detections
            continue
        boxes = []
        for ann in gts:
            for _ in range(int(rng.choice([0, 1, 1, 2, 3]))):
                kept = [a for a in ann["attribute_ids"] if rng.random() < 0.7]
                added = [int(a) for a in rng.choice(pool, int(rng.integers(0, 3)), False)]
                category = ann["category_id"] if rng.random() < 0.9 else int(rng.choice([SHIRT, 1, SHOE]))
                boxes.append((category, _near(rng, ann["bbox"], height, width), sorted(set(kept + added))))
        for _ in range(int(rng.integers(0, 5))):  # false positives, some in a category without ground truth
            w, h = float(rng.uniform(3, width / 2)), float(rng.uniform(3, height / 2))
            box = [float(rng.uniform(0, width - w)), float(rng.uniform(0, height - h)), w, h]
            boxes.append((int(rng.choice([SHIRT, 1, SHOE, DRESS])), box, [int(rng.choice(pool))]))
        if burst and image_id == 1:  # over 100 detections of one image and category: the best 100 count
            boxes += [(SHIRT, _near(rng, gts[0]["bbox"], height, width), []) for _ in range(104)]
        for category, box, attributes in boxes:
            predictions.append(
                {
                    "image_id": image_id,
                    "category_id": category,
                    "bbox": [round(v, 2) for v in box],
                    "score": round(float(rng.random()), 1),  # one decimal: many ties
                    "segmentation": _rle(_mask(box, height, width, bool(rng.random() < 0.5))),
                    "attribute_ids": attributes,
                }
            )
    gt = {
        "images": images,
        "annotations": annotations,
        "categories": CATEGORIES,
        "attributes": ONTOLOGY["attributes"],
    }
    return gt, predictions


def assert_fast_equals_reference(
    gt: dict[str, Any], predictions: list[dict[str, Any]], attribute_ids
) -> None:
    checked_gt = load_ground_truth(gt, IOU_TYPES, attribute_ids)
    checked = load_predictions(predictions, checked_gt, IOU_TYPES)
    for iou_type, acc in accumulate(checked_gt, checked, IOU_TYPES, attribute_ids).items():
        ref = reference_curves(checked_gt, checked, iou_type, attribute_ids)
        for name in ("precision", "recall", "coco_precision", "coco_recall"):
            assert np.array_equal(getattr(acc, name), getattr(ref, name)), (iou_type, name)
        expected = reference_summary(ref)
        stats = coco_result(acc.coco_precision, acc.coco_recall, acc.category_ids).stats
        assert dict(zip(COCO_KEYS, stats[:6].tolist(), strict=True)) == expected["coco"], iou_type
        for family in ("iou_f1", "iou", "f1"):
            fast = summarize(acc, family)
            assert {key: fast[key] for key in expected[family]} == expected[family], (iou_type, family)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fast_path_equals_the_reference(seed: int) -> None:
    gt, predictions = dataset(seed)
    assert any(a["iscrowd"] for a in gt["annotations"]) and gt["annotations"][0]["id"] == 0
    assert_fast_equals_reference(gt, predictions, ontology.attribute_category_ids())


def test_over_100_detections_and_other_attribute_categories() -> None:
    """A shoe (no attributes in Fashionpedia) declared attribute-scored, a sleeve not: both matchers swap."""
    gt, predictions = dataset(3, num_images=3, burst=True)
    assert_fast_equals_reference(gt, predictions, (SHIRT, SHOE))


def test_no_predictions_and_no_ground_truth() -> None:
    gt, predictions = dataset(4, num_images=3)
    assert_fast_equals_reference(gt, [], ontology.attribute_category_ids())
    assert_fast_equals_reference({**gt, "annotations": []}, predictions, ontology.attribute_category_ids())


def test_no_attribute_categories_is_iou_alone() -> None:
    gt, predictions = dataset(5, num_images=4)
    assert_fast_equals_reference(gt, predictions, ())


def test_attribute_f1_is_sklearns_macro_f1() -> None:
    """Both empty: 1; {a} against {}: (0 + 2(N-1)/(2N-1)) / 2, just below 0.5; all N against all N: 1."""
    n = len(ATTRIBUTE_IDS)
    assert attribute_f1([], [], n) == 1.0
    assert attribute_f1([7], [], n) == (2 * (n - 1) / (2 * n - 1)) / 2 < 0.5
    assert attribute_f1(range(n), range(n), n) == 1.0
    assert attribute_f1([1, 2, 3, 4], [1, 2, 3], n) == pytest.approx((6 / 7 + 2 * (n - 4) / (2 * n - 7)) / 2)
