"""Which validation images the side-by-side chapter shows and why (fashionseg.report.qualitative)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from pycocotools import mask as mask_utils

from fashionseg.evaluation import per_image
from fashionseg.report import qualitative


def _rle(mask: np.ndarray) -> dict[str, Any]:
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": rle["size"], "counts": rle["counts"].decode("ascii")}


def test_image_quality_and_pick_images():
    square = np.zeros((20, 20), bool)
    square[2:10, 2:10] = True
    gt = {
        "images": [{"id": i, "width": 20, "height": 20, "file_name": f"{i}.png"} for i in (1, 2, 3)],
        "categories": [{"id": 10, "name": "dress"}],
        "annotations": [
            {
                "id": i,
                "image_id": i,
                "category_id": 10,
                "segmentation": _rle(square),
                "area": 64.0,
                "bbox": [2, 2, 8, 8],
                "iscrowd": 0,
            }
            for i in (1, 2, 3)
        ],
    }
    half = square.copy()
    half[2:6] = False
    results = [
        {"image_id": 1, "category_id": 10, "segmentation": _rle(square), "score": 0.9},
        {"image_id": 2, "category_id": 10, "segmentation": _rle(half), "score": 0.9},
        {"image_id": 3, "category_id": 10, "segmentation": _rle(square), "score": 0.1},  # below threshold
    ]
    quality = per_image.image_quality(gt, results, score_threshold=0.5)
    assert quality.loc[1, "mean_iou"] == 1.0 and quality.loc[1, "missed"] == 0
    assert quality.loc[2, "mean_iou"] == 0.5 and quality.loc[2, "missed"] == 0
    assert quality.loc[3, "mean_iou"] == 0.0 and quality.loc[3, "missed"] == 1

    examples, failures = qualitative.pick_images({"A": quality, "B": quality}, n_examples=2, n_failures=1)
    assert failures == [3]
    assert examples == [1, 2]
    # a split smaller than what is asked for shows its images in both sections
    assert qualitative.pick_images({"A": quality}, n_examples=3, n_failures=3) == ([1, 2, 3], [3, 2, 1])
    table = qualitative.failure_table({"A": quality}, failures)
    assert table.loc[3, "A missed"] == 1
    choice = qualitative.failure_choice({"A": quality}, [3])
    assert (choice.images, choice.backbones, choice.mean_iou, choice.missed) == (3, 1, [0.0], [1])
    assert choice.zero_iou == 1 and not choice.unranked  # the one image at IoU 0 is the one shown
    assert (choice.boundary, choice.tied, choice.tied_shown) == (0.0, 1, 1) and not choice.ties_broken
    assert qualitative.failure_choice({"A": quality}, []) is None


def test_failure_cases_are_chosen_by_failure_when_every_image_scores_zero():
    """When no backbone covers anything, the failures are the images with the most instances missed, and
    the caption says that IoU could not rank them."""
    quality = pd.DataFrame(
        {"instances": [1, 4, 2, 6, 3], "missed": [1, 4, 2, 6, 3], "mean_iou": [0.0] * 5},
        index=pd.Index([1, 2, 3, 4, 5], name="image_id"),
    )
    examples, failures = qualitative.pick_images({"A": quality, "B": quality}, n_examples=2, n_failures=3)
    assert failures == [4, 2, 5]  # not the first ids 1, 2, 3
    assert examples == [1, 3]
    choice = qualitative.failure_choice({"A": quality, "B": quality}, failures)
    assert choice.unranked and (choice.zero_iou, choice.images, choice.backbones) == (5, 5, 2)
    assert choice.missed == [2 * quality.loc[i, "missed"] for i in failures]  # summed over A and B


def test_failures_tied_at_the_boundary_iou_are_chosen_by_misses():
    quality = pd.DataFrame(
        {"instances": [2, 3, 4, 1], "missed": [0, 2, 1, 0], "mean_iou": [0.9, 0.2, 0.2, 0.5]},
        index=pd.Index([1, 2, 3, 4], name="image_id"),
    )
    _, failures = qualitative.pick_images({"A": quality}, n_examples=1, n_failures=1)
    assert failures == [2]  # of the two at 0.2, the one with more instances missed
    choice = qualitative.failure_choice({"A": quality}, failures)
    assert (choice.boundary, choice.tied, choice.tied_shown) == (0.2, 2, 1) and choice.ties_broken
    assert not choice.unranked and choice.zero_iou == 0
    assert not qualitative.failure_choice({"A": quality}, [2, 3]).ties_broken  # both shown


def test_failure_caption_renders_the_choice():
    quality = pd.DataFrame(
        {"instances": [2, 3, 4, 1], "missed": [0, 2, 1, 0], "mean_iou": [0.9, 0.2, 0.2, 0.5]},
        index=pd.Index([1, 2, 3, 4], name="image_id"),
    )
    choice = qualitative.failure_choice({"A": quality}, [2])
    caption = qualitative.failure_caption({"A": quality}, [2])
    assert caption.startswith(f"The 1 validation images of {choice.images} whose ground truth")
    assert f"({choice.mean_iou[0]:.2f})" in caption
    assert f"{choice.tied} images tie at mean IoU {choice.boundary:.2f}" in caption
    assert f"({choice.missed[0]}, by the backbone)" in caption
    zero = quality.assign(mean_iou=0.0)
    assert "IoU cannot rank them" in qualitative.failure_caption({"A": zero, "B": zero}, [2])
    assert (
        qualitative.failure_caption({"A": quality}, []) == "No validation image has ground truth to fail on."
    )


def test_missed_categories_are_named_per_backbone():
    index = pd.Index(["top, t-shirt, sweatshirt", "sleeve"], name="category")

    def misses_of(missed: list[int]) -> pd.DataFrame:
        shares = [m / n for m, n in zip(missed, [4, 2], strict=True)]
        return pd.DataFrame({"instances": [4, 2], "missed": missed, "missed_share": shares}, index=index)

    misses = {"R50-FPN": misses_of([1, 2]), "R50-C4": misses_of([4, 2]), "R50-DC5": misses_of([3, 0])}
    table = qualitative.missed_categories_table(misses)
    assert table.loc["top, t-shirt, sweatshirt"].tolist() == ["1/4", "4/4", "3/4"]
    assert list(table.index) == ["top, t-shirt, sweatshirt", "sleeve"]  # most instances first
    verdicts = qualitative.category_misses(misses)
    assert verdicts["R50-FPN"] == qualitative.CategoryMisses(2, ["sleeve"])
    assert verdicts["R50-C4"] == qualitative.CategoryMisses(2, ["top, t-shirt, sweatshirt", "sleeve"])
    assert verdicts["R50-DC5"] == qualitative.CategoryMisses(2, [], "top, t-shirt, sweatshirt", 3, 4)
    absent = misses_of([0, 0]).assign(instances=0)
    assert qualitative.category_misses({"A": absent})["A"] == qualitative.CategoryMisses(0, [])

    text = qualitative.missed_categories_text(misses)
    assert "R50-FPN misses every validation instance of 1 of the 2 categories: “sleeve”." in text
    assert "R50-C4 misses every validation instance of all 2 categories" in text
    assert "it misses most of “top, t-shirt, sweatshirt” (3 of 4)." in text
    assert qualitative.missed_categories_text({"A": absent}) == ""
