"""Attribute agreement per attribute group, and missed instances per category, on hand-built masks."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pycocotools import mask as mask_utils

from fashionseg.data import ontology
from fashionseg.errors import FashionsegError
from fashionseg.evaluation.attribute_groups import attribute_group_scores
from fashionseg.evaluation.per_image import image_quality, missed_by_category

SIZE = 30
DRESS, SKIRT, SHOE = (ontology.category_by_name(n).id for n in ("dress", "skirt", "shoe"))
PLAIN, STRIPE, DOT = (ontology.attribute_by_name(n).id for n in ("plain (pattern)", "stripe", "dot"))
KNEE, MINI, MAXI = (
    ontology.attribute_by_name(n).id for n in ("knee (length)", "mini (length)", "maxi (length)")
)
A_LINE, V_NECK = (ontology.attribute_by_name(n).id for n in ("a-line", "v-neck"))
GROUPS = ["silhouette", "length", "neckline type", "textile pattern"]  # the ontology's order


def _box(y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    mask = np.zeros((SIZE, SIZE), bool)
    mask[y0:y1, x0:x1] = True
    return mask


def _rle(mask: np.ndarray) -> dict[str, Any]:
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")}


# (image, category, mask, attributes) of each ground-truth instance; dress C is given as a polygon
GT = {
    "A": (1, DRESS, _box(0, 10, 0, 10), [PLAIN, KNEE, A_LINE, V_NECK]),
    "B": (1, SKIRT, _box(15, 25, 0, 10), [STRIPE, MINI, A_LINE]),
    "C": (2, DRESS, _box(0, 10, 10, 20), [DOT, MAXI]),
    "S": (2, SHOE, _box(20, 25, 20, 25), []),
}


def _gt() -> dict[str, Any]:
    annotations = []
    for n, (name, (image_id, category_id, mask, attribute_ids)) in enumerate(GT.items(), start=1):
        segmentation = [[10.0, 0.0, 20.0, 0.0, 20.0, 10.0, 10.0, 10.0]] if name == "C" else _rle(mask)
        annotations.append(
            {
                "id": n,
                "image_id": image_id,
                "category_id": category_id,
                "segmentation": segmentation,
                "area": float(mask.sum()),
                "bbox": [0, 0, 1, 1],
                "iscrowd": 0,
                "attribute_ids": attribute_ids,
            }
        )
    return {
        "images": [{"id": i, "width": SIZE, "height": SIZE, "file_name": f"{i}.png"} for i in (1, 2)],
        "categories": [{"id": c, "name": ontology.category(c).name} for c in (DRESS, SKIRT, SHOE)],
        "attributes": [{"id": a.id, "name": a.name} for a in ontology.attributes()],
        "annotations": annotations,
    }


def _det(name: str, score: float = 0.9, **change: Any) -> dict[str, Any]:
    """A detection reproducing ground truth ``name``, with the fields in ``change`` replaced."""
    image_id, category_id, mask, attribute_ids = GT[name]
    det = {
        "image_id": image_id,
        "category_id": category_id,
        "bbox": [0, 0, 1, 1],
        "score": score,
        "segmentation": _rle(mask),
        "attribute_ids": list(attribute_ids),
    }
    det.update(change)
    return det


def _perfect() -> list[dict[str, Any]]:
    return [_det(name) for name in GT]


def test_perfect_predictions_score_100_in_every_group_and_miss_nothing():
    scores = attribute_group_scores(_gt(), _perfect())
    assert list(scores.index) == GROUPS
    assert list(scores.columns) == ["instances", "precision", "recall", "f1", "gt_instances"]
    assert (scores[["precision", "recall", "f1"]] == 100.0).all().all()
    assert scores["instances"].to_dict() == {
        "silhouette": 2,
        "length": 3,
        "neckline type": 1,
        "textile pattern": 3,
    }
    assert (scores["instances"] == scores["gt_instances"]).all()
    missed = missed_by_category(_gt(), _perfect())
    assert list(missed.index) == ["skirt", "dress", "shoe"]  # category id order: 8, 10, 23
    assert missed["missed"].tolist() == [0, 0, 0]
    assert missed["instances"].tolist() == [1, 2, 1]


def test_a_wrong_pattern_lowers_only_the_pattern_group():
    results = _perfect()
    results[0] = _det("A", attribute_ids=[STRIPE, KNEE, A_LINE, V_NECK])  # stripe instead of plain
    scores = attribute_group_scores(_gt(), results)
    # pattern: TP 2 (B's stripe, C's dot), FP 1 (A's stripe), FN 1 (A's plain)
    pattern = scores.loc["textile pattern"]
    assert pattern["precision"] == pytest.approx(200 / 3)
    assert pattern["recall"] == pytest.approx(200 / 3)
    assert pattern["f1"] == pytest.approx(200 / 3)
    assert pattern["instances"] == 3
    others = scores.drop(index="textile pattern")
    assert (others[["precision", "recall", "f1"]] == 100.0).all().all()


def test_a_missing_and_an_extra_attribute_count_against_recall_and_precision():
    results = _perfect()
    results[1] = _det("B", attribute_ids=[STRIPE, MINI])  # a-line not predicted
    results[2] = _det("C", attribute_ids=[DOT, MAXI, A_LINE])  # a-line predicted, C has no silhouette
    silhouette = attribute_group_scores(_gt(), results).loc["silhouette"]
    # TP 1 (A), FP 1 (C), FN 1 (B)
    assert silhouette[["precision", "recall", "f1"]].tolist() == pytest.approx([50.0, 50.0, 50.0])
    assert silhouette["instances"] == 2


@pytest.mark.parametrize(
    "change",
    [
        {"score": 0.3},  # below the score threshold
        {"category_id": SKIRT},  # another category (and no skirt where it lies)
        {"segmentation": _rle(_box(0, 4, 0, 10))},  # IoU 0.4 with A
    ],
    ids=["low score", "other category", "low IoU"],
)
def test_a_detection_that_does_not_qualify_matches_nothing(change: dict[str, Any]):
    results = _perfect()
    results[0] = _det("A", **change)
    scores = attribute_group_scores(_gt(), results)
    assert scores.loc["silhouette", "instances"] == 1 and scores.loc["silhouette", "gt_instances"] == 2
    assert scores.loc["length", "instances"] == 2 and scores.loc["length", "gt_instances"] == 3
    # only A has a neckline: with A unmatched nothing is scored there, and nothing is defined
    neck = scores.loc["neckline type"]
    assert neck["instances"] == 0 and neck["gt_instances"] == 1
    assert all(math.isnan(neck[c]) for c in ("precision", "recall", "f1"))
    assert (scores.drop(index="neckline type")[["precision", "recall", "f1"]] == 100.0).all().all()
    assert missed_by_category(_gt(), results).loc["dress", "missed"] == 1


def test_the_higher_scoring_detection_takes_the_ground_truth():
    results = _perfect()
    # listed first, scoring lower, a better mask and the right attributes; the one scoring higher (IoU 0.8,
    # wrong pattern) takes A, and the first is left with no dress to match
    results.append(_det("A", score=0.95, segmentation=_rle(_box(0, 8, 0, 10)), attribute_ids=[STRIPE]))
    scores = attribute_group_scores(_gt(), results)
    assert scores.loc["textile pattern", "precision"] == pytest.approx(200 / 3)  # TP 2, FP 1
    assert scores.loc["textile pattern", "recall"] == pytest.approx(200 / 3)  # FN 1: A's plain
    assert scores.loc["length", "recall"] == pytest.approx(200 / 3)  # A's knee not predicted
    assert scores.loc["neckline type", "recall"] == 0.0
    assert math.isnan(scores.loc["neckline type", "precision"])
    assert scores.loc["neckline type", "f1"] == 0.0


def test_categories_the_official_evaluation_scores_without_attributes_are_not_scored():
    results = _perfect()
    results[3] = _det("S", attribute_ids=[STRIPE])  # a shoe's attributes: the head never trains on them
    assert attribute_group_scores(_gt(), results).equals(attribute_group_scores(_gt(), _perfect()))
    everything = attribute_group_scores(_gt(), results, attribute_category_ids=[DRESS, SKIRT, SHOE])
    assert everything.loc["textile pattern", "precision"] == pytest.approx(75.0)  # TP 3, FP 1


def test_missed_by_category_counts_and_agrees_with_image_quality():
    results = [
        _det("A", segmentation=_rle(_box(0, 4, 0, 10))),  # IoU 0.4: missed
        _det("B"),
        _det("C", score=0.8),
        _det("S", score=0.2),  # below the threshold: missed
    ]
    missed = missed_by_category(_gt(), results)
    expected = pd.DataFrame(
        {"instances": [1, 2, 1], "missed": [0, 1, 1], "missed_share": [0.0, 0.5, 1.0]},
        index=pd.Index(["skirt", "dress", "shoe"], name="category"),
    )
    pd.testing.assert_frame_equal(missed, expected)
    quality = image_quality(_gt(), results)
    assert quality["missed"].to_dict() == {1: 1, 2: 1}
    assert quality["missed"].sum() == missed["missed"].sum()
    assert quality["instances"].sum() == missed["instances"].sum()


def test_missed_by_category_lists_only_categories_with_ground_truth():
    gt = _gt()
    gt["annotations"] = [a for a in gt["annotations"] if a["category_id"] != SKIRT]
    assert list(missed_by_category(gt, []).index) == ["dress", "shoe"]
    assert missed_by_category(gt, [])["missed_share"].tolist() == [1.0, 1.0]


@pytest.mark.parametrize("where", ["prediction", "ground truth"])
def test_an_attribute_outside_the_ontology_is_an_error_naming_it(where: str):
    gt, results = _gt(), _perfect()
    if where == "prediction":
        results[1]["attribute_ids"] = [STRIPE, 9999]
    else:
        gt["annotations"][1]["attribute_ids"] = [STRIPE, 9999]
    with pytest.raises(FashionsegError, match="attribute id 9999"):
        attribute_group_scores(gt, results)
