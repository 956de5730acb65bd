"""What the timings were measured under (fashionseg.report.timing), on small hand-made run folders and
benchmark files."""

from __future__ import annotations

import json

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from support import run_folder

from fashionseg.config import load_config
from fashionseg.evaluation.runs import WARMUP_BATCHES
from fashionseg.report import timing


def _demo_count(arch: str, key: str) -> int:
    """The demo preset's value of a dotted ``model.*`` count for ``arch``."""
    return int(getattr(load_config("demo", {"model.arch": arch}).model, key.split(".")[1]))


def test_speed_conditions_and_note_state_counts_batches_warmup_and_threads(tmp_path):
    archs = ["R50-FPN", "R50-C4", "R50-DC5"]
    for arch in archs:
        run_folder(tmp_path, arch)
    conditions = timing.speed_conditions(tmp_path, archs)
    d2 = timing.detectron2_counts()
    # one column per lowered count, its header naming detectron2's value, its cells the demo's per backbone
    for key, label in timing.SPEED_COUNT_LABELS.items():
        column = f"{label} (detectron2: {d2[key]})"
        assert conditions[column].tolist() == [_demo_count(arch, key) for arch in archs], key
    # what evaluate_run recorded: its batch, and every batch timed (no warm-up)
    assert conditions["inference batch"].tolist() == [4, 4, 4]
    assert conditions["warm-up batches"].tolist() == [WARMUP_BATCHES] * 3 == [0, 0, 0]
    assert conditions["threads"].tolist() == [2, 2, 2]

    verdict = timing.timing_conditions(conditions)
    assert verdict.backbones == archs
    columns = [f"{label} (detectron2: {d2[key]})" for key, label in timing.SPEED_COUNT_LABELS.items()]
    assert verdict.detectron2 == {column: d2[key] for column, key in zip(columns, d2, strict=True)}
    for key, column in zip(timing.SPEED_COUNT_LABELS, columns, strict=True):
        values = [_demo_count(arch, key) for arch in archs]
        having = {v: [a for a, w in zip(archs, values, strict=True) if w == v] for v in values}
        assert verdict.counts[column] == having
    # every backbone shares the batch, the images timed, the threads and the device; none warmed up
    assert {k: verdict.shared[k] for k in ("inference batch", "images timed", "threads", "device")} == {
        "inference batch": 4,
        "images timed": 40,
        "threads": 2,
        "device": "cpu",
    }
    assert verdict.no_warmup == (WARMUP_BATCHES == 0)
    # R50-C4 is flattered exactly when the backbones' proposal counts differ
    proposals = {_demo_count(arch, "model.rpn_post_nms_top_n_test") for arch in archs}
    assert verdict.equal_proposals == (len(proposals) == 1) and verdict.c4_flattered == (len(proposals) > 1)


def test_speed_note_renders_the_conditions(tmp_path):
    archs = ["R50-FPN", "R50-C4", "R50-DC5"]
    for arch in archs:
        run_folder(tmp_path, arch)
    conditions = timing.speed_conditions(tmp_path, archs)
    verdict = timing.timing_conditions(conditions)
    note = timing.speed_note(conditions)
    assert f"in batches of {verdict.shared['inference batch']}, with no warm-up" in note
    assert f"with {verdict.shared['threads']} CPU threads" in note
    for column in verdict.detectron2:
        assert timing.groups_text(timing.value_groups(conditions, column)) in note
        assert f"(detectron2: {verdict.detectron2[column]})" in note
    assert ("not at equal counts" in note) == verdict.c4_flattered
    assert "benchmarks/inference_speed.py" in note
    assert "`" not in note  # pasted as plain text (glue:text): no Markdown
    assert timing.speed_note(conditions.iloc[:0]).startswith("No backbone has a finished run")


def test_groups_text_names_each_value_with_its_backbones():
    same = pd.DataFrame({"n": [50, 50]}, index=["A", "B"])
    assert timing.groups_text(timing.value_groups(same, "n")) == "50"
    mixed = pd.DataFrame({"n": [100, 50, 50]}, index=["A", "B", "C"])
    assert timing.groups_text(timing.value_groups(mixed, "n")) == "100 (A) and 50 (B, C)"


def test_speed_conditions_read_what_evaluate_run_records(tmp_path):
    run_folder(tmp_path, "R50-C4", threads=8, batch_size=1)
    conditions = timing.speed_conditions(tmp_path, ["R50-C4"])
    assert conditions.loc["R50-C4", "inference batch"] == 1
    assert conditions.loc["R50-C4", "images timed"] == 40
    verdict = timing.timing_conditions(conditions)
    assert (verdict.shared["inference batch"], verdict.shared["threads"]) == (1, 8)
    assert verdict.equal_proposals and not verdict.c4_flattered  # one run: nothing to compare
    # backbones timed differently share nothing but what they agree on
    run_folder(tmp_path, "R50-FPN", threads=2, batch_size=4)
    mixed = timing.timing_conditions(timing.speed_conditions(tmp_path, ["R50-C4", "R50-FPN"]))
    assert "inference batch" not in mixed.shared and "threads" not in mixed.shared
    assert mixed.counts["inference batch"] == {1: ["R50-C4"], 4: ["R50-FPN"]}
    assert mixed.shared["images timed"] == 40


def test_inference_at_detectron2s_counts_is_read_from_the_benchmark_file(tmp_path):
    assert "was not measured for these runs" in timing.inference_speed_text(tmp_path)
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
    (tmp_path / timing.INFERENCE_SPEED_FILE).write_text(json.dumps(record))
    both = timing.at_both_counts(record)
    assert list(both) == ["R50-C4"] and (both["R50-C4"].demo, both["R50-C4"].detectron2) == tuple(rows)
    assert both["R50-C4"].slowdown == rows[1]["ms_per_image"] / rows[0]["ms_per_image"]
    assert timing.at_both_counts({"rows": rows[:1]}) == {}  # measured at one count only: left out
    text = timing.inference_speed_text(tmp_path)
    assert "(1000 proposals, at most 100 detections an image)" in text
    slowdown = both["R50-C4"].slowdown
    assert f"R50-C4 900 ms/image at 1000 proposals against 200 at the demo's 50 ({slowdown:.1f}x)" in text
    assert "batch 1, 2 threads, 2 warm-up batches, the median over 24 validation images, fp32" in text
    for row, gflops, share in zip(rows, (300.0, 450.0), (0.4, 0.6), strict=True):
        row.update(gflops=gflops, share_of_peak=share)
    (tmp_path / timing.INFERENCE_SPEED_FILE).write_text(json.dumps(record))
    text = timing.inference_speed_text(tmp_path)
    assert "(4.5x), 300 GFLOP/s, 40% and 450 GFLOP/s, 60% of the matmul peak" in text


def test_the_training_step_is_read_against_the_peak_measured_beside_it(tmp_path):
    assert "python benchmarks/train_speed.py --json" in timing.train_speed_text(tmp_path)

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
    (tmp_path / timing.TRAIN_SPEED_FILE).write_text(json.dumps(record))
    text = timing.train_speed_text(tmp_path)
    assert "(AMD EPYC, 2 threads, 2026-12-07; torch.mm 2048x2048: fp32 200, bf16 800 GFLOP/s)" in text
    assert "R50-DC5 135 GFLOP a step, 1.50 s in fp32 (45% of the fp32 peak)" in text
    assert "1.25 s in bf16 (108 GFLOP/s, 14% of the bf16 peak)" in text


def test_speed_accuracy_labels_never_overlap():
    """Backbones at nearly the same point are told apart by a legend, not by labels that overlap."""
    speed = pd.DataFrame(
        {
            "mask AP": [0.0, 0.01, 4.8],
            "box AP": [0.0, 0.0, 5.0],
            "train s/iter": [1.0, 1.01, 0.5],
            "inference ms/image": [240.0, 241.0, 100.0],
            "device": "cpu",
        },
        index=pd.Index(["R50-C4", "R50-DC5", "R50-FPN"], name="backbone"),
    )
    seed = pd.DataFrame({"mask_AP": [4.43, 4.43, 3.11]}, index=["R50-C4", "R50-DC5", "R50-FPN"])
    fig = timing.plot_speed_accuracy(speed, seed)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    texts = [t for ax in fig.axes for t in ax.texts] + [t for t in fig.texts if t.get_text()]
    legend = fig.legends[0]
    assert [t.get_text() for t in legend.get_texts()] == ["R50-C4", "R50-DC5", "R50-FPN"]
    boxes = [t.get_window_extent(renderer) for t in [*texts, *legend.get_texts()]]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            assert not a.overlaps(b)
    assert "R50-C4 = R50-DC5 (4.4) > R50-FPN (3.1)" in fig.texts[0].get_text()


def test_counts_caveat_names_the_proposal_counts_and_whether_they_differ():
    d2 = timing.detectron2_counts()["model.rpn_post_nms_top_n_test"]
    column = f"test proposals (detectron2: {d2})"
    equal = pd.DataFrame({column: [50, 50], "training batch": [2, 4]}, index=["A", "B"])
    assert timing.value_groups(equal, column) == {50: ["A", "B"]}
    assert f"counts, 50, not detectron2's {d2}." in timing.counts_caveat(equal)
    # the first column is the proposal count, whatever the later columns hold
    unequal = pd.DataFrame({column: [100, 50, 50], "training batch": [2, 2, 2]}, index=["A", "B", "C"])
    assert timing.value_groups(unequal, column) == {100: ["A"], 50: ["B", "C"]}
    caveat = timing.counts_caveat(unequal)
    assert (
        f"counts, {timing.groups_text(timing.value_groups(unequal, column))}, not detectron2's {d2}" in caveat
    )
    assert caveat.endswith(", and not equal across the backbones.")
    assert "not equal" not in timing.counts_caveat(equal.assign(**{"training batch": [2, 8]}))
