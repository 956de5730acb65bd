"""The constant attribute baseline (fashionseg.evaluation.baselines), on a hand-built split: the model's own
detections with each category's most frequent training attributes in place of the head's."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from fashionseg.data import ontology
from fashionseg.evaluation import baselines, evaluate

SIZE = 30
DRESS, SHOE, SKIRT = (ontology.category_by_name(n).id for n in ("dress", "shoe", "skirt"))
PLAIN, STRIPE = (ontology.attribute_by_name(n).id for n in ("plain (pattern)", "stripe"))
KNEE, MINI = (ontology.attribute_by_name(n).id for n in ("knee (length)", "mini (length)"))


def _rle(y0: int, y1: int, x0: int, x1: int) -> dict[str, Any]:
    mask = np.zeros((SIZE, SIZE), np.uint8)
    mask[y0:y1, x0:x1] = 1
    rle = mask_utils.encode(np.asfortranarray(mask))
    return {"size": [SIZE, SIZE], "counts": rle["counts"].decode("ascii")}


def _split(instances: list[tuple[int, int, tuple[int, int, int, int], list[int]]]) -> dict[str, Any]:
    """An annotation file of (image, category, (y0, y1, x0, x1), attributes) instances, 30 px images."""
    onto = ontology.ontology_json()
    annotations = [
        {
            "id": n,
            "image_id": image,
            "category_id": category,
            "segmentation": _rle(*box),
            "area": float((box[1] - box[0]) * (box[3] - box[2])),
            "bbox": [float(box[2]), float(box[0]), float(box[3] - box[2]), float(box[1] - box[0])],
            "iscrowd": 0,
            "attribute_ids": attributes,
        }
        for n, (image, category, box, attributes) in enumerate(instances, start=1)
    ]
    images = sorted({i for i, *_ in instances})
    return {
        "images": [{"id": i, "width": SIZE, "height": SIZE, "file_name": f"{i}.png"} for i in images],
        "categories": onto["categories"],
        "attributes": onto["attributes"],
        "annotations": annotations,
    }


# training: dresses are mostly striped and mini; validation: one plain knee-length dress and a shoe
TRAIN = _split(
    [
        (1, DRESS, (0, 10, 0, 10), [STRIPE, MINI]),
        (2, DRESS, (0, 10, 0, 10), [STRIPE, MINI]),
        (3, DRESS, (0, 10, 0, 10), [PLAIN, KNEE]),
        (3, SHOE, (20, 25, 20, 25), []),
    ]
)
VAL = _split([(1, DRESS, (0, 10, 0, 10), [PLAIN, KNEE]), (1, SHOE, (20, 25, 20, 25), [])])


def _predictions() -> list[dict[str, Any]]:
    """VAL's instances found exactly, the dress with its true attributes, and a skirt the training split
    never saw."""
    found = [
        {
            "image_id": ann["image_id"],
            "category_id": ann["category_id"],
            "bbox": ann["bbox"],
            "segmentation": ann["segmentation"],
            "score": 0.9,
            "attribute_ids": ann["attribute_ids"],
            "attribute_scores": [0.8] * len(ann["attribute_ids"]),
        }
        for ann in VAL["annotations"]
    ]
    skirt = {**found[0], "category_id": SKIRT, "score": 0.1, "attribute_ids": [STRIPE]}
    return [*found, skirt]


def test_the_baseline_scores_the_same_detections_with_the_constant_attributes(monkeypatch):
    seen = {}

    def fake_evaluate(gt, predictions, **kwargs):
        seen.update(gt=gt, predictions=predictions, kwargs=kwargs)
        return {"fake": True}

    predictions = _predictions()
    before = copy.deepcopy(predictions)
    monkeypatch.setattr(baselines, "evaluate", fake_evaluate)
    assert baselines.attribute_baseline(TRAIN, VAL, predictions) == {"fake": True}
    assert seen["gt"] is VAL and predictions == before  # the model's predictions are not modified
    assert seen["kwargs"]["iou_types"] == ("bbox", "segm")
    swapped = seen["predictions"]
    # the dress gets training's most frequent pattern and length; the shoe and the unseen skirt none
    assert [p["attribute_ids"] for p in swapped] == [sorted([STRIPE, MINI]), [], []]
    assert not any("attribute_scores" in p for p in swapped)
    keep = ("image_id", "category_id", "bbox", "segmentation", "score")
    assert [{k: p[k] for k in keep} for p in swapped] == [{k: p[k] for k in keep} for p in before]


def test_the_baseline_keeps_the_detectors_ap_and_loses_the_attribute_aps():
    model = evaluate(VAL, _predictions(), iou_types=("bbox", "segm"), show_progress=False)
    constant = baselines.attribute_baseline(TRAIN, VAL, _predictions())
    for iou_type in ("bbox", "segm"):
        assert constant[iou_type]["coco"] == model[iou_type]["coco"]  # same boxes and masks
        # the true dress attributes match, training's most frequent (stripe, mini) do not
        assert model[iou_type]["iou_f1"]["AP"] > constant[iou_type]["iou_f1"]["AP"]
        assert model[iou_type]["f1"]["AP"] > constant[iou_type]["f1"]["AP"]


def test_a_head_that_predicts_the_constant_scores_as_the_baseline():
    constant_like = [
        {**p, "attribute_ids": [STRIPE, MINI] if p["category_id"] == DRESS else []} for p in _predictions()
    ]
    constant_like = [{k: v for k, v in p.items() if k != "attribute_scores"} for p in constant_like]
    model = evaluate(VAL, constant_like, iou_types=("bbox", "segm"), show_progress=False)
    assert baselines.attribute_baseline(TRAIN, VAL, _predictions()) == model
