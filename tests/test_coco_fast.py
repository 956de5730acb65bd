"""The COCO part of the metrics (from the Fashionpedia pass, not COCOeval) against pycocotools itself.

Every comparison is exact (max |diff| 0): the fast path summarises the same curves with pycocotools' own
reductions, so there is no tolerance to state. The random datasets hold what COCOeval treats specially:
crowd regions (RLE and polygon), more than 100 detections of one image and category, images without ground
truth or without detections, categories with detections but no ground truth, annotation id 0, tied scores.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from support import gt_annotation

from fashionseg.data import ontology
from fashionseg.evaluation import accumulate, eval_supercategories, evaluate
from fashionseg.evaluation.coco import pycocotools_evaluate
from fashionseg.evaluation.ground_truth import load_ground_truth
from fashionseg.evaluation.results import load_predictions
from fashionseg.evaluation.summary import COCO_KEYS, coco_result
from fashionseg.evaluation.synthetic import jittered_box

ONTOLOGY = ontology.ontology_json()
ATTRIBUTE_IDS = [a["id"] for a in ONTOLOGY["attributes"]]
SHIRT, SHOE = 0, 23  # with attributes, without
# Ground truth in a few categories only: the others get false positives and no ground truth.
GT_CATEGORIES = [SHIRT, 1, 6, SHOE, 24, 31, 32]


def _mask(rng: np.random.Generator, box: list[float], height: int, width: int) -> np.ndarray:
    x, y, w, h = box
    ys, xs = np.mgrid[0:height, 0:width]
    if rng.random() < 0.5:
        inside = ((xs + 0.5 - x - w / 2) / (w / 2)) ** 2 + ((ys + 0.5 - y - h / 2) / (h / 2)) ** 2 <= 1
    else:
        inside = (xs >= int(x)) & (xs < int(x + w)) & (ys >= int(y)) & (ys < int(y + h))
    return inside.astype(np.uint8)


def _box(rng: np.random.Generator, height: int, width: int) -> list[float]:
    w, h = (float(rng.uniform(3, 0.9 * s)) for s in (width, height))
    return [float(rng.uniform(0, width - w)), float(rng.uniform(0, height - h)), w, h]


def _rle(mask: np.ndarray) -> dict[str, Any]:
    encoded = mask_utils.encode(np.asfortranarray(mask))
    return {"size": list(mask.shape), "counts": encoded["counts"].decode()}


def random_dataset(seed: int, num_images: int = 14) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Ground truth (ids from 0) and predictions with COCOeval's special cases; small images, sizes vary."""
    rng = np.random.default_rng(seed)
    images, annotations, predictions = [], [], []
    for image_id in range(1, num_images + 1):
        height, width = (int(v) for v in rng.integers(40, 130, 2))
        images.append({"id": image_id, "height": height, "width": width, "file_name": f"{image_id}.jpg"})
        gts = []
        for _ in range(0 if image_id % 5 == 0 else int(rng.integers(1, 8))):  # some images: no ground truth
            if gts and rng.random() < 0.5:  # overlapping instances of one category
                category, box = gts[-1]["category_id"], jittered_box(gts[-1]["bbox"], rng, 0.3, width, height)
            else:
                category, box = int(rng.choice(GT_CATEGORIES)), _box(rng, height, width)
            mask = _mask(rng, box, height, width)
            if mask.sum() == 0:
                continue
            crowd = rng.random() < 0.15
            segmentation: Any = _rle(mask)
            if crowd and rng.random() < 0.5:
                segmentation = {"size": [height, width], "counts": _uncompressed(mask)}
            elif not crowd and rng.random() < 0.3:
                x, y, w, h = box
                segmentation = [[x, y, x + w, y, x + w, y + h, x, y + h]]
            pool = ATTRIBUTE_IDS[: 10 + 3 * category]
            # the first id is 0, which pycocotools reads as "unmatched"
            ann = gt_annotation(len(annotations), image_id, category, mask, segmentation, crowd, rng, pool)
            gts.append(ann)
            annotations.append(ann)
        if image_id % 7 == 3:  # an image without detections
            continue
        boxes = []
        for ann in gts:
            for _ in range(int(rng.choice([0, 1, 1, 2, 3]))):
                category = ann["category_id"] if rng.random() < 0.85 else int(rng.integers(46))
                boxes.append(
                    (category, jittered_box(ann["bbox"], rng, float(rng.choice([0.05, 0.3])), width, height))
                )
        boxes += [(int(rng.integers(46)), _box(rng, height, width)) for _ in range(int(rng.integers(0, 6)))]
        if image_id == 2:  # over 100 detections of one image and category: only the best 100 count
            boxes += [(SHIRT, _box(rng, height, width)) for _ in range(110)]
        for category, box in boxes:
            predictions.append(
                {
                    "image_id": image_id,
                    "category_id": category,
                    "bbox": [round(v, 2) for v in box],
                    "score": round(float(rng.random()), 1),  # one decimal: many ties
                    "segmentation": _rle(_mask(rng, box, height, width)),
                    "attribute_ids": sorted(int(a) for a in rng.choice(ATTRIBUTE_IDS[:40], 2, False)),
                }
            )
    gt = {
        "images": images,
        "annotations": annotations,
        "categories": ONTOLOGY["categories"],
        "attributes": ONTOLOGY["attributes"],
    }
    return gt, predictions


def _uncompressed(mask: np.ndarray) -> list[int]:
    flat = mask.flatten(order="F")
    runs = np.diff(np.r_[0, np.flatnonzero(np.diff(flat)) + 1, flat.size]).tolist()
    return [0, *runs] if flat[0] else runs


def pycocotools_eval(gt_path: Path, predictions: list[dict[str, Any]], iou_type: str) -> COCOeval:
    """pycocotools as its users call it: the file, ``loadRes``, evaluate, accumulate, summarize."""
    drop = "bbox" if iou_type == "segm" else "segmentation"  # mask area for the area ranges
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(gt_path))
        evaluator = COCOeval(
            coco, coco.loadRes([{k: v for k, v in p.items() if k != drop} for p in predictions]), iou_type
        )
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator


def _category_ap(evaluator: COCOeval, category_ids: list[int]) -> float | None:
    index = [evaluator.params.catIds.index(c) for c in category_ids]
    values = evaluator.eval["precision"][:, :, index, 0, -1]
    return 100.0 * float(np.mean(values[values > -1])) if np.any(values > -1) else None


@pytest.fixture(scope="module", params=[0, 1, 2])
def dataset(request, tmp_path_factory) -> tuple[Path, dict[str, Any], list[dict[str, Any]]]:
    gt, predictions = random_dataset(request.param)
    path = tmp_path_factory.mktemp(f"coco{request.param}") / "gt.json"
    path.write_text(json.dumps(gt))
    return path, gt, predictions


def test_the_random_datasets_hold_the_special_cases(dataset) -> None:
    _, gt, predictions = dataset
    annotations = gt["annotations"]
    assert annotations[0]["id"] == 0 and any(a["iscrowd"] for a in annotations)
    assert any(a["iscrowd"] and isinstance(a["segmentation"]["counts"], list) for a in annotations)
    assert any(isinstance(a["segmentation"], list) for a in annotations)
    with_gt = {a["image_id"] for a in annotations}
    with_dt = {p["image_id"] for p in predictions}
    assert {im["id"] for im in gt["images"]} - with_gt and {im["id"] for im in gt["images"]} - with_dt
    assert {p["category_id"] for p in predictions} - {a["category_id"] for a in annotations}
    shirts = [p for p in predictions if p["image_id"] == 2 and p["category_id"] == SHIRT]
    assert len(shirts) > 100 and len({p["score"] for p in predictions}) < len(predictions)


@pytest.mark.parametrize("attribute_category_ids", [None, (), (SHIRT, SHOE, 6)])
def test_every_coco_key_equals_pycocotools(dataset, attribute_category_ids) -> None:
    """Headline, per-category and per-supercategory COCO AP, whatever categories carry attributes."""
    path, gt, predictions = dataset
    metrics = evaluate(path, predictions, attribute_category_ids=attribute_category_ids, show_progress=False)
    names = {c["id"]: c["name"] for c in gt["categories"]}
    for iou_type in ("bbox", "segm"):
        reference = pycocotools_eval(path, predictions, iou_type)
        expected = [None if v < 0 else 100.0 * float(v) for v in reference.stats[:6]]
        assert [metrics[iou_type]["coco"][k] for k in COCO_KEYS] == expected, iou_type
        for c, name in names.items():
            assert metrics["per_category"][name][f"{iou_type}_AP"] == _category_ap(reference, [c]), name
        for name, ids in eval_supercategories(gt["categories"]).items():
            assert metrics["per_supercategory"][name][f"{iou_type}_AP"] == _category_ap(reference, list(ids))


def test_curves_and_all_twelve_stats_equal_pycocotools(dataset) -> None:
    """Beyond metrics.json: the precision array and the recall summaries (AR) are pycocotools' too."""
    path, gt, predictions = dataset
    types = ("bbox", "segm")
    attribute_ids = ontology.attribute_category_ids()
    checked_gt = load_ground_truth(gt, types, attribute_ids)
    checked = load_predictions(predictions, checked_gt, types)
    for iou_type, acc in accumulate(checked_gt, checked, types, attribute_ids).items():
        ours = coco_result(acc.coco_precision, acc.coco_recall, acc.category_ids)
        reference = pycocotools_eval(path, predictions, iou_type)
        assert np.array_equal(ours.stats, reference.stats), iou_type
        assert np.array_equal(ours.precision, reference.eval["precision"][..., -1]), iou_type
        assert np.array_equal(acc.coco_recall, reference.eval["recall"]), iou_type
        assert np.array_equal(pycocotools_evaluate(checked_gt, checked, iou_type).stats, reference.stats)


def _box_rle(box: list[int], height: int = 100, width: int = 100) -> dict[str, Any]:
    mask = np.zeros((height, width), dtype=np.uint8)
    x, y, w, h = box
    mask[y : y + h, x : x + w] = 1
    return _rle(mask)


def test_attribute_categories_are_matched_as_coco_matches_them() -> None:
    """Where FPEval's matcher and COCO's differ, on a category with attributes, the COCO part is COCO's.

    A crowd shirt region covered by two detections: COCO ignores both (a crowd matches many times), FPEval
    lets the crowd take one. A shirt detection overlapping two shirts: COCO takes the higher IoU, FPEval
    keeps the first one whose F1 the later one does not beat.
    """
    objects = [  # (category, box, crowd, attributes)
        (SHIRT, [0, 0, 40, 40], 1, []),
        (SHIRT, [50, 50, 40, 40], 0, ATTRIBUTE_IDS[:2]),
        (SHIRT, [50, 60, 40, 40], 0, ATTRIBUTE_IDS[5:7]),
    ]
    gt = {
        "images": [{"id": 1, "height": 100, "width": 100, "file_name": "1.jpg"}],
        "annotations": [
            {
                "id": n,
                "image_id": 1,
                "category_id": c,
                "bbox": [float(v) for v in box],
                "area": float(box[2] * box[3]),
                "segmentation": _box_rle(box),
                "iscrowd": crowd,
                "attribute_ids": atts,
            }
            for n, (c, box, crowd, atts) in enumerate(objects, start=1)
        ],
        "categories": ONTOLOGY["categories"],
        "attributes": ONTOLOGY["attributes"],
    }
    boxes = [([0, 0, 40, 40], 0.9, []), ([0, 0, 38, 40], 0.8, []), ([50, 58, 40, 40], 0.7, ATTRIBUTE_IDS[:2])]
    boxes.append(([50, 62, 40, 38], 0.6, ATTRIBUTE_IDS[5:7]))
    predictions = [
        {
            "image_id": 1,
            "category_id": SHIRT,
            "bbox": [float(v) for v in box],
            "score": score,
            "segmentation": _box_rle(box),
            "attribute_ids": atts,
        }
        for box, score, atts in boxes
    ]
    metrics = evaluate(gt, predictions, show_progress=False)
    for iou_type in ("bbox", "segm"):
        reference = pycocotools_evaluate(gt, load_predictions(predictions, gt, (iou_type,)), iou_type)
        assert [metrics[iou_type]["coco"][k] for k in COCO_KEYS[:3]] == [100 * v for v in reference.stats[:3]]
        assert metrics[iou_type]["coco"]["AP"] != metrics[iou_type]["iou"]["AP"]  # the matchers differ here
