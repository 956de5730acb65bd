"""The comparison of the backbones (fashionseg.report.compare): Table I beside the seed's, the tables of
the metrics, and the reading composed from them, tested by their verdicts."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from support import fake_metrics, run_folder

from fashionseg import rundir
from fashionseg.config import ARCHITECTURES, load_config, save_config
from fashionseg.report import compare, timing, training

ROOT = Path(__file__).resolve().parents[1]


def test_seed_table_is_the_seeds_table_one():
    seed = compare.seed_table()
    assert list(seed.index) == list(ARCHITECTURES)
    assert list(seed.columns) == list(training.TABLE1_METRICS)
    raw = json.loads((ROOT / "src/fashionseg/data/seed_table1.json").read_text())
    assert raw["metrics"] == list(training.TABLE1_METRICS)
    assert seed.loc["R50-C4", "mask_AP"] == raw["rows"]["R50-C4"]["mask_AP"]


def test_tables_and_reading_follow_the_metrics():
    runs = {"R50-FPN": fake_metrics(1.0, 50.0), "R50-C4": fake_metrics(3.0, 200.0)}
    ours = compare.ours_table(runs)
    assert ours.loc["R50-C4", "mask_AP"] == 27.0 and ours.loc["R50-FPN", "box_AP50"] == 20.0
    assert all(type(rundir.metric(runs["R50-FPN"], name)) is float for name in training.KEY_NUMBERS)

    seed = compare.seed_table()
    table = compare.table1(ours, seed, "ours", "seed")
    assert list(table.columns) == ["box AP", "mask AP", "box AP50", "mask AP50", "box AP75", "mask AP75"]
    # R50-DC5 has no run: only its seed row shows
    assert list(table.index) == [
        ("R50-FPN", "ours"),
        ("R50-FPN", "seed"),
        ("R50-C4", "ours"),
        ("R50-C4", "seed"),
        ("R50-DC5", "seed"),
    ]

    attributes = compare.attribute_table(runs)
    assert attributes.loc["R50-C4", "mask AP (IoU+F1)"] == 18.0
    speed = timing.speed_table(runs)
    heat = compare.per_category_ap(runs)
    assert list(heat.index) == ["dress"]  # "hat" has no ground truth (-1) in any run

    reading = compare.honest_reading(ours, seed, speed, attributes, "synthetic", missing=["R50-DC5"])
    assert "R50-C4 (27.0) > R50-FPN (9.0)" in reading
    assert "R50-FPN is the fastest at inference (50 ms/image on cpu)" in reading
    assert "The most accurate (R50-C4) takes more inference time: R50-C4 4.0x" in reading
    assert "No finished run for R50-DC5" in reading
    # the seed ranks C4 above FPN too
    assert "The two orders agree." in reading
    assert "Undertrained" not in reading  # R50-C4 reaches mask AP 27

    weak = {arch: fake_metrics(0.5, 50.0) for arch in ("R50-FPN", "R50-C4")}  # mask AP 4.5 each
    weak_reading = compare.honest_reading(
        compare.ours_table(weak),
        seed,
        timing.speed_table(weak),
        compare.attribute_table(weak),
        "synthetic",
    )
    assert "**Undertrained.** No backbone reaches mask AP 10" in weak_reading


def test_the_reading_never_orders_a_tie():
    """The issue's case: two backbones at mask AP 0.0 are a tie, not "R50-DC5 (0.0) > R50-C4 (0.0)"."""
    runs = {
        "R50-FPN": fake_metrics(0.5, 50.0),
        "R50-C4": fake_metrics(0.001, 200.0),
        "R50-DC5": fake_metrics(0.002, 100.0),
    }
    ours = compare.ours_table(runs)
    reading = compare.honest_reading(
        ours,
        compare.seed_table(),
        timing.speed_table(runs),
        compare.attribute_table(runs),
        "synthetic",
    )
    assert "R50-FPN (4.5) > R50-C4 = R50-DC5 (0.0)" in reading
    assert "R50-DC5 (0.0) > R50-C4 (0.0)" not in reading and "R50-C4 (0.0) > R50-DC5" not in reading
    assert "AP^F1" in reading and "localises nothing" in reading
    assert "says nothing yet about the architectures" in compare.ordering_verdict(ours)


def test_the_reading_says_at_which_proposal_counts_speed_was_timed(tmp_path):
    archs = ["R50-FPN", "R50-C4"]
    for arch in archs:
        run_folder(tmp_path, arch)
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
    conditions = timing.speed_conditions(tmp_path, archs)
    args = (
        compare.ours_table(metrics),
        compare.seed_table(),
        timing.speed_table(metrics),
        compare.attribute_table(metrics),
        "synthetic",
    )
    reading = compare.honest_reading(*args, conditions=conditions)
    fpn, c4 = (load_config("demo", {"model.arch": a}).model.rpn_post_nms_top_n_test for a in archs)
    d2 = load_config("1x").model.rpn_post_nms_top_n_test
    assert f"test proposal counts, {fpn} (R50-FPN) and {c4} (R50-C4), not detectron2's {d2}" in reading
    assert ("not equal across the backbones" in reading) == (fpn != c4)
    assert "test proposal counts" not in compare.honest_reading(*args)


def _config_run(root: Path, arch: str, values: dict) -> None:
    """A run folder holding only a hand-made ``config.yaml``: the demo preset with ``values`` set."""
    (root / arch).mkdir(parents=True)
    save_config(
        load_config("demo", {"model.arch": arch, "name": arch, **values}), root / arch / "config.yaml"
    )


def test_the_readings_caveats_come_from_the_runs_configurations(tmp_path):
    """The closing caveats name what the configurations say: a demo-like run is short, synthetic and from
    scratch; a 1x-like run on Fashionpedia from ImageNet weights is none of those."""
    seed_iterations = load_config("seed").solver.max_iter
    one_x = load_config("1x").solver
    short = seed_iterations // 2  # shorter than the seed's and than 1x
    demo_like = {"data.synthetic": True, "solver.max_iter": short, "model.weights": "none", "seed": 0}
    one_x_like = {
        "data.synthetic": False,
        "data.root": "data/fashionpedia",
        "solver.max_iter": one_x.max_iter,
        "solver.steps": list(one_x.steps),
        "model.weights": "imagenet",
        "model.norm": "frozen_bn",  # the 1x preset's: ImageNet's ResNets are BatchNorm ones
        "seed": 3,
    }
    for arch in ("R50-FPN", "R50-C4"):
        _config_run(tmp_path / "demo", arch, demo_like)
        _config_run(tmp_path / "1x", arch, one_x_like)

    demo = compare.limits_reading(rundir.read_run_configs(tmp_path / "demo", ["R50-FPN", "R50-C4"]))
    assert "One run per backbone here (seed 0)" in demo
    schedule = (
        f"{short} iterations (the seed trained {seed_iterations}, detectron2's 1x schedule {one_x.max_iter})"
    )
    assert f"The schedule is short, {schedule}" in demo
    assert "Synthetic garments are drawn shapes" in demo
    assert "R50-FPN and R50-C4 were trained from scratch" in demo

    long = compare.limits_reading(rundir.read_run_configs(tmp_path / "1x", ["R50-FPN", "R50-C4", "R50-DC5"]))
    assert "One run per backbone here (seed 3)" in long
    assert f"The schedule is detectron2's 1x or longer, {one_x.max_iter} iterations" in long
    assert "short" not in long and "Synthetic" not in long and "scratch" not in long
    assert "Timings depend on the device" in long and "Timings depend on the device" in demo

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
        compare.ours_table(metrics),
        compare.seed_table(),
        timing.speed_table(metrics),
        compare.attribute_table(metrics),
        "Fashionpedia",
    )
    configs = rundir.read_run_configs(tmp_path / "1x", metrics)
    assert compare.honest_reading(*args, configs=configs).endswith(long)
    assert "Synthetic" not in compare.honest_reading(*args)


def test_plot_category_heatmap_shows_each_value_on_a_fixed_0_to_100_scale():
    table = pd.DataFrame({"R50-FPN": [40.0, 5.25], "R50-C4": [60.0, float("nan")]}, index=["dress", "hat"])
    fig = compare.plot_category_heatmap(table, "mask AP per category")
    ax, colorbar = fig.axes
    (mesh,) = ax.collections
    assert mesh.get_array().reshape(table.shape).filled(-1).tolist() == [[40.0, 60.0], [5.25, -1]]
    assert mesh.get_clim() == (0, 100)  # the same colours whatever the runs reached
    assert sorted(t.get_text() for t in ax.texts) == ["40.0", "5.2", "60.0"]  # the NaN cell stays empty
    assert [t.get_text() for t in ax.get_xticklabels()] == ["R50-FPN", "R50-C4"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["dress", "hat"]
    assert (ax.get_title(), ax.get_xlabel(), ax.get_ylabel()) == ("mask AP per category", "", "")
    assert colorbar.get_ylabel() == "AP"


def test_attribute_baselines_score_each_runs_validation_predictions_twice(tmp_path, monkeypatch):
    data = tmp_path / "data"
    (data / "annotations").mkdir(parents=True)
    (data / "annotations/instances_attributes_train.json").write_text(json.dumps({"split": "train"}))
    (data / "annotations/instances_attributes_val.json").write_text(json.dumps({"split": "val"}))
    results = tmp_path / "results"
    for arch in ("R50-FPN", "R50-C4", "R50-DC5"):
        _config_run(results, arch, {"data.root": str(data), "data.synthetic": False})
    for arch in ("R50-FPN", "R50-C4"):
        rundir.RunDir.of(results, arch).predictions_file("val").write_text(json.dumps([{"arch": arch}]))
    (results / "R50-DC5/config.yaml").unlink()  # predictions but no configuration: left out too
    rundir.RunDir.of(results, "R50-DC5").predictions_file("val").write_text("[]")

    def model(val, predictions, **kwargs):
        return {"model": (val["split"], predictions[0]["arch"])}

    def constant(train, val, predictions):
        return {"constant": (train["split"], val["split"], predictions[0]["arch"])}

    monkeypatch.setattr(compare, "evaluate", model)
    monkeypatch.setattr(compare, "attribute_baseline", constant)
    pairs = compare.attribute_baselines(results, ["R50-FPN", "R50-C4", "R50-DC5", "X101-FPN"])
    assert pairs == {
        arch: {"model": {"model": ("val", arch)}, "constant": {"constant": ("train", "val", arch)}}
        for arch in ("R50-FPN", "R50-C4")
    }


def test_attribute_baseline_table_sets_the_head_beside_the_constant():
    def metrics(iou_f1: float | None, f1: float) -> dict:
        return {"segm": {"iou_f1": {"AP": iou_f1}, "f1": {"AP": f1}}, "bbox": {"iou_f1": {"AP": 99.0}}}

    baselines = {
        "R50-FPN": {"model": metrics(12.346, 30.0), "constant": metrics(4.0, 20.0)},
        "R50-C4": {"model": metrics(None, 10.0), "constant": {"segm": {}}},
    }
    table = compare.attribute_baseline_table(baselines)
    assert list(table.index) == ["R50-FPN", "R50-C4"]
    assert list(table.columns) == [
        "mask AP^IoU+F1 (model)",
        "AP^F1 (model)",
        "mask AP^IoU+F1 (constant)",
        "AP^F1 (constant)",
    ]
    assert table.loc["R50-FPN"].tolist() == [12.35, 30.0, 4.0, 20.0]  # mask (segm) values, 2 decimals
    assert table.loc["R50-C4", "AP^F1 (model)"] == 10.0
    assert table.loc["R50-C4"].drop("AP^F1 (model)").isna().all()  # missing or null: NaN


def test_f1_reading_says_whether_ap_f1_orders_the_backbones_as_mask_ap_does():
    same = pd.DataFrame({"mask AP (IoU)": [30.0, 10.0], "mask AP (F1)": [50.0, 40.0]}, index=["A", "B"])
    text = compare.f1_reading(same)
    assert "by mask AP A (30.0) > B (10.0)" in text and "the same order" in text
    swapped = same.assign(**{"mask AP (F1)": [40.0, 50.0]})
    assert "a different order" in compare.f1_reading(swapped)
    # equal at the precision shown is a tie, and a tie against an order is a different order
    tied = same.assign(**{"mask AP (F1)": [40.02, 40.04]})
    assert "A = B (40.0)" in compare.f1_reading(tied) and "a different order" in compare.f1_reading(tied)
    assert compare.f1_reading(same.iloc[:0]) == "No backbone has a finished run."
