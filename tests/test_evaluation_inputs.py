"""Bad evaluation input gets a clear error naming the entry; the RLE check; the command line."""

from __future__ import annotations

import argparse
import json
import math

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from fashionseg.data import ontology
from fashionseg.errors import FashionsegError
from fashionseg.evaluation import cli as evaluation_cli
from fashionseg.evaluation import evaluate, write_metrics
from fashionseg.evaluation.fields import malformed_rle_counts
from fashionseg.evaluation.results import check_predictions

ATTRIBUTE_IDS = [a["id"] for a in ontology.ontology_json()["attributes"]]
HEIGHT, WIDTH = 60, 80


def _rle(x: int, y: int, w: int, h: int) -> dict:
    mask = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)
    mask[y : y + h, x : x + w] = 1
    return {"size": [HEIGHT, WIDTH], "counts": mask_utils.encode(np.asfortranarray(mask))["counts"].decode()}


@pytest.fixture
def gt() -> dict:
    onto = ontology.ontology_json()
    return {
        "images": [{"id": 7, "height": HEIGHT, "width": WIDTH, "file_name": "7.jpg"}],
        "annotations": [
            {
                "id": 1,
                "image_id": 7,
                "category_id": 0,
                "bbox": [10.0, 10.0, 30.0, 20.0],
                "area": 600.0,
                "segmentation": _rle(10, 10, 30, 20),
                "iscrowd": 0,
                "attribute_ids": [ATTRIBUTE_IDS[3]],
            }
        ],
        "categories": onto["categories"],
        "attributes": onto["attributes"],
    }


def _good(**changes) -> dict:
    pred = {
        "image_id": 7,
        "category_id": 0,
        "bbox": [10.0, 10.0, 30.0, 20.0],
        "segmentation": _rle(10, 10, 30, 20),
        "score": 0.9,
        "attribute_ids": [ATTRIBUTE_IDS[3]],
    }
    pred.update(changes)
    return {k: v for k, v in pred.items() if v is not None}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"image_id": 99}, "image_id is not an image of the ground truth"),
        ({"category_id": 46}, "category_id 46 is not in the ground truth's categories"),
        ({"attribute_ids": [ATTRIBUTE_IDS[0], 9999]}, "attribute ids [9999] are not in"),
        ({"attribute_ids": None}, "'attribute_ids' is missing"),
        ({"score": math.nan}, "score nan is not a finite number"),
        ({"score": math.inf}, "score inf is not a finite number"),
        ({"score": "high"}, "score 'high' is not a finite number"),
        ({"bbox": None}, "no 'bbox'"),
        ({"bbox": [1.0, 2.0, 3.0]}, "is not [x, y, width, height]"),
        ({"bbox": [1.0, 2.0, -3.0, 4.0]}, "negative size"),
        ({"segmentation": None}, "no 'segmentation'"),
        ({"segmentation": [[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]]}, "segmentation must be an RLE"),
        ({"segmentation": {"size": [10, 10], "counts": "0"}}, "differs from the image's [height, width]"),
        (
            {"segmentation": {"size": [HEIGHT, WIDTH], "counts": _rle(0, 0, 5, 5)["counts"][:-2]}},
            "malformed RLE",
        ),
        ({"segmentation": {"size": [HEIGHT, WIDTH], "counts": "abc~~"}}, "malformed RLE"),
        ({"segmentation": {"size": [HEIGHT, WIDTH], "counts": [10, 5]}}, "malformed RLE"),
    ],
)
def test_bad_prediction_names_the_entry(gt: dict, changes: dict, message: str) -> None:
    preds = [_good(), _good(score=0.5), _good(**changes)]
    with pytest.raises(FashionsegError) as error:
        evaluate(gt, preds, show_progress=False)
    assert message in str(error.value)
    assert "entry 2 (image_id" in str(error.value)


def test_a_missing_geometry_is_fine_when_its_iou_type_is_not_asked_for(gt: dict) -> None:
    metrics = evaluate(gt, [_good(segmentation=None)], iou_types=("bbox",), show_progress=False)
    assert metrics["bbox"]["coco"]["AP"] == pytest.approx(100.0)
    assert "segm" not in metrics


def test_uncompressed_rle_is_accepted(gt: dict) -> None:
    mask = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)
    mask[10:30, 10:40] = 1
    mask = mask.flatten(order="F")
    runs = np.diff(np.r_[0, np.flatnonzero(np.diff(mask)) + 1, mask.size]).tolist()
    pred = _good(segmentation={"size": [HEIGHT, WIDTH], "counts": runs})
    metrics = evaluate(gt, [pred], iou_types=("segm",), show_progress=False)
    assert metrics["segm"]["iou_f1"]["AP"] == pytest.approx(100.0)


def test_bad_ground_truth(gt: dict, tmp_path) -> None:
    gt["annotations"].append({**gt["annotations"][0]})
    with pytest.raises(FashionsegError, match="annotation id 1 appears twice"):
        evaluate(gt, [], show_progress=False)
    gt["annotations"].pop()
    gt["annotations"][0]["attribute_ids"] = [12345]
    with pytest.raises(FashionsegError, match=r"attribute ids \[12345\] are not in the file's attributes"):
        evaluate(gt, [], show_progress=False)
    gt["annotations"][0]["attribute_ids"] = []
    with pytest.raises(FashionsegError, match="does not exist"):
        evaluate(tmp_path / "missing.json", [], show_progress=False)
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(FashionsegError, match="not valid JSON"):
        evaluate(gt, tmp_path / "broken.json", show_progress=False)


def test_the_evaluation_does_not_modify_its_inputs(gt: dict) -> None:
    preds = [_good(attribute_scores=[0.7])]
    before = json.dumps([gt, preds])
    evaluate(gt, preds, show_progress=False)
    assert json.dumps([gt, preds]) == before


def _reference_malformed(counts: bytes, pixels: int) -> bool:
    """pycocotools' rleFrString, one character at a time."""
    runs, p = [], 0
    while p < len(counts):
        value, k, more = 0, 0, True
        while more:
            if p >= len(counts) or not 0 <= counts[p] - 48 <= 63:
                return True
            c = counts[p] - 48
            value |= (c & 0x1F) << 5 * k
            more, p, k = bool(c & 0x20), p + 1, k + 1
            if not more and c & 0x10:
                value |= -1 << 5 * k
        runs.append(value + (runs[-2] if len(runs) > 2 else 0))
    return any(r < 0 for r in runs) or sum(runs) != pixels


def test_malformed_rle_counts_agrees_with_pycocotools_decoding() -> None:
    rng = np.random.default_rng(0)
    valid = []
    for _ in range(50):
        h, w = (int(v) for v in rng.integers(1, 40, 2))
        mask = (rng.random((h, w)) < rng.random()).astype(np.uint8)
        valid.append((mask_utils.encode(np.asfortranarray(mask))["counts"], h * w))
    counts, pixels = zip(*valid, strict=True)
    assert not malformed_rle_counts(list(counts), np.array(pixels)).any()
    random_strings = [bytes(rng.integers(40, 120, rng.integers(0, 8)).astype(np.uint8)) for _ in range(3000)]
    random_pixels = rng.integers(1, 30, len(random_strings))
    expected = [_reference_malformed(s, int(p)) for s, p in zip(random_strings, random_pixels, strict=True)]
    assert malformed_rle_counts(random_strings, random_pixels).tolist() == expected
    assert 0 < sum(expected) < len(expected)  # the random strings hold both kinds


def test_malformed_rle_counts_over_many_chunks() -> None:
    """Long strings (large masks) are checked chunk by chunk; a bad one is found in any chunk."""
    rng = np.random.default_rng(1)
    counts, pixels = [], []
    for _ in range(120):
        h, w = (int(v) for v in rng.integers(200, 700, 2))
        mask = np.zeros((h, w), dtype=np.uint8)
        y, x = (int(v) for v in rng.integers(0, 150, 2))
        mask[y : y + int(rng.integers(1, h - y)), x : x + int(rng.integers(1, w - x))] = 1
        mask[rng.random((h, w)) < 0.01] ^= 1  # many runs, some over 16 pixels apart
        counts.append(mask_utils.encode(np.asfortranarray(mask))["counts"])
        pixels.append(h * w)
    assert sum(map(len, counts)) > 4 * 65536
    assert not malformed_rle_counts(counts, np.array(pixels)).any()
    broken = {7: counts[7][:-1], 50: counts[50] + b"1", 119: counts[119][:10] + b"~" + counts[119][11:]}
    for index, text in broken.items():
        counts[index] = text
    expected = [_reference_malformed(c, p) for c, p in zip(counts, pixels, strict=True)]
    assert [i for i, bad in enumerate(expected) if bad] == sorted(broken)
    assert malformed_rle_counts(counts, np.array(pixels)).tolist() == expected


def test_the_check_decodes_pycocotools_mask_areas(gt: dict) -> None:
    """The RLE check decodes every mask; its areas (the segm area ranges) are pycocotools' ``area``."""
    rng = np.random.default_rng(2)
    preds = []
    for _ in range(300):
        mask = (rng.random((HEIGHT, WIDTH)) < rng.random() ** 2).astype(np.uint8)
        rle = mask_utils.encode(np.asfortranarray(mask))
        preds.append(_good(segmentation={"size": [HEIGHT, WIDTH], "counts": rle["counts"].decode()}))
    checked = check_predictions(preds, gt, ("segm",))
    expected = [float(mask_utils.area(p["segmentation"])) for p in preds]
    assert checked.segmentation_area.tolist() == expected


def _cli(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    evaluation_cli.add_arguments(parser)
    return evaluation_cli.run(parser.parse_args([*argv, "--no-progress"]))


def test_cli_writes_metrics_and_prints_a_table(gt: dict, tmp_path, capsys) -> None:
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "pred.json").write_text(json.dumps([_good()]))
    out = tmp_path / "eval" / "metrics.json"
    files = ["--gt", str(tmp_path / "gt.json"), "--predictions", str(tmp_path / "pred.json")]
    assert _cli(*files, "--out", str(out)) == 0
    metrics = json.loads(out.read_text())
    assert set(metrics) == {"bbox", "segm", "per_category", "per_supercategory"}
    assert set(metrics["bbox"]) == {"coco", "iou_f1", "iou", "f1"}
    printed = capsys.readouterr().out
    assert "IoU+F1" in printed and "100.00" in printed and "segm" in printed
    assert _cli(*files, "--iou-types", "bbox", "--attribute-categories", "none") == 0
    assert "segm" not in capsys.readouterr().out
    with pytest.raises(FashionsegError, match="--attribute-categories 'shirts'"):
        _cli(*files, "--attribute-categories", "shirts")
    (tmp_path / "pred.json").write_text(json.dumps([_good(category_id=77)]))
    with pytest.raises(FashionsegError, match=r"entry 0 \(image_id 7\): category_id 77"):
        _cli(*files)


def test_write_metrics_round_trips(tmp_path) -> None:
    metrics = {"bbox": {"coco": {"AP": 12.5, "APs": None}}}
    path = write_metrics(metrics, tmp_path / "run" / "metrics.json")
    assert json.loads(path.read_text()) == metrics
    assert [p.name for p in path.parent.iterdir()] == ["metrics.json"]
