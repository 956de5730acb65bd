"""``fashionseg data check|fetch|synth``: help, output and exit codes."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pytest

from fashionseg.data.cli import add_arguments, run
from fashionseg.errors import FashionsegError


def _data(argv: list[str]) -> int:
    """Run ``fashionseg data ARGV`` as the top-level CLI does (its own parser for the ``data`` subcommand)."""
    parser = argparse.ArgumentParser(prog="fashionseg data")
    add_arguments(parser)
    return run(parser.parse_args(argv))


@pytest.mark.parametrize("action", ["check", "fetch", "synth"])
def test_help(action: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as info:
        _data([action, "--help"])
    assert info.value.code == 0
    assert f"usage: fashionseg data {action}" in capsys.readouterr().out


def test_synth_then_check_passes(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "synth"
    assert (
        _data(["synth", "--out", str(out), "--train", "3", "--val", "2", "--size", "96", "--seed", "4"]) == 0
    )
    train_json = out / "annotations" / "instances_attributes_train.json"
    assert len(json.loads(train_json.read_text())["images"]) == 3
    assert len(list((out / "images" / "val").glob("*.png"))) == 2
    capsys.readouterr()
    assert _data(["check", str(train_json), "--images", str(out / "images" / "train"), "--strict"]) == 0
    printed = capsys.readouterr().out
    assert "images: 3" in printed and "problems: 0 error(s), 0 warning(s)" in printed and "OK" in printed


def test_check_fails_with_the_problem_lines(tmp_path: Path, synthetic_root: Path, capsys) -> None:
    root = tmp_path / "copy"
    shutil.copytree(synthetic_root, root)
    path = root / "annotations" / "instances_attributes_val.json"
    coco = json.loads(path.read_text())
    coco["annotations"][0]["category_id"] = 77
    coco["annotations"][1]["bbox"] = [0.0, 0.0, 0.0, 5.0]
    path.write_text(json.dumps(coco))
    (root / "images" / "val" / coco["images"][2]["file_name"]).unlink()
    assert _data(["check", str(path), "--images", str(root / "images" / "val")]) == 1
    printed = capsys.readouterr().out
    first, second = coco["annotations"][0], coco["annotations"][1]
    assert f"image {first['image_id']} annotation {first['id']}" in printed
    assert "category_id=77: unknown category id" in printed
    assert f"annotation {second['id']}" in printed and "bbox=[0.0, 0.0, 0.0, 5.0]: non-positive" in printed
    assert "synth_val_000002.png does not exist" in printed
    assert "problems: 3 error(s)" in printed and "FAILED" in printed


def test_strict_fails_on_warnings_only(tmp_path: Path, synthetic_root: Path) -> None:
    coco = json.loads((synthetic_root / "annotations" / "instances_attributes_val.json").read_text())
    x, y, w, h = coco["annotations"][0]["bbox"]
    coco["annotations"][0]["bbox"] = [x, y, w + 200, h]  # far past the border: a warning, clipped on load
    path = tmp_path / "warn.json"
    path.write_text(json.dumps(coco))
    assert _data(["check", str(path)]) == 0
    assert _data(["check", str(path), "--strict"]) == 1


def test_check_subset_and_max_problems(tmp_path: Path, synthetic_root: Path, capsys) -> None:
    coco = json.loads((synthetic_root / "annotations" / "instances_attributes_val.json").read_text())
    for ann in coco["annotations"]:
        ann["attribute_ids"] = [9999]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(coco))
    assert _data(["check", str(path), "--max-problems", "1", "--max-images", "2", "--categories", "23"]) == 1
    printed = capsys.readouterr().out
    assert printed.count("attribute_ids=[9999]") == 1 and "more (raise --max-problems" in printed
    assert "categories with instances: 1" in printed


def test_check_of_a_missing_file_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(FashionsegError, match="nope.json does not exist"):
        _data(["check", str(tmp_path / "nope.json")])


def test_fetch_rejects_an_unknown_split(tmp_path: Path) -> None:
    with pytest.raises(FashionsegError, match="unknown split"):
        _data(["fetch", "--root", str(tmp_path), "--splits", "train,nope"])
