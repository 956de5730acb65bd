"""What the book reads from run folders beside the metrics: the recipe (``config.yaml`` and ``env.json``) and
what the timings were measured under, on small hand-made run folders."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from fashionseg import reporting
from fashionseg.config import load_config, save_config
from fashionseg.errors import FashionsegError
from fashionseg.evaluation.runs import WARMUP_BATCHES, speed_entry
from fashionseg.rundir import RunDir
from fashionseg.trends.collection import PlantedTrends


def _run(root: Path, arch: str, threads: int = 2, batch_size: int = 4) -> Path:
    """A run folder of the demo preset for ``arch``: config.yaml, env.json and the speed entry of
    metrics.json as evaluate_run writes it."""
    run = RunDir.of(root, arch)
    run.path.mkdir(parents=True)
    save_config(load_config("demo", {"model.arch": arch}), run.config_file)
    env = {"torch": "2.x", "torchvision": "0.y", "python": "3.11", "device": "cpu", "cpu_threads": threads}
    run.env_file.write_text(json.dumps({**env, "git_commit": "0123456789abcdef"}))
    log = [{"iteration": i, "time": 0.5} for i in (20, 40)]
    speed = speed_entry(log, model_seconds=0.4, images=40, device="cpu", batch_size=batch_size)
    run.metrics_file.write_text(json.dumps({"speed": speed}))
    return run.path


def test_recipe_table_reads_each_runs_config_and_env(tmp_path):
    for arch in ("R50-FPN", "R50-C4"):
        _run(tmp_path, arch)
    table = reporting.recipe_table(tmp_path, ["R50-FPN", "R50-C4", "R50-DC5"])  # R50-DC5: no run folder
    assert list(table.columns) == ["R50-FPN", "R50-C4"]
    assert table.index.name == "setting"
    # the demo preset's per-architecture values, as config.yaml holds them
    fpn, c4 = (load_config("demo", {"model.arch": arch}) for arch in ("R50-FPN", "R50-C4"))
    assert table.loc["RPN proposals, test (pre / post NMS)"].tolist() == [
        f"{c.model.rpn_pre_nms_top_n_test} / {c.model.rpn_post_nms_top_n_test}" for c in (fpn, c4)
    ]
    assert table.loc["RoIs sampled per training image"].tolist() == [
        str(c.model.box_batch_size_per_image) for c in (fpn, c4)
    ]
    steps = ", ".join(map(str, fpn.solver.steps))
    assert table.loc["learning-rate decays at / factor", "R50-FPN"] == f"{steps} / {fpn.solver.gamma}"
    lr = f"{c4.solver.base_lr} / {c4.solver.reference_batch}"
    assert table.loc["base learning rate (for the reference batch)", "R50-C4"] == lr
    assert table.loc["CPU threads"].tolist() == ["2", "2"]
    assert table.loc["git commit", "R50-FPN"] == "0123456789"
    assert set(table.index) >= {label for label, _ in reporting.RECIPE_KEYS} | set(reporting.RECIPE_ENV)


def test_speed_conditions_and_note_state_counts_batches_warmup_and_threads(tmp_path):
    for arch in ("R50-FPN", "R50-C4", "R50-DC5"):
        _run(tmp_path, arch)
    conditions = reporting.speed_conditions(tmp_path, ["R50-FPN", "R50-C4", "R50-DC5"])
    assert conditions.loc["R50-FPN", "test proposals (detectron2: 1000)"] == 100
    assert conditions.loc["R50-C4", "test proposals (detectron2: 1000)"] == 50
    assert conditions.loc["R50-DC5", "training RoIs/image (detectron2: 512)"] == 16
    assert conditions["detections/image (detectron2: 100)"].tolist() == [50, 50, 50]
    # what evaluate_run recorded: its batch, and every batch timed (no warm-up)
    assert conditions["inference batch"].tolist() == [4, 4, 4]
    assert conditions["warm-up batches"].tolist() == [WARMUP_BATCHES] * 3 == [0, 0, 0]
    assert conditions["threads"].tolist() == [2, 2, 2]
    note = reporting.speed_note(conditions)
    assert (
        "in batches of 4, with no warm-up (the first batch is timed too), on cpu with 2 CPU threads" in note
    )
    assert "keeps 100 (R50-FPN) and 50 (R50-C4, R50-DC5) test proposals per image (detectron2: 1000)" in note
    assert "samples 32 (R50-FPN) and 16 (R50-C4, R50-DC5) RoIs per training image (detectron2: 512)" in note
    assert "keeps at most 50 detections per image (detectron2: 100)" in note
    assert "not at equal counts" in note and "benchmarks/inference_speed.py" in note
    assert "`" not in note  # pasted as plain text (glue:text): no Markdown


def test_speed_conditions_read_what_evaluate_run_records(tmp_path):
    _run(tmp_path, "R50-C4", threads=8, batch_size=1)
    conditions = reporting.speed_conditions(tmp_path, ["R50-C4"])
    assert conditions.loc["R50-C4", "inference batch"] == 1
    assert conditions.loc["R50-C4", "images timed"] == 40
    note = reporting.speed_note(conditions)
    assert "in batches of 1" in note and "with 8 CPU threads" in note
    assert "not at equal counts" not in note  # one run: nothing to compare
    assert reporting.speed_note(conditions.iloc[:0]).startswith("No backbone has a finished run")


def test_and_list():
    assert reporting.and_list([]) == ""
    assert reporting.and_list(["a"]) == "a"
    assert reporting.and_list(["a", "b"]) == "a and b"
    assert reporting.and_list(["a", "b", "c"]) == "a, b and c"


def test_the_skirt_patterns_left_over_fall_by_design_and_are_no_false_discoveries():
    planted = PlantedTrends().change()  # stripe +0.6, dot -0.45: plain and check share the -0.15 left
    implied = reporting.implied_changes(planted)
    assert implied["feature"].tolist() == ["skirt: plain (pattern)", "skirt: check"]
    assert implied["change"].round(6).tolist() == [-0.15, -0.15]
    change = pd.DataFrame(
        [
            ("skirt: plain (pattern)", -0.1, 0.001, 0.01),  # falls, as the design implies
            ("skirt: check", 0.2, 0.001, 0.01),  # rises: against the design
            ("sleeve", 0.1, 0.001, 0.01),  # never planted
        ],
        columns=["feature", "change", "p_trend", "q_trend"],
    )
    found = reporting.false_discoveries({"ground truth": change}, planted, 0.05, implied)
    assert found[["feature", "why"]].values.tolist() == [
        ["skirt: check", "implied the other way"],
        ["sleeve", "not planted"],
    ]
    # without the implied changes, the falling plain skirts would be counted too
    assert len(reporting.false_discoveries({"ground truth": change}, planted, 0.05)) == 3
    assert reporting.implied_changes(planted[planted["feature"] == "hat"]).empty


def test_the_reading_says_at_which_proposal_counts_speed_was_timed(tmp_path):
    archs = ["R50-FPN", "R50-C4"]
    for arch in archs:
        _run(tmp_path, arch)
    metrics = {
        arch: {
            "bbox": {
                "coco": dict.fromkeys(["AP", "AP50", "AP75"], ap),
                "iou_f1": {"AP": ap},
                "f1": {"AP": ap},
            },
            "segm": {
                "coco": dict.fromkeys(["AP", "AP50", "AP75"], ap),
                "iou_f1": {"AP": ap},
                "f1": {"AP": ap},
            },
            "speed": {"train_s_per_iter": 0.5, "inference_ms_per_image": ms, "device": "cpu"},
        }
        for arch, ap, ms in (("R50-FPN", 4.0, 100.0), ("R50-C4", 1.0, 300.0))
    }
    conditions = reporting.speed_conditions(tmp_path, archs)
    args = (
        reporting.ours_table(metrics),
        reporting.seed_table(),
        reporting.speed_table(metrics),
        reporting.attribute_table(metrics),
        "synthetic",
    )
    reading = reporting.honest_reading(*args, conditions=conditions)
    assert (
        "These timings are at the demo's test proposal counts, 100 (R50-FPN) and 50 (R50-C4), not "
        "detectron2's 1000, and not equal across the backbones." in reading
    )
    assert "test proposal counts" not in reporting.honest_reading(*args)


def _config_run(root: Path, arch: str, values: dict) -> None:
    """A run folder holding only a hand-made ``config.yaml``: the demo preset with ``values`` set."""
    (root / arch).mkdir(parents=True)
    save_config(
        load_config("demo", {"model.arch": arch, "name": arch, **values}), root / arch / "config.yaml"
    )


def test_the_readings_caveats_come_from_the_runs_configurations(tmp_path):
    """The closing caveats name what the configurations say: a demo-like run is short, synthetic and from
    scratch; a 1x-like run on Fashionpedia from ImageNet weights is none of those."""
    demo_like = {"data.synthetic": True, "solver.max_iter": 300, "model.weights": "none", "seed": 0}
    one_x_like = {
        "data.synthetic": False,
        "data.root": "data/fashionpedia",
        "solver.max_iter": 90_000,
        "solver.steps": [60_000, 80_000],
        "model.weights": "imagenet",
        "model.norm": "frozen_bn",  # the 1x preset's: ImageNet's ResNets are BatchNorm ones
        "seed": 3,
    }
    for arch in ("R50-FPN", "R50-C4"):
        _config_run(tmp_path / "demo", arch, demo_like)
        _config_run(tmp_path / "1x", arch, one_x_like)

    demo = reporting.limits_reading(reporting.read_run_configs(tmp_path / "demo", ["R50-FPN", "R50-C4"]))
    assert "One run per backbone here (seed 0)" in demo
    assert (
        "The schedule is short, 300 iterations (the seed trained 1000, detectron2's 1x schedule 90000)"
        in demo
    )
    assert "Synthetic garments are drawn shapes" in demo
    assert "R50-FPN and R50-C4 were trained from scratch" in demo

    one_x = reporting.limits_reading(
        reporting.read_run_configs(tmp_path / "1x", ["R50-FPN", "R50-C4", "R50-DC5"])
    )
    assert "One run per backbone here (seed 3)" in one_x
    assert "The schedule is detectron2's 1x or longer, 90000 iterations" in one_x
    assert "short" not in one_x and "Synthetic" not in one_x and "scratch" not in one_x
    assert "Timings depend on the device" in one_x and "Timings depend on the device" in demo

    # honest_reading closes with the same paragraph, and says nothing about data it was not told
    metrics = {
        arch: {
            iou_type: {
                "coco": dict.fromkeys(["AP", "AP50", "AP75"], 20.0),
                "iou_f1": {"AP": 18.0},
                "f1": {"AP": 9.0},
            }
            for iou_type in ("bbox", "segm")
        }
        | {"speed": {"train_s_per_iter": 0.5, "inference_ms_per_image": 100.0, "device": "cpu"}}
        for arch in ("R50-FPN", "R50-C4")
    }
    args = (
        reporting.ours_table(metrics),
        reporting.seed_table(),
        reporting.speed_table(metrics),
        reporting.attribute_table(metrics),
        "Fashionpedia",
    )
    configs = reporting.read_run_configs(tmp_path / "1x", metrics)
    assert reporting.honest_reading(*args, configs=configs).endswith(one_x)
    assert "Synthetic" not in reporting.honest_reading(*args)


def test_the_comparison_without_a_finished_run_says_what_to_run_first(tmp_path):
    """03_compare and 04_qualitative ask :func:`reporting.finished_runs` for their runs: with none, a clear
    error naming the folder and the study command, not a bare StopIteration."""
    results = tmp_path / "seed"
    with pytest.raises(
        FashionsegError, match=r"no finished run under .*seed.*fashionseg study --preset seed"
    ):
        reporting.finished_runs(results, ["R50-FPN", "R50-C4"], "model_final.pt")
    _run(results, "R50-C4")  # config.yaml, env.json and metrics.json, no weights
    assert reporting.finished_runs(results, ["R50-FPN", "R50-C4"]) == {"R50-C4": results / "R50-C4"}
    with pytest.raises(FashionsegError, match="R50-C4/model_final.pt"):
        reporting.finished_runs(results, ["R50-FPN", "R50-C4"], "model_final.pt")
    root = Path(__file__).resolve().parents[1] / "notebooks"
    for name in ("03_compare.ipynb", "04_qualitative.ipynb"):
        assert "reporting.finished_runs(results_dir, archs" in (root / name).read_text(), name


def test_inference_at_detectron2s_counts_is_read_from_the_benchmark_file(tmp_path):
    assert "was not measured for these runs" in reporting.inference_speed_text(tmp_path)
    rows = [
        {"arch": "R50-C4", "setting": "demo", "proposals": 50, "max_detections": 50, "ms_per_image": 200.0},
        {
            "arch": "R50-C4",
            "setting": "detectron2",
            "proposals": 1000,
            "max_detections": 100,
            "ms_per_image": 900.0,
        },
    ]
    record = {
        "batch": 1,
        "threads": 2,
        "warmup_batches": 2,
        "images": 24,
        "precision": "fp32",
        "cpu": "X",
        "date": "2026-12-02",
        "rows": rows,
    }
    (tmp_path / reporting.INFERENCE_SPEED_FILE).write_text(json.dumps(record))
    text = reporting.inference_speed_text(tmp_path)
    assert "(1000 proposals, at most 100 detections an image)" in text
    assert "R50-C4 900 ms/image at 1000 proposals against 200 at the demo's 50 (4.5x)" in text
    assert "batch 1, 2 threads, 2 warm-up batches, the median over 24 validation images, fp32" in text
    for row, gflops, share in zip(rows, (300.0, 450.0), (0.4, 0.6), strict=True):
        row.update(gflops=gflops, share_of_peak=share)
    (tmp_path / reporting.INFERENCE_SPEED_FILE).write_text(json.dumps(record))
    text = reporting.inference_speed_text(tmp_path)
    assert "(4.5x), 300 GFLOP/s, 40% and 450 GFLOP/s, 60% of the matmul peak" in text


def test_the_training_step_is_read_against_the_peak_measured_beside_it(tmp_path):
    assert "python benchmarks/train_speed.py --json" in reporting.train_speed_text(tmp_path)

    def row(precision: str, seconds: float, gflops: float, share: float) -> dict:
        return {
            "arch": "R50-DC5",
            "precision": precision,
            "gflop_per_step": 135.0,
            "median_seconds": {"step": seconds},
            "gflops": gflops,
            "share_of_peak": share,
        }

    record = {
        "machine": {"cpu": {"model": "AMD EPYC"}, "threads": 2},
        "peak": {"method": "torch.mm 2048x2048", "gflops": {"fp32": 200.0, "bf16": 800.0}},
        "date": "2026-12-07",
        "results": [row("fp32", 1.5, 90.0, 0.45), row("bf16", 1.25, 108.0, 0.135)],
    }
    (tmp_path / reporting.TRAIN_SPEED_FILE).write_text(json.dumps(record))
    text = reporting.train_speed_text(tmp_path)
    assert "(AMD EPYC, 2 threads, 2026-12-07; torch.mm 2048x2048: fp32 200, bf16 800 GFLOP/s)" in text
    assert "R50-DC5 135 GFLOP a step, 1.50 s in fp32 (45% of the fp32 peak)" in text
    assert "1.25 s in bf16 (108 GFLOP/s, 14% of the bf16 peak)" in text


def test_missed_categories_are_named_per_backbone():
    index = pd.Index(["top, t-shirt, sweatshirt", "sleeve"], name="category")

    def misses_of(missed: list[int]) -> pd.DataFrame:
        shares = [m / n for m, n in zip(missed, [4, 2], strict=True)]
        return pd.DataFrame({"instances": [4, 2], "missed": missed, "missed_share": shares}, index=index)

    misses = {"R50-FPN": misses_of([1, 2]), "R50-C4": misses_of([4, 2]), "R50-DC5": misses_of([3, 0])}
    table = reporting.missed_categories_table(misses)
    assert table.loc["top, t-shirt, sweatshirt"].tolist() == ["1/4", "4/4", "3/4"]
    assert list(table.index) == ["top, t-shirt, sweatshirt", "sleeve"]  # most instances first
    text = reporting.missed_categories_text(misses)
    assert "R50-FPN misses every validation instance of 1 of the 2 categories: “sleeve”." in text
    assert (
        "R50-C4 misses every validation instance of all 2 categories: "
        "“top, t-shirt, sweatshirt” and “sleeve”."
    ) in text
    assert "it misses most of “top, t-shirt, sweatshirt” (3 of 4)." in text
