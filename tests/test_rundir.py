"""The run folder (fashionseg.rundir): one name per file, readers that agree with the writers, and the paths
into metrics.json."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from support import run_folder

from fashionseg import rundir
from fashionseg.config import load_config, save_config
from fashionseg.errors import FashionsegError
from fashionseg.evaluation.runs import speed_entry, write_curve_point
from fashionseg.rundir import CURVE_COLUMNS, METRICS, RunDir, curve_point, metric, seed_folder


def test_a_run_folder_names_its_files_and_reads_what_is_there(tmp_path):
    run = RunDir.of(tmp_path, "R50-C4")
    assert run.path == tmp_path / "R50-C4" and run.name == "R50-C4"
    assert run.model_file.name == "model_final.pt" and run.last_checkpoint.parent.name == "checkpoints"
    assert run.predictions_file("val").name == "predictions_val.json"
    # nothing written yet: no env, no log, no curve, and has() says so
    assert run.env() == {} and run.log() == [] and run.curve() == []
    assert not run.has(run.config_file.name)
    run.path.mkdir()
    cfg = load_config("demo", {"model.arch": "R50-C4", "name": "R50-C4"})
    save_config(cfg, run.config_file)
    run.log_file.write_text('{"iteration": 20, "time": 0.5}\n\n{"iteration": 40, "time": 0.4}\n')
    assert run.config() == cfg and run.has(run.config_file.name)
    assert [r["iteration"] for r in run.log()] == [20, 40]
    assert seed_folder(tmp_path, 2) == tmp_path / "seed-2"


def test_metric_reads_a_path_and_gives_nan_for_a_gap():
    metrics = {"segm": {"coco": {"AP": 4.5, "APl": None}}, "speed": {"train_s_per_iter": 0.5}}
    assert metric(metrics, "mask_AP") == 4.5 and type(metric(metrics, "mask_AP")) is float
    assert math.isnan(metric(metrics, "mask_APl"))  # pycocotools' "no large ground truth"
    assert math.isnan(metric(metrics, "box_AP"))  # not evaluated
    assert set(CURVE_COLUMNS.values()) <= set(METRICS)


def test_the_curve_keeps_what_the_metrics_hold_and_stays_sorted(tmp_path):
    metrics = {"bbox": {"coco": {"AP": 2.0, "AP50": 5.0, "AP75": None}}, "segm": {"iou_f1": {"AP": 1.0}}}
    point = curve_point(100, 12.345, metrics)
    assert point == {
        "iteration": 100,
        "train_seconds": 12.35,
        "bbox_AP": 2.0,
        "bbox_AP50": 5.0,
        "bbox_AP75": None,
        "segm_AP_iou_f1": 1.0,
    }
    write_curve_point(tmp_path, curve_point(200, 20.0, metrics))
    write_curve_point(tmp_path, point)
    write_curve_point(tmp_path, {**point, "bbox_AP": 3.0})  # the same iteration again: replaced
    curve = RunDir(tmp_path).curve()
    assert [p["iteration"] for p in curve] == [100, 200] and curve[0]["bbox_AP"] == 3.0


def test_the_speed_entry_records_what_its_readers_need():
    log = [{"iteration": i, "time": t} for i, t in ((20, 9.0), (40, 0.5), (60, 0.7))]
    speed = speed_entry(log, model_seconds=2.0, images=40, device="cpu", batch_size=4)
    assert speed["train_s_per_iter"] == 0.6  # the first interval (start-up) left out
    assert speed["inference_ms_per_image"] == 50.0
    # what the report's speed conditions read, written by the writer rather than guessed by the reader
    assert {"device", "images", "batch_size", "warmup_batches"} <= speed.keys()
    assert json.loads(json.dumps(speed)) == speed
    assert speed_entry([], 0.0, 0, "cpu", 1)["train_s_per_iter"] is None


def test_the_comparison_without_a_finished_run_says_what_to_run_first(tmp_path):
    """03_compare and 04_qualitative ask :func:`rundir.finished_runs` for their runs: with none, a clear
    error naming the folder and the study command, not a bare StopIteration."""
    results = tmp_path / "seed"
    with pytest.raises(
        FashionsegError, match=r"no finished run under .*seed.*fashionseg study --preset seed"
    ):
        rundir.finished_runs(results, ["R50-FPN", "R50-C4"], "model_final.pt")
    run_folder(results, "R50-C4")  # config.yaml, env.json and metrics.json, no weights
    assert rundir.finished_runs(results, ["R50-FPN", "R50-C4"]) == {"R50-C4": results / "R50-C4"}
    with pytest.raises(FashionsegError, match="R50-C4/model_final.pt"):
        rundir.finished_runs(results, ["R50-FPN", "R50-C4"], "model_final.pt")
    root = Path(__file__).resolve().parents[1] / "notebooks"
    for name in ("03_compare.ipynb", "04_qualitative.ipynb"):
        assert "rundir.finished_runs(results_dir, archs" in (root / name).read_text(), name
