"""The Fashionpedia metric (AP^IoU+F1) and the COCO part on hand-made cases whose numbers follow from the
definition, and the COCO part against pycocotools' own ``stats``."""

from __future__ import annotations

import contextlib
import io
import json
from itertools import product

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from fashionseg.data import ontology
from fashionseg.evaluation import evaluate
from fashionseg.evaluation.pairs import attribute_f1_matrix
from fashionseg.evaluation.params import F1_THRESHOLDS, IOU_THRESHOLDS

ATTRIBUTE_IDS = [a["id"] for a in ontology.ontology_json()["attributes"]]
N = len(ATTRIBUTE_IDS)
SHIRT, SHOE, SLEEVE = 0, 23, 31  # with attributes, without (an accessory), with (a part)
HEIGHT, WIDTH = 200, 300


def rle(box: list[int]) -> dict:
    mask = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)
    x, y, w, h = box
    mask[y : y + h, x : x + w] = 1
    encoded = mask_utils.encode(np.asfortranarray(mask))
    return {"size": [HEIGHT, WIDTH], "counts": encoded["counts"].decode()}


def ground_truth(objects: list[tuple[int, int, list[int], list[int]]]) -> dict:
    """objects: (image_id, category_id, integer box [x, y, w, h], attribute ids); all 46 categories listed."""
    onto = ontology.ontology_json()
    return {
        "images": [
            {"id": i, "height": HEIGHT, "width": WIDTH, "file_name": f"{i}.jpg"}
            for i in sorted({o[0] for o in objects})
        ],
        "annotations": [
            {
                "id": n,
                "image_id": image_id,
                "category_id": category,
                "bbox": [float(v) for v in box],
                "area": float(box[2] * box[3]),
                "segmentation": rle(box),
                "iscrowd": 0,
                "attribute_ids": attributes,
            }
            for n, (image_id, category, box, attributes) in enumerate(objects, start=1)
        ],
        "categories": onto["categories"],
        "attributes": onto["attributes"],
    }


def prediction(
    image_id: int, category: int, box: list[int], attributes: list[int], score: float = 0.9
) -> dict:
    return {
        "image_id": image_id,
        "category_id": category,
        "bbox": [float(v) for v in box],
        "segmentation": rle(box),
        "score": score,
        "attribute_ids": attributes,
        "attribute_scores": [0.8] * len(attributes),
    }


def macro_f1(gt: set[int], pred: set[int], universe: set[int] = frozenset(ATTRIBUTE_IDS)) -> float:
    """sklearn's binary 'macro' F1, from its definition: mean per-class F1 over the classes present."""
    scores = []
    for positive in (1, 0):
        g = gt if positive else universe - gt
        p = pred if positive else universe - pred
        if g or p:
            scores.append(2 * len(g & p) / (len(g) + len(p)))
    return sum(scores) / len(scores)


def thresholds_passed(value: float, thresholds: np.ndarray = F1_THRESHOLDS[:-1]) -> int:
    return int(np.sum(value >= thresholds))


# Boxes of each COCO size: small (< 32^2), medium, large (> 96^2).
SMALL, MEDIUM, LARGE = [10, 10, 20, 20], [40, 30, 50, 40], [100, 60, 120, 100]
OBJECTS = [
    (1, SHIRT, LARGE, [ATTRIBUTE_IDS[0], ATTRIBUTE_IDS[5]]),
    (1, SLEEVE, SMALL, [ATTRIBUTE_IDS[40]]),
    (1, SHOE, MEDIUM, []),
    (2, SLEEVE, MEDIUM, [ATTRIBUTE_IDS[10], ATTRIBUTE_IDS[11]]),
    (2, SHIRT, SMALL, [ATTRIBUTE_IDS[0]]),
]


def test_perfect_predictions_score_100_everywhere() -> None:
    preds = [prediction(i, c, box, atts) for i, c, box, atts in OBJECTS]
    metrics = evaluate(ground_truth(OBJECTS), preds, show_progress=False)
    for iou_type, family in product(("bbox", "segm"), ("coco", "iou", "iou_f1", "f1")):
        for key, value in metrics[iou_type][family].items():
            assert value == pytest.approx(100.0), (iou_type, family, key)
    assert set(metrics["bbox"]["iou"]) >= {"APo", "APa", "APp"}
    assert "APa" not in metrics["bbox"]["iou_f1"]  # accessories carry no attributes
    for name, row in metrics["per_category"].items():
        if name in ("shirt, blouse", "sleeve", "shoe"):
            assert all(v == pytest.approx(100.0) for v in row.values()), name
        else:
            assert all(v is None for v in row.values()), name  # no ground truth: undefined, not 0


def test_right_boxes_wrong_attributes() -> None:
    """IoU AP stays 100; every attribute pair has F1 < 0.5, so only the shoe (no attributes) scores."""
    wrong = {SHIRT: [ATTRIBUTE_IDS[200]], SLEEVE: [ATTRIBUTE_IDS[201]], SHOE: []}
    preds = [prediction(i, c, box, wrong[c]) for i, c, box, _ in OBJECTS]
    for _, c, _, atts in OBJECTS:
        assert macro_f1(set(atts), set(wrong[c])) < 0.5 or c == SHOE
    metrics = evaluate(ground_truth(OBJECTS), preds, show_progress=False)
    box = metrics["bbox"]
    assert box["coco"]["AP"] == pytest.approx(100.0)
    assert box["iou"]["AP"] == pytest.approx(100.0)
    # Slices: shirt and sleeve one per F1 threshold (10 each, all 0), the shoe one (100): 100 / 21.
    assert box["iou_f1"]["AP"] == pytest.approx(100.0 / 21)
    assert box["f1"]["AP"] == pytest.approx(100.0 / 21)
    assert box["iou_f1"]["AP_F150"] == pytest.approx(100.0 / 3)  # one slice per category at a fixed F1
    assert box["iou_f1"]["APo"] == 0.0 and box["iou_f1"]["APp"] == 0.0
    assert box["iou"]["APa"] == pytest.approx(100.0)
    shirt = metrics["per_category"]["shirt, blouse"]
    assert shirt["bbox_AP_iou"] == pytest.approx(100.0) and shirt["bbox_AP_iou_f1"] == 0.0
    assert "bbox_AP_iou_f1" not in metrics["per_category"]["shoe"]


@pytest.mark.parametrize(
    ("gt_attributes", "pred_attributes"),
    [
        ([ATTRIBUTE_IDS[7]], []),  # {a} vs {}: F1 = (2(N-1)/(2N-1)) / 2 = 0.4991, just below 0.5
        (ATTRIBUTE_IDS[:20], ATTRIBUTE_IDS[:1]),  # one of 20 found: F1 = 0.5308, just above 0.5
        (ATTRIBUTE_IDS[:4], ATTRIBUTE_IDS[:3]),  # three of four: F1 = 0.9276, all but 0.95
        ([], []),  # both empty: F1 = 1
    ],
)
def test_attribute_f1_against_the_thresholds(gt_attributes: list[int], pred_attributes: list[int]) -> None:
    """With a perfect box, AP^IoU+F1 = 100 x (F1 thresholds the pair's F1 reaches) / 10."""
    f1 = macro_f1(set(gt_attributes), set(pred_attributes))
    objects = [(1, SHIRT, LARGE, gt_attributes)]
    metrics = evaluate(
        ground_truth(objects), [prediction(1, SHIRT, LARGE, pred_attributes)], show_progress=False
    )
    expected = 100.0 * thresholds_passed(f1) / 10
    assert metrics["bbox"]["iou_f1"]["AP"] == pytest.approx(expected)
    assert metrics["segm"]["f1"]["AP"] == pytest.approx(expected)
    assert metrics["bbox"]["iou_f1"]["AP_F150"] == pytest.approx(100.0 if f1 >= 0.5 else 0.0)
    assert metrics["bbox"]["iou"]["AP"] == pytest.approx(100.0)


def test_iou_and_f1_thresholds_combine() -> None:
    """IoU 0.72 passes 5 IoU thresholds, F1 0.928 passes 9 F1 thresholds: AP^IoU+F1 = 100 x 5 x 9 / 100."""
    gt_box, pred_box = [0, 0, 100, 100], [0, 0, 100, 72]
    objects = [(1, SHIRT, gt_box, ATTRIBUTE_IDS[:4])]
    metrics = evaluate(
        ground_truth(objects), [prediction(1, SHIRT, pred_box, ATTRIBUTE_IDS[:3])], show_progress=False
    )
    iou_passed = thresholds_passed(0.72, IOU_THRESHOLDS[:-1])
    f1_passed = thresholds_passed(macro_f1(set(ATTRIBUTE_IDS[:4]), set(ATTRIBUTE_IDS[:3])))
    assert (iou_passed, f1_passed) == (5, 9)
    for iou_type in ("bbox", "segm"):
        m = metrics[iou_type]
        assert m["iou_f1"]["AP"] == pytest.approx(100.0 * iou_passed * f1_passed / 100)
        assert m["iou"]["AP"] == pytest.approx(100.0 * iou_passed / 10)
        assert m["f1"]["AP"] == pytest.approx(100.0 * f1_passed / 10)
        assert m["iou_f1"]["AP_IOU50_F175"] == pytest.approx(100.0)
        assert m["iou_f1"]["AP_IOU75_F150"] == 0.0


def test_categories_with_and_without_attributes() -> None:
    """Attributes predicted on a shoe are ignored, unless the caller declares shoes attribute-scored."""
    objects = [(1, SHOE, LARGE, [])]
    preds = [prediction(1, SHOE, LARGE, ATTRIBUTE_IDS[:3])]
    default = evaluate(ground_truth(objects), preds, iou_types=("bbox",), show_progress=False)
    assert default["bbox"]["iou_f1"]["AP"] == pytest.approx(100.0)
    declared = evaluate(
        ground_truth(objects), preds, iou_types=("bbox",), attribute_category_ids=[SHOE], show_progress=False
    )
    assert macro_f1(set(), set(ATTRIBUTE_IDS[:3])) < 0.5
    assert declared["bbox"]["iou_f1"]["AP"] == 0.0
    assert declared["bbox"]["iou"]["AP"] == pytest.approx(100.0)


def test_no_attribute_categories_means_iou_alone() -> None:
    preds = [prediction(i, c, box, []) for i, c, box, _ in OBJECTS]
    metrics = evaluate(
        ground_truth(OBJECTS), preds, iou_types=("bbox",), attribute_category_ids=(), show_progress=False
    )
    assert metrics["bbox"]["iou_f1"]["AP"] == pytest.approx(metrics["bbox"]["iou"]["AP"])
    assert metrics["bbox"]["iou_f1"]["AP"] == pytest.approx(100.0)


def test_empty_predictions_score_zero_where_there_is_ground_truth() -> None:
    metrics = evaluate(ground_truth(OBJECTS), [], show_progress=False)
    for iou_type, family in product(("bbox", "segm"), ("coco", "iou", "iou_f1", "f1")):
        assert all(v == 0.0 for v in metrics[iou_type][family].values()), (iou_type, family)
    assert metrics["per_category"]["shoe"]["bbox_AP"] == 0.0
    assert metrics["per_category"]["hat"]["bbox_AP"] is None


def test_attribute_f1_matrix_matches_the_definition() -> None:
    rng = np.random.default_rng(0)
    num = 12
    dt = rng.random((7, num)) < rng.random((7, 1))
    gt = rng.random((5, num)) < rng.random((5, 1))
    dt[0], gt[0], dt[1], gt[1] = False, False, True, True  # empty and full vectors
    f1 = attribute_f1_matrix(dt, gt)
    for i, j in product(range(7), range(5)):
        expected = macro_f1(set(np.flatnonzero(gt[j])), set(np.flatnonzero(dt[i])), set(range(num)))
        assert f1[i, j] == pytest.approx(expected, abs=1e-15)
    one_vs_none = attribute_f1_matrix(np.zeros((1, N), bool), np.eye(1, N, dtype=bool))[0, 0]
    assert one_vs_none == pytest.approx((2 * (N - 1) / (2 * N - 1)) / 2) and 0.499 < one_vs_none < 0.5


def _random_files(tmp_path, with_box_in_segm: bool):
    """A small random dataset with GT polygons, crowd RLE, and predictions carrying extra keys."""
    rng = np.random.default_rng(3)
    objects, preds = [], []
    for image_id in range(1, 9):
        for _ in range(4):
            w, h = (int(v) for v in rng.integers(4, 140, 2))
            x, y = int(rng.integers(0, WIDTH - w)), int(rng.integers(0, HEIGHT - h))
            category = int(rng.choice([SHIRT, SHOE, SLEEVE, 5]))
            objects.append((image_id, category, [x, y, w, h], [ATTRIBUTE_IDS[int(rng.integers(N))]]))
            for _ in range(int(rng.integers(0, 3))):
                dx, dy = (int(v) for v in rng.integers(-6, 7, 2))
                box = [max(0, x + dx), max(0, y + dy), w, h]
                preds.append(prediction(image_id, category, box, [], round(float(rng.random()), 2)))
        preds.append(prediction(image_id, SHIRT, [0, 0, 30, 30], [], 0.5))
    gt = ground_truth(objects)
    gt["annotations"][0]["iscrowd"] = 1
    gt["annotations"][1]["segmentation"] = [[float(v) for v in (5, 5, 60, 5, 60, 40, 5, 40)]]
    if not with_box_in_segm:
        preds = [{k: v for k, v in p.items() if k != "bbox"} for p in preds]
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "pred.json").write_text(json.dumps(preds))
    return tmp_path / "gt.json", tmp_path / "pred.json"


def _pycocotools_stats(gt_path, results, iou_type: str) -> np.ndarray:
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(gt_path))
        evaluator = COCOeval(coco, coco.loadRes(results), iou_type)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator.stats[:6] * 100


def test_coco_part_equals_pycocotools_stats(tmp_path) -> None:
    """Exactly: the fast COCO part reduces the same curves as pycocotools (tests/test_coco_fast.py)."""
    gt_path, pred_path = _random_files(tmp_path, with_box_in_segm=True)
    ours = evaluate(gt_path, pred_path, iou_types=("bbox",), show_progress=False)["bbox"]["coco"]
    assert list(ours.values()) == list(_pycocotools_stats(gt_path, str(pred_path), "bbox"))
    gt_path, segm_path = _random_files(tmp_path, with_box_in_segm=False)
    ours = evaluate(gt_path, segm_path, iou_types=("segm",), show_progress=False)["segm"]["coco"]
    assert list(ours.values()) == list(_pycocotools_stats(gt_path, str(segm_path), "segm"))


def test_mask_ap_uses_mask_area_for_size_ranges(tmp_path) -> None:
    """pycocotools takes a result's box area when it has a box; mask AP here uses the mask area, as
    detectron2 does. Loose boxes move detections between size ranges; AP, AP50 and AP75 do not change."""
    gt_path, pred_path = _random_files(tmp_path, with_box_in_segm=True)
    preds = json.loads(pred_path.read_text())
    for p in preds:
        p["bbox"] = [p["bbox"][0], p["bbox"][1], 4 * p["bbox"][2], 4 * p["bbox"][3]]
    ours = evaluate(gt_path, preds, iou_types=("segm",), show_progress=False)["segm"]["coco"]
    without_boxes = [{k: v for k, v in p.items() if k != "bbox"} for p in preds]
    assert list(ours.values()) == pytest.approx(list(_pycocotools_stats(gt_path, without_boxes, "segm")))
    raw = _pycocotools_stats(gt_path, preds, "segm")
    assert [ours["AP"], ours["AP50"], ours["AP75"]] == pytest.approx(list(raw[:3]))
    assert [ours["APs"], ours["APm"], ours["APl"]] != pytest.approx(list(raw[3:]))


@pytest.mark.parametrize("false_positives", [99, 100])
def test_only_the_best_100_detections_of_an_image_and_category_count(false_positives: int) -> None:
    objects = [(1, SHIRT, LARGE, [])]
    preds = [prediction(1, SHIRT, [0, 0, 5, 5], [], score=0.9) for _ in range(false_positives)]
    preds.append(prediction(1, SHIRT, LARGE, [], score=0.1))
    metrics = evaluate(ground_truth(objects), preds, iou_types="bbox", show_progress=False)["bbox"]
    found = false_positives < 100  # the true detection ranks 100th, or 101st and is dropped
    for family in ("coco", "iou", "iou_f1"):
        assert (metrics[family]["AP"] > 0) == found, family
    assert metrics["iou"]["AR@100"] == pytest.approx(100.0 if found else 0.0)
