"""load_annotations / check_annotations / drop_bad / subset_annotations, one test per bad-input case."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
import pycocotools.mask as mask_utils
import pytest
from PIL import Image

from fashionseg.data.annotations import (
    check_annotations,
    decode_segmentation,
    drop_bad,
    load_annotations,
    rle_string_counts,
    subset_annotations,
)
from fashionseg.errors import FashionsegError

W, H = 40, 30
SQUARE = [[10.0, 5.0, 20.0, 5.0, 20.0, 15.0, 10.0, 15.0]]  # a 10 x 10 square


def _coco(tmp_path: Path) -> tuple[dict[str, Any], Path]:
    """Two 40x30 images on disk and three valid annotations (polygon, compressed RLE, uncompressed RLE)."""
    images_dir = tmp_path / "images"
    images_dir.mkdir()
    for name in ("a.png", "b.png"):
        Image.new("RGB", (W, H), (90, 120, 150)).save(images_dir / name)
    mask = np.zeros((H, W), dtype=np.uint8)
    mask[2:8, 30:36] = 1
    rle = mask_utils.encode(np.asfortranarray(mask))
    runs = _runs(mask)
    coco = {
        "info": {},
        "licenses": [],
        "categories": [
            {"id": 1, "name": "top, t-shirt, sweatshirt", "supercategory": "upperbody"},
            {"id": 23, "name": "shoe", "supercategory": "legs and feet"},
        ],
        "attributes": [{"id": 317, "name": "plain (pattern)"}, {"id": 328, "name": "stripe"}],
        "images": [
            {"id": 1, "width": W, "height": H, "file_name": "a.png"},
            {"id": 2, "width": W, "height": H, "file_name": "b.png"},
        ],
        "annotations": [
            {
                "id": 10,
                "image_id": 1,
                "category_id": 1,
                "attribute_ids": [328],
                "segmentation": copy.deepcopy(SQUARE),
                "bbox": [10.0, 5.0, 10.0, 10.0],
                "area": 100,
                "iscrowd": 0,
            },
            {
                "id": 11,
                "image_id": 1,
                "category_id": 23,
                "attribute_ids": [],
                "segmentation": {"size": [H, W], "counts": rle["counts"].decode()},
                "bbox": [30.0, 2.0, 6.0, 6.0],
                "area": 36,
                "iscrowd": 0,
            },
            {
                "id": 12,
                "image_id": 2,
                "category_id": 23,
                "attribute_ids": [],
                "segmentation": {"size": [H, W], "counts": runs},
                "bbox": [30.0, 2.0, 6.0, 6.0],
                "area": 36,
                "iscrowd": 0,
            },
        ],
    }
    return coco, images_dir


def _runs(mask: np.ndarray) -> list[int]:
    """Uncompressed COCO RLE counts (column-major runs, starting with zeros)."""
    flat = mask.flatten(order="F")
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    runs = np.diff(bounds).tolist()
    return ([0] + runs) if flat[0] else runs


def _problems(coco: dict, images_dir: Path | None = None, **kwargs) -> list[tuple]:
    report = check_annotations(coco, images_dir, **kwargs)
    return [(p.severity, p.image_id, p.annotation_id, p.field) for p in report.problems]


def _ann(coco: dict, ann_id: int) -> dict:
    return next(a for a in coco["annotations"] if a["id"] == ann_id)


def test_valid_file_has_no_problems_and_a_summary(tmp_path: Path) -> None:
    coco, images_dir = _coco(tmp_path)
    report = check_annotations(coco, images_dir)
    assert report.problems == []
    assert not report.failed(strict=True)
    assert (report.num_images, report.num_instances) == (2, 3)
    assert report.instances_per_category == {1: 1, 23: 2}
    assert report.attribute_counts == {328: 1}
    text = report.format()
    assert "images: 2" in text and "instances: 3" in text and "stripe" in text and "shoe" in text


# --- loading -------------------------------------------------------------------------------------------


def test_load_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FashionsegError, match="nothere.json does not exist"):
        load_annotations(tmp_path / "nothere.json")


def test_load_invalid_json_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"images": [],\n "annotations": [,]}')
    with pytest.raises(FashionsegError, match=r"broken.json is not valid JSON \(line 2"):
        load_annotations(path)


def test_load_missing_top_level_keys(tmp_path: Path) -> None:
    path = tmp_path / "partial.json"
    path.write_text(json.dumps({"images": [], "attributes": []}))
    with pytest.raises(
        FashionsegError, match="partial.json lacks the top-level key.*annotations, categories"
    ):
        load_annotations(path)


def test_load_top_level_must_be_object(tmp_path: Path) -> None:
    path = tmp_path / "list.json"
    path.write_text("[]")
    with pytest.raises(FashionsegError, match="list.json: expected a JSON object"):
        load_annotations(path)


def test_load_defaults_attributes(tmp_path: Path) -> None:
    coco, _ = _coco(tmp_path)
    del coco["attributes"]
    path = tmp_path / "coco.json"
    path.write_text(json.dumps(coco))
    assert load_annotations(path)["attributes"] == []


# --- ids -----------------------------------------------------------------------------------------------


def test_unknown_category_id(tmp_path: Path) -> None:
    coco, images_dir = _coco(tmp_path)
    _ann(coco, 10)["category_id"] = 99
    assert _problems(coco, images_dir) == [("error", 1, 10, "category_id")]


def test_unknown_attribute_id(tmp_path: Path) -> None:
    coco, images_dir = _coco(tmp_path)
    _ann(coco, 10)["attribute_ids"] = [328, 999]
    report = check_annotations(coco, images_dir)
    assert [(p.field, p.value) for p in report.problems] == [("attribute_ids", [999])]


def test_duplicate_image_id(tmp_path: Path) -> None:
    coco, images_dir = _coco(tmp_path)
    coco["images"][1]["id"] = 1
    _ann(coco, 12)["image_id"] = 1
    assert _problems(coco, images_dir) == [("error", 1, None, "id")] * 2
    assert check_annotations(coco, images_dir).bad_image_ids == {1}


def test_duplicate_annotation_id(tmp_path: Path) -> None:
    coco, images_dir = _coco(tmp_path)
    _ann(coco, 12)["id"] = 11
    assert _problems(coco, images_dir) == [("error", 1, 11, "id"), ("error", 2, 11, "id")]


def test_duplicate_category_id_is_a_file_error(tmp_path: Path) -> None:
    coco, images_dir = _coco(tmp_path)
    coco["categories"][1]["id"] = 1
    report = check_annotations(coco, images_dir)
    assert [(p.field, p.value) for p in report.file_errors] == [("categories[1].id", 1)]
    with pytest.raises(FashionsegError, match="duplicate category id"):
        drop_bad(coco, report)


def test_annotation_of_a_missing_image(tmp_path: Path) -> None:
    coco, images_dir = _coco(tmp_path)
    _ann(coco, 12)["image_id"] = 7
    problems = check_annotations(coco, images_dir).problems
    assert [(p.image_id, p.annotation_id, p.field, p.message) for p in problems] == [
        (7, 12, "image_id", "points to a missing image")
    ]


# --- boxes ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bbox", "expected"),
    [
        ([10.0, 5.0, 10.0, 10.0], []),
        ([-1.5, 5.0, 10.0, 10.0], []),  # within the 2 px tolerance
        ([30.0, 5.0, 15.0, 10.0], [("warning", 1, 10, "bbox")]),  # 5 px past the right border
        ([50.0, 5.0, 10.0, 10.0], [("error", 1, 10, "bbox")]),  # entirely outside
        ([10.0, 5.0, 0.0, 10.0], [("error", 1, 10, "bbox")]),  # zero width
        ([10.0, 5.0, 10.0, -3.0], [("error", 1, 10, "bbox")]),  # negative height
        ([10.0, 5.0, 10.0], [("error", 1, 10, "bbox")]),  # 3 numbers
    ],
)
def test_bbox_checks(tmp_path: Path, bbox: list, expected: list) -> None:
    coco, images_dir = _coco(tmp_path)
    _ann(coco, 10)["bbox"] = bbox
    assert _problems(coco, images_dir) == expected


# --- segmentations -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("segmentation", "severity", "message"),
    [
        ([[10.0, 5.0, 20.0, 5.0]], "error", "2 point"),  # < 3 points (pycocotools would read it as a box)
        ([[10.0, 5.0, 20.0, 5.0, 20.0]], "error", "odd number of coordinates"),
        ([SQUARE[0], [1.0, 1.0, 2.0, 2.0]], "warning", "part 1 has 2 point"),  # one good part remains
        ([], "error", "segmentation is empty"),
        ([[10.0, 5.0, 15.0, 5.0, 20.0, 5.0]], "error", "empty mask"),  # collinear: no pixel
        ([[50.0, 40.0, 60.0, 40.0, 60.0, 50.0]], "error", "empty mask"),  # outside the image
    ],
)
def test_polygon_checks(tmp_path: Path, segmentation: list, severity: str, message: str) -> None:
    coco, images_dir = _coco(tmp_path)
    _ann(coco, 10)["segmentation"] = segmentation
    problems = check_annotations(coco, images_dir).problems
    assert [(p.severity, p.image_id, p.annotation_id, p.field) for p in problems] == [
        (severity, 1, 10, "segmentation")
    ]
    assert message in problems[0].message


@pytest.mark.parametrize(
    ("ann_id", "change", "message"),
    [
        (11, {"counts": "!!bad"}, "invalid character '!'"),
        (11, {"counts": "0h"}, "ends in the middle"),
        (11, {"size": [H + 1, W]}, "does not match the image"),
        (12, {"counts": [5, 3, 2]}, "sum to 10, not height*width = 1200"),
        (12, {"counts": [1300, -100]}, "negative run length"),
        (12, {"counts": 42}, "must be a string"),
        (12, {"counts": [1200]}, "empty mask"),
    ],
)
def test_rle_checks(tmp_path: Path, ann_id: int, change: dict, message: str) -> None:
    coco, images_dir = _coco(tmp_path)
    _ann(coco, ann_id)["segmentation"].update(change)
    problems = check_annotations(coco, images_dir).problems
    assert [(p.severity, p.annotation_id, p.field) for p in problems] == [("error", ann_id, "segmentation")]
    assert message in problems[0].message


def test_rle_string_counts_match_pycocotools() -> None:
    rng = np.random.default_rng(1)
    for _ in range(20):
        mask = (rng.uniform(size=(37, 23)) < rng.uniform(0.05, 0.95)).astype(np.uint8)
        counts = mask_utils.encode(np.asfortranarray(mask))["counts"].decode()
        assert rle_string_counts(counts) == _runs(mask)


def test_decode_segmentation_agrees_across_encodings(tmp_path: Path) -> None:
    coco, _ = _coco(tmp_path)
    compressed = decode_segmentation(_ann(coco, 11)["segmentation"], H, W)
    uncompressed = decode_segmentation(_ann(coco, 12)["segmentation"], H, W)
    polygon = decode_segmentation([[30.0, 2.0, 36.0, 2.0, 36.0, 8.0, 30.0, 8.0]], H, W)
    assert compressed.shape == (H, W) and compressed.sum() == 36
    assert (compressed == uncompressed).all() and (compressed == polygon).all()


# --- image files ---------------------------------------------------------------------------------------


def test_missing_image_file(tmp_path: Path) -> None:
    coco, images_dir = _coco(tmp_path)
    (images_dir / "b.png").unlink()
    problems = check_annotations(coco, images_dir).problems
    assert [(p.severity, p.image_id, p.field) for p in problems] == [("error", 2, "file_name")]
    assert "b.png does not exist" in problems[0].message


def test_unreadable_image_file(tmp_path: Path) -> None:
    coco, images_dir = _coco(tmp_path)
    (images_dir / "b.png").write_text("not an image")
    problems = check_annotations(coco, images_dir).problems
    assert [(p.image_id, p.field) for p in problems] == [(2, "file_name")]
    assert "b.png is not a readable image" in problems[0].message


def test_truncated_image_is_found_when_decoding(tmp_path: Path) -> None:
    coco, images_dir = _coco(tmp_path)
    noise = np.random.default_rng(0).integers(0, 255, (H, W, 3), dtype=np.uint8)
    Image.fromarray(noise).save(images_dir / "b.png")
    data = (images_dir / "b.png").read_bytes()
    (images_dir / "b.png").write_bytes(data[: len(data) // 2])
    assert _problems(coco, images_dir) == []  # header only
    assert _problems(coco, images_dir, decode_images=True) == [("error", 2, None, "file_name")]


def test_size_disagreeing_with_the_image(tmp_path: Path) -> None:
    coco, images_dir = _coco(tmp_path)
    Image.new("RGB", (W, H + 2)).save(images_dir / "b.png")
    problems = check_annotations(coco, images_dir).problems
    assert [(p.image_id, p.field, p.value) for p in problems] == [(2, "width/height", [W, H])]
    assert "b.png is 40x32" in problems[0].message


def test_bad_width_field(tmp_path: Path) -> None:
    coco, images_dir = _coco(tmp_path)
    coco["images"][0]["width"] = 0
    problems = _problems(coco, images_dir)
    assert ("error", 1, None, "width/height") in problems
    assert {p[2] for p in problems if p[2] is not None} == {10, 11}  # its annotations are unusable too


# --- strict and skip modes -----------------------------------------------------------------------------


def test_strict_counts_warnings(tmp_path: Path) -> None:
    coco, images_dir = _coco(tmp_path)
    _ann(coco, 10)["bbox"] = [30.0, 5.0, 15.0, 10.0]
    report = check_annotations(coco, images_dir)
    assert not report.failed() and report.failed(strict=True)
    assert "(strict)" in report.format(strict=True)


def test_drop_bad_removes_images_and_annotations_with_errors(tmp_path: Path) -> None:
    coco, images_dir = _coco(tmp_path)
    _ann(coco, 10)["category_id"] = 99  # annotation error
    _ann(coco, 11)["bbox"] = [30.0, 2.0, 8.0, 6.0]  # within tolerance: kept
    (images_dir / "b.png").unlink()  # image error: image 2 and annotation 12 go
    report = check_annotations(coco, images_dir)
    assert (report.bad_image_ids, report.bad_annotation_ids) == ({2}, {10})
    kept = drop_bad(coco, report)
    assert [im["id"] for im in kept["images"]] == [1]
    assert [a["id"] for a in kept["annotations"]] == [11]
    assert len(coco["annotations"]) == 3  # the input is not modified


def test_format_limits_problem_lines(tmp_path: Path) -> None:
    coco, images_dir = _coco(tmp_path)
    for ann in coco["annotations"]:
        ann["category_id"] = 99
    text = check_annotations(coco, images_dir).format(max_problems=1)
    assert "annotation 10" in text and "annotation 11" not in text
    assert "... and 2 more" in text


# --- subsetting ----------------------------------------------------------------------------------------


def test_subset_by_categories_then_max_images(tmp_path: Path) -> None:
    coco, _ = _coco(tmp_path)
    shoes = subset_annotations(coco, categories=[23])
    assert [c["id"] for c in shoes["categories"]] == [23]
    assert [a["id"] for a in shoes["annotations"]] == [11, 12]
    assert [im["id"] for im in shoes["images"]] == [1, 2]
    tops = subset_annotations(coco, categories=[1])
    assert [im["id"] for im in tops["images"]] == [1]  # image 2 holds no top
    first = subset_annotations(coco, max_images=1, categories=[23])
    assert [im["id"] for im in first["images"]] == [1] and [a["id"] for a in first["annotations"]] == [11]


def test_subset_rejects_unknown_categories_and_bad_counts(tmp_path: Path) -> None:
    coco, _ = _coco(tmp_path)
    with pytest.raises(FashionsegError, match=r"categories \[5\] are not in the annotation file"):
        subset_annotations(coco, categories=[1, 5])
    with pytest.raises(FashionsegError, match="max_images must be a positive number"):
        subset_annotations(coco, max_images=0)
