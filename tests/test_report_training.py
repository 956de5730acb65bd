"""One run's report (fashionseg.report.training, notebook 02): losses, the attribute loss's verdict, the
learning curve's reading."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fashionseg.config import load_config, save_config
from fashionseg.data import statistics
from fashionseg.report import compare, training
from fashionseg.rundir import RunDir


def _attribute_logs() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two 100-iteration logs: the attribute loss falling as 1/sqrt(iteration), and flat around 0.07."""
    iterations = np.arange(1, 101)
    falling = pd.DataFrame(
        {"iteration": iterations, "loss": 4 - 0.02 * iterations, "loss_attribute": 1 / iterations**0.5}
    )
    return falling, falling.assign(loss_attribute=0.07 + 0.001 * np.sin(iterations))


def test_attribute_loss_change_calls_a_flat_loss_flat():
    falling, flat = _attribute_logs()
    iterations = falling["iteration"].to_numpy()
    assert training.loss_change(falling, "loss_attribute", fraction=0.1) == pytest.approx(
        (np.median(1 / iterations[:10] ** 0.5), np.median(1 / iterations[-10:] ** 0.5))
    )
    change = training.attribute_loss_change(falling)
    assert (change.first, change.last) == training.loss_change(falling, "loss_attribute")
    assert (change.total_first, change.total_last) == training.loss_change(falling, "loss")
    assert change.drop == pytest.approx(1 - change.last / change.first) and change.drop > 0.7
    assert not change.flat
    still = training.attribute_loss_change(flat)
    assert abs(still.drop) < training.FLAT_LOSS_DROP and still.flat
    # a term that rises is flat too (the head has not learned); a term at zero falls by nothing
    assert training.attribute_loss_change(falling.assign(loss_attribute=iterations / 100)).flat
    assert training.attribute_loss_change(falling.assign(loss_attribute=0.0)).drop == 0.0
    assert training.attribute_loss_change(falling.drop(columns="loss_attribute")) is None
    assert training.attribute_loss_change(falling.assign(loss_attribute=np.nan)) is None


def test_attribute_loss_note_renders_the_verdict():
    falling, flat = _attribute_logs()
    change = training.attribute_loss_change(falling)
    note = training.attribute_loss_note(falling)
    assert note.startswith(f"The attribute loss falls by {change.drop:.0%}")
    assert f"from {change.first:.3f}" in note and f"to {change.last:.3f}" in note
    note = training.attribute_loss_note(flat, weight=0.1)
    assert note.startswith("**The attribute loss stays flat**") and "after its weight 0.1" in note
    assert "no attribute loss" in training.attribute_loss_note(falling.drop(columns="loss_attribute"))


def test_learning_curve_reading_and_training_time(tmp_path):
    rising = pd.DataFrame({"iteration": [100, 200], "segm_AP": [1.0, 4.84], "train_seconds": [30.0, 60.0]})
    flat = pd.DataFrame({"iteration": [100, 200], "segm_AP": [0.02, 0.04], "train_seconds": [30.0, 60.0]})
    text = training.learning_curve_reading({"A": rising, "B": flat, "C": rising.iloc[:1]})
    assert text == (
        "At the end of training the validation mask AP is still rising (A 1.0 at iteration 100, 4.8 at 200), "
        "and flat (B 0.0 at iteration 100, 0.0 at 200)."
    )
    for arch, seconds in (("A", 120.0), ("B", 60.0)):
        (tmp_path / arch).mkdir()
        lines = [{"iteration": 1, "train_seconds": 1.0}, {"iteration": 2, "train_seconds": seconds}]
        (tmp_path / arch / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    (tmp_path / "B" / "env.json").write_text(json.dumps({"cpu_threads": 2}))
    assert compare.training_minutes(tmp_path, ["A", "B", "C"]).to_dict() == {"A": 2.0, "B": 1.0}
    assert compare.cpu_threads(tmp_path, ["A", "B"]) == 2


def test_frequencies_and_losses():
    coco = {
        "categories": [{"id": 1, "name": "dress", "supercategory": "wholebody"}, {"id": 2, "name": "hat"}],
        "attributes": [{"id": 5, "name": "floral", "supercategory": "textile pattern"}],
        "images": [{"id": 1}, {"id": 2}],
        "annotations": [
            {"image_id": 1, "category_id": 1, "attribute_ids": [5]},
            {"image_id": 1, "category_id": 1, "attribute_ids": []},
            {"image_id": 2, "category_id": 1, "attribute_ids": [5]},
        ],
    }
    cats = statistics.category_frequencies(coco)
    assert cats.to_dict("records") == [
        {"category": "dress", "supercategory": "wholebody", "instances": 3, "images": 2}
    ]
    assert statistics.attribute_frequencies(coco).to_dict("records") == [
        {"attribute": "floral", "group": "textile pattern", "instances": 2}
    ]
    summary = statistics.split_summary({"train": coco})
    assert summary.loc["train"].to_dict() == {"images": 2, "instances": 3, "categories": 1, "attributes": 1}

    log = pd.DataFrame({"iteration": [1, 2], "loss": [2.0, 1.0], "loss_mask": [1.0, 0.5], "lr": [0.1, 0.1]})
    fig = training.plot_losses(log, "t")
    assert [line.get_label() for line in fig.axes[0].get_lines()] == ["loss", "loss_mask"]


def test_metrics_table_has_box_and_mask_rows_with_coco_and_fashionpedia_ap():
    family = {"AP": 12.346, "AP50": 20.0, "AP75": 10.0, "APs": None, "APm": 5.0, "APl": 7.0}
    metrics = {
        "bbox": {"coco": family, "iou_f1": {"AP": 3.0}, "f1": {"AP": 4.0}},
        "segm": {"coco": {**family, "AP": 9.0}, "iou_f1": {"AP": None}, "f1": {"AP": 1.0}},
    }
    table = training.metrics_table(metrics)
    assert list(table.index) == list(training.IOU_TYPES.values())
    assert table.loc["box", "AP"] == 12.35  # rounded to 2 decimals
    assert table.loc["mask", "AP"] == 9.0
    assert np.isnan(table.loc["box", "APs"])  # None in metrics.json: no ground truth of that size
    assert np.isnan(table.loc["mask", "AP (IoU+F1)"])
    assert table.loc["box", "AP (F1)"] == 4.0


def test_metric_families_note_lists_every_family_once():
    note = training.metric_families_note()
    lines = note.splitlines()
    assert len(lines) == len(training.METRIC_FAMILY_NOTES)
    for line, name in zip(lines, training.METRIC_FAMILY_NOTES, strict=True):
        assert line.startswith(f"- **{name}**: ")


def test_config_table_holds_every_dotted_key_of_the_config():
    from fashionseg.config import flatten, load_config, to_dict

    cfg = load_config("demo")
    table = training.config_table(cfg)
    assert table.index.name == "key"
    assert list(table.index) == [key for key, _ in flatten(to_dict(cfg))]
    assert table.loc["solver.max_iter", "value"] == str(cfg.solver.max_iter)


def _run(path: Path, values: dict, env: dict | None = None) -> Path:
    """A run folder holding a hand-made ``config.yaml`` (the demo preset with ``values``) and ``env.json``."""
    path.mkdir(parents=True)
    save_config(load_config("demo", values), RunDir(path).config_file)
    if env is not None:
        RunDir(path).env_file.write_text(json.dumps(env))
    return path


def test_describe_run_says_data_schedule_size_weights_and_device_from_the_run_folder(tmp_path):
    values = {"data.synthetic": True, "data.root": "data/x", "solver.max_iter": 120, "data.min_size": 96}
    scratch = _run(tmp_path / "scratch", {**values, "model.weights": "none"}, env={"device": "cuda:0"})
    cfg = RunDir(scratch).config()
    assert training.describe_run(scratch) == (
        f"synthetic data (data/x), 120 iterations at batch {cfg.solver.ims_per_batch}, shortest edge 96 px, "
        "from scratch, on cuda:0"
    )
    # no env.json: the config's device; the trunk and other weights named as such
    trunk = _run(tmp_path / "trunk", {**values, "model.weights": "trunk", "device": "cpu"})
    assert training.describe_run(trunk).endswith(", fine-tuned from the pretrained trunk, on cpu")
    real = {**values, "data.synthetic": False, "model.weights": "imagenet", "model.norm": "frozen_bn"}
    text = training.describe_run(_run(tmp_path / "real", real))
    assert text.startswith("Fashionpedia-format data (data/x), ") and ", from imagenet weights, on " in text


def test_read_learning_curve_reads_the_runs_curve_or_gives_an_empty_table(tmp_path):
    empty = training.read_learning_curve(tmp_path)
    assert empty.empty and list(empty.columns) == ["iteration", "train_seconds", "bbox_AP", "segm_AP"]
    points = [
        {"iteration": 100, "train_seconds": 30.0, "bbox_AP": 1.0, "segm_AP": 0.5},
        {"iteration": 200, "train_seconds": 61.5, "bbox_AP": 3.0, "segm_AP": 2.5, "segm_AP50": 9.0},
    ]
    RunDir(tmp_path).curve_file.write_text("".join(json.dumps(p) + "\n" for p in points))
    curve = training.read_learning_curve(tmp_path)
    assert curve["iteration"].tolist() == [100, 200] and curve["segm_AP"].tolist() == [0.5, 2.5]
    assert curve["segm_AP50"].isna().tolist() == [True, False]  # a column only some points have


def test_plot_learning_curves_draws_each_run_against_iterations_and_minutes():
    a = pd.DataFrame({"iteration": [100, 200], "train_seconds": [60.0, 120.0]})
    a = a.assign(bbox_AP=[2.0, 4.0], segm_AP=[1.0, 3.0])
    b = a.assign(train_seconds=[30.0, 90.0], segm_AP=[5.0, 6.0])
    none = pd.DataFrame(columns=a.columns)
    fig = training.plot_learning_curves({"A": a, "empty": none, "B": b}, "title")
    by_iteration, by_time = fig.axes
    assert [line.get_label() for line in by_iteration.get_lines()] == ["A mask", "A box", "B mask", "B box"]
    a_mask, a_box, b_mask, _ = by_iteration.get_lines()
    assert list(a_mask.get_xdata()) == [100, 200] and list(a_mask.get_ydata()) == [1.0, 3.0]
    assert list(a_box.get_ydata()) == [2.0, 4.0] and a_box.get_linestyle() == "--"
    assert list(b_mask.get_ydata()) == [5.0, 6.0] and a_mask.get_color() != b_mask.get_color()
    # the same curves against training minutes
    assert [list(line.get_xdata()) for line in by_time.get_lines()] == [[1.0, 2.0]] * 2 + [[0.5, 1.5]] * 2
    assert (by_iteration.get_title(), by_iteration.get_xlabel()) == ("title", "iteration")
    assert by_time.get_xlabel().startswith("training time (minutes")
