"""The pretraining section (fashionseg.report.pretraining): the trunk's stages as a table and a figure, the
pretext candidates, and R50-FPN from the trunk against from scratch, on hand-made manifests, metrics and
learning curves."""

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
        "arch": "R50-FPN",
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


def _second_stage(first: dict) -> dict:
    """A joint stage continuing ``first`` (written at tmp/first.safetensors)."""
    val = {"R50-FPN": {"bbox_AP": 50.04, "segm_AP": 40.06}, "R50-C4": {"bbox_AP": 30.0, "segm_AP": 25.0}}
    start = {"weights": "first.safetensors", "sha256": first["sha256"], "iterations": first["iterations"]}
    return {
        **_manifest(),
        "arch": "R50-FPN+R50-C4",
        "pretext": "joint",
        "initial_trunk": start,
        "iterations": 100,
        "train_seconds": 120.0,
        "val": val,
        "learning_curve": [],
        "loss_curve": [{"iteration": 50, "loss": 9.0, "lr": 0.01, "train_seconds": 60.0}],
        "sha256": "fedcba9876543210" + "0" * 48,
    }


def test_read_trunk_stages_follows_each_initial_trunk_and_checks_its_sha256(tmp_path, monkeypatch):
    first = _manifest()
    (tmp_path / "first.json").write_text(json.dumps(first))
    second = _second_stage(first)
    (tmp_path / "second.json").write_text(json.dumps(second))
    monkeypatch.chdir(tmp_path)  # initial_trunk.weights is relative to where pretrain ran: the project
    monkeypatch.setattr(pretraining, "project_root", lambda: tmp_path)
    assert pretraining.read_trunk_stages(tmp_path / "second.safetensors") == [first, second]
    assert pretraining.read_trunk_stages(tmp_path / "first.safetensors") == [first]
    # the first stage's file replaced by another trunk: the history would describe the wrong file
    (tmp_path / "first.json").write_text(json.dumps({**first, "sha256": "9" * 64}))
    with pytest.raises(TrunkError, match="first.json has SHA-256 999999999999.*make pretrain"):
        pretraining.read_trunk_stages(tmp_path / "second.safetensors")


def test_the_shipped_trunk_names_a_first_stage_that_is_shipped_too():
    stages = pretraining.read_trunk_stages()
    assert (
        stages[-1]["sha256"]
        == json.loads((project_root() / TRUNK_FILE).with_suffix(".json").read_text())["sha256"]
    )
    assert "initial_trunk" not in stages[0]


def test_trunk_summary_has_one_row_per_fact_and_one_column_per_stage():
    table = pretraining.trunk_summary([_manifest()])
    facts = table["stage 1"]
    assert list(table.index) == [
        "pretext",
        "starts from",
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
    assert facts["starts from"] == "random weights"


def test_a_joint_second_stage_gets_its_own_column_with_each_designs_ap():
    first = _manifest()
    table = pretraining.trunk_summary([first, _second_stage(first)])
    assert list(table.columns) == ["stage 1", "stage 2"]
    facts = table["stage 2"]
    assert facts["pretext's val box / mask AP"] == "R50-FPN 50.0 / 40.1, R50-C4 30.0 / 25.0"
    assert facts["starts from"] == "the trunk first.safetensors"
    assert facts["training time"] == "2.0 min on 2 threads"
    assert table.loc["pretext's val box / mask AP", "stage 1"] == "50.0 / 40.1"


def test_plot_trunk_curve_continues_a_later_stage_after_the_earlier_ones_iterations():
    first = _manifest()
    loss_ax, ap_ax = pretraining.plot_trunk_curve([first, _second_stage(first)]).axes
    stage1, stage2 = loss_ax.get_lines()
    assert list(stage2.get_xdata()) == [450] and list(stage2.get_ydata()) == [9.0]  # 400 + 50
    assert (stage1.get_label(), stage2.get_label()) == ("stage 1", "stage 2")
    # the joint stage keeps no curve: each design's mask AP at its end (iteration 400 + 100)
    labels = [line.get_label() for line in ap_ax.get_lines()]
    assert labels == ["mask AP", "box AP", "R50-FPN mask AP", "R50-C4 mask AP"]
    assert list(ap_ax.get_lines()[3].get_xdata()) == [500] and list(ap_ax.get_lines()[3].get_ydata()) == [
        25.0
    ]


def test_plot_trunk_curve_draws_the_loss_and_both_aps_against_iterations():
    manifest = _manifest()
    fig = pretraining.plot_trunk_curve([manifest])
    loss_ax, ap_ax = fig.axes
    (loss,) = loss_ax.get_lines()
    assert list(loss.get_xdata()) == [100, 200, 300] and list(loss.get_ydata()) == [3.0, 2.0, 1.5]
    mask, box = ap_ax.get_lines()
    assert (mask.get_label(), box.get_label()) == ("mask AP", "box AP")
    assert list(mask.get_xdata()) == [200, 400] and list(mask.get_ydata()) == [15.0, 40.06]
    assert list(box.get_ydata()) == [20.0, 50.04]
    assert (ap_ax.get_xlabel(), ap_ax.get_ylabel()) == ("iteration", "AP")
    # a trunk that was never evaluated: the loss alone, no AP line and no legend
    empty = pretraining.plot_trunk_curve([{**manifest, "learning_curve": []}])
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
    manifest = [_manifest()]
    trunk = _curve([(100, 60.0, 20.0, 18.0), (200, 120.0, 40.0, 36.0)])
    scratch = _curve([(100, 50.0, 2.0, 1.0), (200, 100.0, 5.0, 4.0)])
    reading = pretraining.pretraining_reading(pretraining.scratch_against_trunk(scratch, trunk), manifest)
    assert reading.startswith("Fine-tuning the trunk raises R50-FPN's mask AP")
    # scratch stopped at 100 s: equal time takes the trunk at 100 s too (iteration 100: 18 - 4)
    assert "+32.0 points at equal iterations and +14.0 points at equal training time" in reading
    assert "10 minutes of training once (400 R50-FPN iterations)" in reading
    assert "box / mask AP 50.0 / 40.1" in reading
    two = [_manifest(), _second_stage(_manifest())]
    reading = pretraining.pretraining_reading(pretraining.scratch_against_trunk(scratch, trunk), two)
    assert (
        "12 minutes of training once (400 R50-FPN iterations then 100 R50-FPN+R50-C4 iterations)" in reading
    )
    assert "R50-FPN 50.0 / 40.1, R50-C4 30.0 / 25.0" in reading
    better = _curve([(100, 50.0, 2.0, 1.0), (200, 100.0, 45.0, 40.0)])
    mixed = pretraining.pretraining_reading(pretraining.scratch_against_trunk(better, trunk), manifest)
    assert "does not always raise" in mixed and "-4.0 points at equal iterations" in mixed
    assert pretraining.pretraining_reading(pd.DataFrame(), manifest).startswith("No from-scratch")


def _fine_tune(folder, arch: str, box: float, mask: float) -> None:
    """A fine-tune's metrics.json with only the two APs the pretext table reads."""
    (folder / arch).mkdir(parents=True)
    metrics = {"bbox": {"coco": {"AP": box}}, "segm": {"coco": {"AP": mask}}}
    (folder / arch / "metrics.json").write_text(json.dumps(metrics))


def _candidate(root, name: str, aps: dict[str, tuple[float, float]]) -> None:
    facts = {"pretext": name, "iterations": 900, "pretrain_seconds": 600.0, "trunk_sha256": "a" * 64}
    (root / name).mkdir(parents=True)
    (root / name / "candidate.json").write_text(json.dumps({**facts, "made_by": "a test"}))
    for arch, (box, mask) in aps.items():
        _fine_tune(root / name, arch, box, mask)


def test_pretext_table_judges_each_candidate_by_its_worst_design(tmp_path):
    _candidate(tmp_path, "fpn", {"R50-FPN": (52.4, 48.7), "R50-C4": (29.0, 21.6), "R50-DC5": (19.2, 15.4)})
    _candidate(tmp_path, "control", {"R50-C4": (27.9, 19.9), "R50-DC5": (20.1, 16.4)})
    _candidate(tmp_path, "joint", {"R50-FPN": (52.4, 50.6), "R50-C4": (33.2, 26.4), "R50-DC5": (31.9, 25.3)})
    candidates = pretraining.read_pretext_candidates(tmp_path)
    assert [c.name for c in candidates] == ["control", "fpn", "joint"]  # folder order
    table = pretraining.pretext_table(candidates)
    assert list(table.columns) == ["pretraining", "R50-FPN", "R50-C4", "R50-DC5", "worst mask AP"]
    assert table.loc["fpn", "R50-C4"] == "29.0 / 21.6" and table.loc["fpn", "pretraining"] == "900 it, 10 min"
    assert table.loc["joint", "worst mask AP"] == 25.3 and table.loc["fpn", "worst mask AP"] == 15.4
    # a design not fine-tuned: said so, and no worst design (it may be the worst)
    assert table.loc["control", "R50-FPN"] == "not measured"
    assert pd.isna(table.loc["control", "worst mask AP"])
    reading = pretraining.pretext_reading(table, "joint")
    assert reading.startswith(
        "The shipped trunk's pretext is the one that serves the worst-served design best"
    )
    assert "mask AP 25.3, against 15.4 for the other" in reading
    other = pretraining.pretext_reading(table, "fpn")
    assert other.startswith(
        "The best candidate by the worst design's mask AP is not the shipped trunk's but 'joint'"
    )


def test_shipped_candidate_sums_the_stages_and_reads_the_studys_fine_tunes(tmp_path):
    first = _manifest()
    stages = [first, _second_stage(first)]
    for arch, aps in {"R50-FPN": (60.0, 55.0), "R50-C4": (45.0, 40.0), "R50-DC5": (44.0, 39.0)}.items():
        _fine_tune(tmp_path, arch, *aps)
    shipped = pretraining.shipped_candidate(stages, tmp_path)
    assert (shipped.iterations, shipped.pretrain_seconds) == (500, 720.0)
    assert shipped.trunk_sha256 == stages[-1]["sha256"]
    assert shipped.pretext == "the shipped trunk: R50-FPN for 400 it, then R50-FPN+R50-C4 for 100 it"
    row = pretraining.pretext_table([shipped]).iloc[0]
    assert (
        row["R50-DC5"] == "44.0 / 39.0"
        and row["worst mask AP"] == 39.0
        and row["pretraining"] == "500 it, 12 min"
    )


def test_the_committed_pretext_candidates_each_name_a_fine_tuned_design():
    candidates = pretraining.read_pretext_candidates()
    assert candidates, "results/pretext holds the measured candidates"
    for candidate in candidates:
        assert len(candidate.trunk_sha256) == 64
        assert any(
            (candidate.runs / arch / "metrics.json").is_file() for arch in ("R50-FPN", "R50-C4", "R50-DC5")
        )
