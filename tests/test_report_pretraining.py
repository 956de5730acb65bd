"""The pretraining section (fashionseg.report.pretraining): the trunk's manifest as a table and a figure, and
R50-FPN from the trunk against from scratch, on hand-made manifests and learning curves."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from fashionseg.config import project_root
from fashionseg.models.trunk import TRUNK_FILE, TrunkError
from fashionseg.report import pretraining


def _manifest() -> dict:
    """A manifest of weights/r50-gn-trunk.json's shape, with small round values."""
    return {
        "pretext": "detection on a synthetic split",
        "stages": "stem, res2, res3, res4, res5",
        "data": {
            "synth_seed": 1,
            "synth_train": 100,
            "synth_val": 10,
            "synth_size": 64,
            "disjoint_from_study": {"pretrain_images": 110, "study_images": 30, "shared": 0},
        },
        "iterations": 400,
        "train_seconds": 600.0,
        "cpu": {"model": "Test CPU"},
        "cpu_threads": 2,
        "val": {"bbox_AP": 50.04, "segm_AP": 40.06},
        "learning_curve": [
            {"iteration": 200, "train_seconds": 300.0, "bbox_AP": 20.0, "segm_AP": 15.0},
            {"iteration": 400, "train_seconds": 600.0, "bbox_AP": 50.04, "segm_AP": 40.06},
        ],
        "loss_curve": [
            {"iteration": 100, "loss": 3.0, "lr": 0.01, "train_seconds": 150.0},
            {"iteration": 200, "loss": 2.0, "lr": 0.02, "train_seconds": 300.0},
            {"iteration": 300, "loss": 1.5, "lr": 0.02, "train_seconds": 450.0},
        ],
        "recipe": {"solver": {"ims_per_batch": 2, "base_lr": 0.02, "steps": [300, 350]}},
        "file": "trunk.safetensors",
        "bytes": 2_500_000,
        "dtype": "float16",
        "sha256": "0123456789abcdef" + "f" * 48,
    }


def _curve(points: list[tuple[int, float, float, float]]) -> pd.DataFrame:
    """A learning curve (read_learning_curve's columns) from (iteration, seconds, box AP, mask AP)."""
    return pd.DataFrame(points, columns=["iteration", "train_seconds", "bbox_AP", "segm_AP"])


def test_read_trunk_manifest_reads_the_json_beside_the_trunk_and_defaults_to_the_shipped_one(tmp_path):
    trunk = tmp_path / "trunk.safetensors"
    (tmp_path / "trunk.json").write_text(json.dumps(_manifest()))
    assert pretraining.read_trunk_manifest(trunk) == _manifest()
    shipped = json.loads((project_root() / TRUNK_FILE).with_suffix(".json").read_text())
    assert pretraining.read_trunk_manifest() == shipped
    with pytest.raises(TrunkError, match="missing"):
        pretraining.read_trunk_manifest(tmp_path / "other.safetensors")


def test_trunk_summary_has_one_row_per_fact_from_the_manifest():
    table = pretraining.trunk_summary(_manifest())
    facts = table[""]
    assert list(table.index) == [
        "pretext",
        "data",
        "schedule",
        "training time",
        "CPU",
        "pretext's val box / mask AP",
        "kept",
        "file",
    ]
    assert table.index.name == "pretraining"
    assert facts["training time"] == "10.0 min on 2 threads"
    assert facts["schedule"] == "400 iterations, batch 2, lr 0.02 (x0.1 at 300, 350)"
    assert facts["pretext's val box / mask AP"] == "50.0 / 40.1"
    assert facts["file"] == "trunk.safetensors, 2.5 MB (float16), SHA-256 0123456789abcdef..."
    assert "100 training + 10 validation" in facts["data"] and "the study's 30" in facts["data"]


def test_a_joint_pretext_shows_each_designs_ap_and_no_curve():
    val = {"R50-FPN": {"bbox_AP": 50.04, "segm_AP": 40.06}, "R50-C4": {"bbox_AP": 30.0, "segm_AP": 25.0}}
    manifest = {**_manifest(), "val": val, "learning_curve": []}
    facts = pretraining.trunk_summary(manifest)[""]
    assert facts["pretext's val box / mask AP"] == "R50-FPN 50.0 / 40.1, R50-C4 30.0 / 25.0"
    _, ap_ax = pretraining.plot_trunk_curve(manifest).axes
    assert not ap_ax.get_lines()


def test_plot_trunk_curve_draws_the_loss_and_both_aps_against_iterations():
    manifest = _manifest()
    fig = pretraining.plot_trunk_curve(manifest)
    loss_ax, ap_ax = fig.axes
    (loss,) = loss_ax.get_lines()
    assert list(loss.get_xdata()) == [100, 200, 300] and list(loss.get_ydata()) == [3.0, 2.0, 1.5]
    mask, box = ap_ax.get_lines()
    assert (mask.get_label(), box.get_label()) == ("mask AP", "box AP")
    assert list(mask.get_xdata()) == [200, 400] and list(mask.get_ydata()) == [15.0, 40.06]
    assert list(box.get_ydata()) == [20.0, 50.04]
    assert (ap_ax.get_xlabel(), ap_ax.get_ylabel()) == ("iteration", "AP")
    # a trunk that was never evaluated: the loss alone, no AP line and no legend
    empty = pretraining.plot_trunk_curve({**manifest, "learning_curve": []})
    assert len(empty.axes[0].get_lines()) == 1
    assert not empty.axes[1].get_lines() and empty.axes[1].get_legend() is None


def test_scratch_against_trunk_compares_equal_iterations_and_equal_time():
    trunk = _curve([(100, 60.0, 20.0, 18.0), (200, 120.0, 40.0, 36.0)])
    scratch = _curve([(100, 50.0, 2.0, 1.0), (200, 100.0, 5.0, 4.0), (300, 150.0, 9.0, 8.0)])
    table = pretraining.scratch_against_trunk(scratch, trunk)
    assert list(table.index) == ["equal iterations", "equal training time"]
    iterations, time = table.loc["equal iterations"], table.loc["equal training time"]
    assert iterations["trunk point"] == "iteration 200, 2.0 min"
    assert iterations["scratch point"] == "iteration 200, 1.7 min"
    assert iterations["from the trunk"] == "40.0 / 36.0" and iterations["from scratch"] == "5.0 / 4.0"
    assert iterations["mask AP gain"] == 32.0
    # equal time: the fine-tune's 120 s against scratch's last point at or before them (100 s, not 150 s)
    assert time["scratch point"] == "iteration 200, 1.7 min"
    longer = _curve([(100, 50.0, 2.0, 1.0), (200, 100.0, 5.0, 4.0), (240, 121.0, 7.0, 6.0)])
    # within 2% of the fine-tune's seconds counts as equal time (timing noise)
    assert pretraining.scratch_against_trunk(longer, trunk).loc["equal training time", "mask AP gain"] == 30.0


def test_equal_iterations_never_pairs_two_different_iterations():
    trunk = _curve([(100, 60.0, 20.0, 18.0), (200, 120.0, 40.0, 36.0), (300, 180.0, 50.0, 45.0)])
    shorter = _curve([(100, 50.0, 2.0, 1.0), (200, 100.0, 5.0, 4.0)])
    row = pretraining.scratch_against_trunk(shorter, trunk).loc["equal iterations"]
    # the largest iteration both reached is 200: the trunk's point there, not its last (300)
    assert row["trunk point"] == "iteration 200, 2.0 min" and row["scratch point"] == "iteration 200, 1.7 min"
    assert row["mask AP gain"] == 32.0
    # no iteration in common: no equal-iterations row rather than a mismatched one
    offset = _curve([(150, 90.0, 3.0, 2.0), (250, 150.0, 6.0, 5.0)])
    assert list(pretraining.scratch_against_trunk(offset, trunk).index) == ["equal training time"]
    assert pretraining.scratch_against_trunk(shorter.iloc[:0], trunk).empty
    assert pretraining.scratch_against_trunk(shorter, trunk.iloc[:0]).empty


def test_equal_time_compares_at_the_time_both_runs_reached():
    trunk = _curve([(100, 60.0, 20.0, 18.0), (200, 120.0, 40.0, 36.0), (300, 180.0, 50.0, 45.0)])
    quicker = _curve([(100, 50.0, 2.0, 1.0), (200, 100.0, 5.0, 4.0)])  # stopped after 100 s
    row = pretraining.scratch_against_trunk(quicker, trunk).loc["equal training time"]
    # not the trunk's 180 s against scratch's 100 s: both at or before 100 s (+2%)
    assert row["trunk point"] == "iteration 100, 1.0 min" and row["scratch point"] == "iteration 200, 1.7 min"
    assert row["mask AP gain"] == 14.0


def test_pretraining_reading_follows_the_sign_of_each_gain():
    manifest = _manifest()
    trunk = _curve([(100, 60.0, 20.0, 18.0), (200, 120.0, 40.0, 36.0)])
    scratch = _curve([(100, 50.0, 2.0, 1.0), (200, 100.0, 5.0, 4.0)])
    reading = pretraining.pretraining_reading(pretraining.scratch_against_trunk(scratch, trunk), manifest)
    assert reading.startswith("Fine-tuning the trunk raises R50-FPN's mask AP")
    # scratch stopped at 100 s: equal time takes the trunk at 100 s too (iteration 100: 18 - 4)
    assert "+32.0 points at equal iterations and +14.0 points at equal training time" in reading
    assert "10 minutes of training once (400 R50-FPN iterations)" in reading
    assert "box / mask AP 50.0 / 40.1" in reading
    better = _curve([(100, 50.0, 2.0, 1.0), (200, 100.0, 45.0, 40.0)])
    mixed = pretraining.pretraining_reading(pretraining.scratch_against_trunk(better, trunk), manifest)
    assert "does not always raise" in mixed and "-4.0 points at equal iterations" in mixed
    assert pretraining.pretraining_reading(pd.DataFrame(), manifest).startswith("No from-scratch")
