"""The results chapter's speed section (03_compare): timings per backbone, what they were measured under
(proposal counts against detectron2's, batches, warm-up, threads), and the benchmark files beside them."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from fashionseg.config import flatten, load_config, to_dict
from fashionseg.report.render import and_list, ranking_text
from fashionseg.rundir import METRICS_FILE, RunDir, metric, read_run_configs

# the counts the demo lowers, as the speed table's headers name them
SPEED_COUNT_LABELS = {
    "model.rpn_post_nms_top_n_test": "test proposals",
    "model.box_batch_size_per_image": "training RoIs/image",
    "model.box_detections_per_img": "detections/image",
}


@functools.cache
def detectron2_counts() -> dict[str, int]:
    """detectron2's values of the :data:`SPEED_COUNT_LABELS` counts: the ``1x`` preset's, which keeps
    ModelConfig's defaults, detectron2's (MODEL.RPN.POST_NMS_TOPK_TEST, MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE,
    TEST.DETECTIONS_PER_IMAGE)."""
    flat = dict(flatten(to_dict(load_config("1x"))))
    return {key: int(flat[key]) for key in SPEED_COUNT_LABELS}


def speed_table(runs: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """Per backbone: mask AP, box AP, training s/iter and inference ms/image (with the device measured on)."""
    rows = {}
    for arch, m in runs.items():
        rows[arch] = {
            "mask AP": metric(m, "mask_AP"),
            "box AP": metric(m, "box_AP"),
            "train s/iter": metric(m, "train_s_per_iter"),
            "inference ms/image": metric(m, "inference_ms_per_image"),
            "device": m.get("speed", {}).get("device", ""),
        }
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "backbone"
    return table.round({"mask AP": 2, "box AP": 2, "train s/iter": 3, "inference ms/image": 1})


def speed_conditions(results_dir: str | Path, archs: Iterable[str]) -> pd.DataFrame:
    """Per backbone, what its timings were measured under: the proposal, RoI and detection counts of its
    ``config.yaml`` (detectron2's default in each header), the training batch, the inference batch, the
    warm-up, the images timed, the CPU threads (``env.json``) and the device."""
    rows = {}
    for arch, cfg in read_run_configs(results_dir, archs).items():
        run = RunDir.of(results_dir, arch)
        flat, env = dict(flatten(to_dict(cfg))), run.env()
        speed = run.metrics().get("speed", {}) if run.has(METRICS_FILE) else {}
        row: dict[str, Any] = {
            f"{SPEED_COUNT_LABELS[key]} (detectron2: {d2})": int(flat[key])
            for key, d2 in detectron2_counts().items()
        }
        row["training batch"] = cfg.solver.ims_per_batch
        # as evaluate_run records them (fashionseg.evaluation.runs.speed_entry); None where it did not
        row["inference batch"] = speed.get("batch_size")
        row["warm-up batches"] = speed.get("warmup_batches")
        row["images timed"] = int(speed.get("images", 0))
        row["threads"] = int(env.get("cpu_threads", 0)) or None
        row["device"] = speed.get("device", env.get("device", ""))
        rows[arch] = row
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "backbone"
    return table


def value_groups(conditions: pd.DataFrame, column: str) -> dict[Any, list[str]]:
    """A column of :func:`speed_conditions` as data: each value (missing ones left out) with the backbones
    that have it, in the table's order."""
    groups = conditions.groupby(column, sort=False).groups
    return {value: [str(arch) for arch in archs] for value, archs in groups.items()}


def groups_text(groups: dict[Any, list[str]]) -> str:
    """:func:`value_groups` in words: ``50`` when every backbone has it, else ``100 (R50-FPN) and 50 (R50-C4,
    R50-DC5)``."""
    if len(groups) == 1:
        return str(next(iter(groups)))
    return and_list([f"{value} ({', '.join(archs)})" for value, archs in groups.items()])


def counts_caveat(conditions: pd.DataFrame) -> str:
    """The sentence the reading adds to its speed part: the test proposal counts of the timings (the first
    column of :func:`speed_conditions`), and whether they differ across the backbones."""
    proposals = value_groups(conditions, conditions.columns[0])
    return (
        f" These timings are at the demo's test proposal counts, {groups_text(proposals)}, not "
        f"detectron2's {detectron2_counts()['model.rpn_post_nms_top_n_test']}"
        + (", and not equal across the backbones" if len(proposals) > 1 else "")
        + "."
    )


@dataclass(frozen=True)
class TimingConditions:
    """What the timings were measured under, as data (:func:`timing_conditions`), which :func:`speed_note`
    renders."""

    backbones: list[str]  # the rows of speed_conditions
    counts: dict[str, dict[Any, list[str]]]  # every column: its values, each with its backbones
    shared: dict[str, Any]  # the columns every backbone has one value of: that value (the first row's)
    detectron2: dict[str, int]  # the three count columns (test proposals, training RoIs, detections)
    no_warmup: bool  # every backbone timed every batch, the first included

    @property
    def equal_proposals(self) -> bool:
        """Whether every backbone was timed at the same number of test proposals."""
        return len(self.counts[next(iter(self.detectron2))]) <= 1

    @property
    def c4_flattered(self) -> bool:
        """Whether R50-C4, whose inference time grows with the proposals the most, was timed at other
        counts than the others: the timings are not at equal counts."""
        return not self.equal_proposals and "R50-C4" in self.backbones


def timing_conditions(conditions: pd.DataFrame) -> TimingConditions:
    """:func:`speed_conditions`' table as a verdict (it must have a row)."""
    first = conditions.iloc[0]
    return TimingConditions(
        backbones=[str(arch) for arch in conditions.index],
        counts={column: value_groups(conditions, column) for column in conditions},
        shared={c: first[c] for c in conditions if conditions[c].nunique() == 1},
        detectron2=dict(zip(conditions.columns[:3], detectron2_counts().values(), strict=True)),
        no_warmup=bool((conditions["warm-up batches"] == 0).all()),
    )


def speed_note(conditions: pd.DataFrame) -> str:
    """How the timings of :func:`speed_table` were measured and what the demo's counts do to them, in one
    paragraph of plain text (to paste with glue), from :func:`speed_conditions` as
    :func:`timing_conditions` reads it."""
    if not len(conditions):
        return "No backbone has a finished run, so there are no timings."

    v = timing_conditions(conditions)
    shared = v.shared
    text = [
        "Training s/iter is the median of the logged intervals at "
        + f"batch {groups_text(v.counts['training batch'])}"
        + "; inference ms/image is the model's time over "
        + (
            f"the {shared['images timed']} validation images"
            if "images timed" in shared
            else "the validation images"
        )
        + ", predicted "
        + (f"in batches of {shared['inference batch']}" if "inference batch" in shared else "in batches")
        + (", with no warm-up (the first batch is timed too)" if v.no_warmup else "")
        + (f", on {shared['device']}" if shared.get("device") else "")
        + (f" with {shared['threads']:.0f} CPU threads" if shared.get("threads") else "")
        + "."
    ]
    (proposals, d2_proposals), (rois, d2_rois), (detections, d2_detections) = v.detectron2.items()
    counts = {column: groups_text(v.counts[column]) for column in (proposals, rois, detections)}
    text.append(
        f"The demo keeps {counts[proposals]} test proposals per image (detectron2: {d2_proposals}), "
        f"samples {counts[rois]} RoIs per training image (detectron2: {d2_rois}) and keeps at most "
        f"{counts[detections]} detections per image (detectron2: {d2_detections})."
    )
    if v.c4_flattered:
        text.append(
            "The timings are therefore not at equal counts. R50-C4 runs its res5 stage once per proposal, so "
            "its inference time grows with the count far more than the others': fewer proposals flatter it."
        )
    text.append(
        "The script benchmarks/inference_speed.py times the same trained models at the demo's counts and at "
        "detectron2's, with the batch, threads and warm-up stated; its numbers are not part of this book."
    )
    return " ".join(text)


INFERENCE_SPEED_FILE = "inference_speed.json"  # written by benchmarks/inference_speed.py --out


@dataclass(frozen=True)
class AtBothCounts:
    """One backbone's inference time at the demo's test counts and at detectron2's
    (:func:`at_both_counts`)."""

    demo: dict[str, Any]  # its row of inference_speed.json at the demo's counts
    detectron2: dict[str, Any]  # at detectron2's

    @property
    def slowdown(self) -> float:
        """How many times longer an image takes at detectron2's counts than at the demo's."""
        return self.detectron2["ms_per_image"] / self.demo["ms_per_image"]


def at_both_counts(record: dict[str, Any]) -> dict[str, AtBothCounts]:
    """The backbones an ``inference_speed.json`` record measured at both counts, in its order (a later row of
    the same backbone and setting replaces an earlier one)."""
    by_arch: dict[str, dict[str, dict[str, Any]]] = {}
    for row in record["rows"]:
        by_arch.setdefault(row["arch"], {})[row["setting"]] = row
    return {
        arch: AtBothCounts(settings["demo"], settings["detectron2"])
        for arch, settings in by_arch.items()
        if settings.get("demo") and settings.get("detectron2")
    }


def inference_speed_text(results_dir: str | Path) -> str:
    """Inference time at the demo's test proposal counts and at detectron2's, from the results folder's
    ``inference_speed.json`` (``benchmarks/inference_speed.py --out``), with what it was measured under; or
    how to measure it when the file is not there. One paragraph."""
    path = Path(results_dir) / INFERENCE_SPEED_FILE
    if not path.is_file():
        return (
            "Inference at detectron2's test proposal counts was not measured for these runs: "
            f"python benchmarks/inference_speed.py --results {results_dir} --out {path} measures it."
        )
    record = json.loads(path.read_text())
    parts, counts = [], ""
    for arch, both in at_both_counts(record).items():
        demo, d2 = both.demo, both.detectron2
        parts.append(
            f"{arch} {d2['ms_per_image']:.0f} ms/image at {d2['proposals']} proposals against "
            f"{demo['ms_per_image']:.0f} at the demo's {demo['proposals']} "
            f"({both.slowdown:.1f}x)" + _share_text(demo, d2)
        )
        counts = f" ({d2['proposals']} proposals, at most {d2['max_detections']} detections an image)"
    return (
        f"At detectron2's test counts{counts} against the demo's: "
        + "; ".join(parts)
        + f". Measured by benchmarks/inference_speed.py on the trained models ({record['cpu']}, "
        f"{record['date']}): batch {record['batch']}, {record['threads']} threads, "
        f"{record['warmup_batches']} warm-up batches, the median over {record['images']} validation images, "
        f"{record['precision']}."
    )


def _share_text(*rows: dict[str, Any]) -> str:
    """`` (GFLOP/s ..., ... of the peak)`` of benchmark rows that carry them (older files do not)."""
    if not all("share_of_peak" in row for row in rows):
        return ""
    shares = " and ".join(f"{row['gflops']:.0f} GFLOP/s, {row['share_of_peak']:.0%}" for row in rows)
    return f", {shares} of the matmul peak"


TRAIN_SPEED_FILE = "train_speed.json"  # written by benchmarks/train_speed.py --json


def train_speed_text(results_dir: str | Path) -> str:
    """Each backbone's training step against the machine's measured matmul peak, from the results folder's
    ``train_speed.json`` (``benchmarks/train_speed.py --json``): GFLOP per step, fp32 and bf16 step times,
    achieved GFLOP/s and their share of the same run's fp32 / bf16 peak; or how to measure it. One paragraph:
    the ratios carry over to other machines better than the seconds."""
    path = Path(results_dir) / TRAIN_SPEED_FILE
    if not path.is_file():
        return f"The training step was not profiled here: python benchmarks/train_speed.py --json {path}."
    record = json.loads(path.read_text())
    peak = record["peak"]["gflops"]
    by_arch: dict[str, dict[str, dict[str, Any]]] = {}
    for row in record["results"]:
        by_arch.setdefault(row["arch"], {})[row["precision"]] = row
    parts = []
    for arch, rows in by_arch.items():
        if {"fp32", "bf16"} <= rows.keys():
            fp32, bf16 = rows["fp32"], rows["bf16"]
            seconds = fp32["median_seconds"]["step"], bf16["median_seconds"]["step"]
            parts.append(
                f"{arch} {bf16['gflop_per_step']:.0f} GFLOP a step, {seconds[0]:.2f} s in fp32 "
                f"({fp32['share_of_peak']:.0%} of the fp32 peak) and {seconds[1]:.2f} s in bf16 "
                f"({bf16['gflops']:.0f} GFLOP/s, {bf16['share_of_peak']:.0%} of the bf16 peak)"
            )
    cpu = record["machine"]["cpu"]["model"]
    return (
        f"Training steps against this machine's peak ({cpu}, {record['machine']['threads']} threads, "
        f"{record['date']}; {record['peak']['method']}: fp32 {peak['fp32']:.0f}, bf16 {peak['bf16']:.0f} "
        f"GFLOP/s): " + "; ".join(parts) + ". FLOPs are FlopCounterMode's (convolutions and matmuls, forward "
        "and backward) at the demo preset, batch 2; the peak is a matmul's, not the hardware's, so a dense "
        "convolution can pass it. benchmarks/train_speed.py measured them, with the forward, backward and "
        "optimizer split and the top operators."
    )


SPEED_MARKERS = ("o", "s", "D", "^", "v", "P")  # one per backbone, so a point reads without colour too


def plot_speed_accuracy(speed: pd.DataFrame, seed: pd.DataFrame | None = None) -> Figure:
    """Mask AP against inference ms/image and against training s/iter, one marker per backbone.

    The backbones are named in one legend beside the two panels, not next to their points, so names never
    overlap however close the points lie. With ``seed`` the seed's mask AP ranking (ties as ties) is the
    figure's title, since the seed reports no timings.
    """
    fig = Figure(figsize=(10, 3.8), layout="constrained")
    axes = fig.subplots(1, 2)
    palette = sns.color_palette("deep", len(speed))
    for ax, x in zip(axes, ["inference ms/image", "train s/iter"], strict=True):
        for (arch, row), color, marker in zip(
            speed.iterrows(), palette, SPEED_MARKERS * len(speed), strict=False
        ):
            ax.scatter(row[x], row["mask AP"], s=70, color=color, marker=marker, label=arch, alpha=0.85)
        ax.set(xlabel=f"{x} (lower is faster)", ylabel="mask AP", title=f"mask AP vs {x}")
        ax.margins(0.2)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right upper", title="backbone", fontsize="small")
    if seed is not None:
        ranking = ranking_text(seed["mask_AP"])
        fig.suptitle(f"the seed reports no timings; its mask AP ranking: {ranking}", fontsize="small")
    return fig
