"""The comparison of the backbones (fashionseg.report.compare): Table I beside the seed's, the tables of
the metrics, and the reading composed from them, tested by their verdicts."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from support import fake_metrics, run_folder

from fashionseg import rundir
from fashionseg.config import ARCHITECTURES, load_config, save_config
from fashionseg.models.trunk import TRUNK_NAME
from fashionseg.report import compare, timing, training

ROOT = Path(__file__).resolve().parents[1]


def test_seed_table_is_the_seeds_table_one():
    seed = compare.seed_table()
    assert list(seed.index) == list(ARCHITECTURES)
    assert list(seed.columns) == list(training.TABLE1_METRICS)
    raw = json.loads((ROOT / "src/fashionseg/data/seed_table1.json").read_text())
    assert raw["metrics"] == list(training.TABLE1_METRICS)
    assert seed.loc["R50-C4", "mask_AP"] == raw["rows"]["R50-C4"]["mask_AP"]


def test_tables_follow_the_metrics():
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
    assert compare.attribute_table(runs).loc["R50-C4", "mask AP (IoU+F1)"] == 18.0
    assert list(compare.per_category_ap(runs).index) == ["dress"]  # "hat" has no ground truth (-1) anywhere


def _tables(runs: dict) -> tuple:
    """The tables honest_reading reads, of ``runs`` (arch -> metrics.json), beside the seed's."""
    return (
        compare.ours_table(runs),
        compare.seed_table(),
        timing.speed_table(runs),
        compare.attribute_table(runs),
    )


def test_the_verdict_follows_the_tables():
    """fake_metrics(s, ms): box AP 10 s, mask AP 9 s, mask AP^IoU+F1 6 s, AP^F1 8 s, inference ms."""
    runs = {"R50-FPN": fake_metrics(1.0, 50.0), "R50-C4": fake_metrics(3.0, 200.0)}
    seed = compare.seed_table()
    verdict = compare.comparison_verdict(*_tables(runs))
    assert verdict.mask_ranking == [["R50-C4"], ["R50-FPN"]]
    seed_c4_first = seed.loc["R50-C4", "mask_AP"] > seed.loc["R50-FPN", "mask_AP"]
    assert verdict.seed_ranking == ([["R50-C4"], ["R50-FPN"]] if seed_c4_first else [["R50-FPN"], ["R50-C4"]])
    assert verdict.orders_agree == seed_c4_first and not verdict.tied_pairs
    assert not verdict.undertrained  # R50-C4 reaches mask AP 27
    assert verdict.best_box == verdict.best_mask == ["R50-C4"] and verdict.box_and_mask_agree
    assert verdict.attribute_gap == ((9.0 - 6.0) * 1.0 + (9.0 - 6.0) * 3.0) / 2
    assert verdict.f1_same_order
    assert (verdict.fastest, verdict.fastest_ms, verdict.device) == (["R50-FPN"], 50.0, "cpu")
    assert verdict.most_accurate == ["R50-C4"] and verdict.speed_tradeoff
    assert verdict.slowdown == {"R50-C4": 200.0 / 50.0}
    assert compare.comparison_verdict(*(t.iloc[:0] for t in _tables(runs))) is None


def test_the_verdict_never_orders_a_tie():
    """The issue's case: two backbones at mask AP 0.0 are a tie, not "R50-DC5 (0.0) > R50-C4 (0.0)"."""
    runs = {
        "R50-FPN": fake_metrics(0.5, 50.0),
        "R50-C4": fake_metrics(0.001, 200.0),
        "R50-DC5": fake_metrics(0.002, 100.0),
    }
    tables = _tables(runs)
    verdict = compare.comparison_verdict(*tables)
    assert verdict.mask_ranking == [["R50-FPN"], ["R50-C4", "R50-DC5"]]  # 4.5, then 0.009 and 0.018
    assert verdict.undertrained and compare.undertrained(tables[0])  # the best reaches 4.5 < 10
    assert compare.UNTRAINED_MASK_AP > 4.5
    assert verdict.fastest == ["R50-FPN"] and verdict.most_accurate == ["R50-FPN"]
    assert not verdict.speed_tradeoff and verdict.slowdown == {}
    # equal at whole milliseconds: a tie for the fastest
    tied_speed = {arch: fake_metrics(scale, 100.0 + 0.2 * scale) for arch, scale in (("A", 2.0), ("B", 1.0))}
    assert compare.comparison_verdict(*_tables(tied_speed)).fastest == ["A", "B"]


def test_the_verdict_says_where_box_and_mask_ap_and_the_attributes_disagree():
    runs = {"R50-FPN": fake_metrics(2.0, 50.0), "R50-C4": fake_metrics(1.0, 60.0)}
    runs["R50-C4"]["bbox"]["coco"]["AP"] = 30.0  # the best box AP, but not the best mask AP
    for arch in runs:  # AP^IoU+F1 above mask AP; AP^F1 ordered the other way
        runs[arch]["segm"]["iou_f1"]["AP"] = runs[arch]["segm"]["coco"]["AP"] + 1.0
    runs["R50-C4"]["segm"]["f1"]["AP"] = 99.0
    verdict = compare.comparison_verdict(*_tables(runs))
    assert (verdict.best_box, verdict.best_mask) == (["R50-C4"], ["R50-FPN"])
    assert not verdict.box_and_mask_agree
    assert verdict.attribute_gap == -1.0
    assert not verdict.f1_same_order and not compare.f1_same_order(compare.attribute_table(runs))


def test_honest_reading_renders_the_verdict(tmp_path):
    runs = {"R50-FPN": fake_metrics(1.0, 50.0), "R50-C4": fake_metrics(3.0, 200.0)}
    tables = _tables(runs)
    verdict = compare.comparison_verdict(*tables)
    reading = compare.honest_reading(*tables, "synthetic", missing=["R50-DC5"])
    assert "R50-C4 (27.0) > R50-FPN (9.0)" in reading and "No finished run for R50-DC5" in reading
    assert f"R50-FPN is the fastest at inference ({verdict.fastest_ms:.0f} ms/image on cpu)" in reading
    assert "The most accurate (R50-C4) takes more inference time: R50-C4 4.0x" in reading
    assert f"lowers mask AP by {verdict.attribute_gap:.1f} points" in reading
    assert ("The two orders agree." in reading) == verdict.orders_agree
    assert "Undertrained" not in reading
    assert compare.f1_reading(tables[3]) in reading
    # the speed part carries the proposal counts' caveat exactly when it is given the conditions
    for arch in runs:
        run_folder(tmp_path, arch)
    conditions = timing.speed_conditions(tmp_path, list(runs))
    assert timing.counts_caveat(conditions) in compare.honest_reading(
        *tables, "synthetic", conditions=conditions
    )
    assert "test proposal counts" not in reading
    weak = {arch: fake_metrics(0.5, 50.0) for arch in ("R50-FPN", "R50-C4")}  # mask AP 4.5 each
    undertrained = f"**Undertrained.** No backbone reaches mask AP {compare.UNTRAINED_MASK_AP:.0f}"
    assert undertrained in compare.honest_reading(*_tables(weak), "x")


def _config_run(root: Path, arch: str, values: dict) -> None:
    """A run folder holding only a hand-made ``config.yaml``: the demo preset with ``values`` set."""
    (root / arch).mkdir(parents=True)
    save_config(
        load_config("demo", {"model.arch": arch, "name": arch, **values}), root / arch / "config.yaml"
    )


def test_the_limits_come_from_the_runs_configurations(tmp_path):
    """A demo-like run is short, synthetic and from scratch; a 1x-like run on Fashionpedia from ImageNet
    weights is none of those."""
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

    demo = compare.run_limits(rundir.read_run_configs(tmp_path / "demo", ["R50-FPN", "R50-C4"]))
    assert (demo.seeds, demo.iterations) == ([0, 0], [short, short])
    assert (demo.seed_iterations, demo.one_x_iterations) == (seed_iterations, one_x.max_iter)
    assert demo.short and demo.synthetic
    assert demo.scratch == ["R50-FPN", "R50-C4"] and demo.trunk == []

    long = compare.run_limits(rundir.read_run_configs(tmp_path / "1x", ["R50-FPN", "R50-C4", "R50-DC5"]))
    assert (long.seeds, long.iterations) == ([3, 3], [one_x.max_iter] * 2)
    assert not long.short and not long.synthetic and long.scratch == [] == long.trunk
    assert compare.run_limits({}) is None

    trunk = compare.run_limits({"R50-DC5": load_config("demo", {"model.weights": TRUNK_NAME})})
    assert trunk.trunk == ["R50-DC5"] and trunk.scratch == []


def test_limits_reading_renders_the_limits():
    configs = {"R50-FPN": load_config("demo", {"model.weights": "none", "seed": 0})}
    limits = compare.run_limits(configs)
    text = compare.limits_reading(configs)
    assert f"One run per backbone here (seed {limits.seeds[0]})" in text
    assert (
        f"{limits.iterations[0]} iterations (the seed trained {limits.seed_iterations}, detectron2's 1x "
        f"schedule {limits.one_x_iterations})"
    ) in text
    assert ("The schedule is short" in text) == limits.short
    assert ("Synthetic garments" in text) == limits.synthetic
    assert "R50-FPN was trained from scratch" in text
    assert text.endswith("Timings depend on the device and on the image size.")
    assert "One run per backbone" not in compare.limits_reading({})
    # honest_reading closes with the same paragraph
    runs = {"R50-FPN": fake_metrics(1.0, 50.0)}
    assert compare.honest_reading(*_tables(runs), "x", configs=configs).endswith(text)


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


def test_f1_same_order_compares_the_two_rankings_ties_included():
    same = pd.DataFrame({"mask AP (IoU)": [30.0, 10.0], "mask AP (F1)": [50.0, 40.0]}, index=["A", "B"])
    assert compare.f1_same_order(same)
    assert not compare.f1_same_order(same.assign(**{"mask AP (F1)": [40.0, 50.0]}))
    # equal at the precision shown is a tie, and a tie against an order is a different order
    assert not compare.f1_same_order(same.assign(**{"mask AP (F1)": [40.02, 40.04]}))


def test_f1_reading_renders_both_rankings_and_the_verdict():
    same = pd.DataFrame({"mask AP (IoU)": [30.0, 10.0], "mask AP (F1)": [50.0, 40.0]}, index=["A", "B"])
    text = compare.f1_reading(same)
    assert "by mask AP A (30.0) > B (10.0)" in text and "A (50.0) > B (40.0)" in text
    assert "the same order" in text
    assert "a different order" in compare.f1_reading(same.assign(**{"mask AP (F1)": [40.0, 50.0]}))
    assert compare.f1_reading(same.iloc[:0]) == "No backbone has a finished run."
