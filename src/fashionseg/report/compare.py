"""The comparison of the backbones (03_compare, the book's results chapter): Table I beside the seed's, the
attribute metrics and their constant baseline, mask AP per category, and the reading of them all.

Every number comes from the runs' files (:class:`fashionseg.rundir.RunDir`) or the seed's Table I shipped as
``data/seed_table1.json``; the readings are composed from the tables, so they stay true when the data change.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from fashionseg.config import RunConfig, load_config
from fashionseg.evaluation import evaluate
from fashionseg.evaluation.baselines import attribute_baseline
from fashionseg.models.trunk import is_trunk
from fashionseg.report.render import (
    and_list,
    best_text,
    label,
    number,
    rank_groups,
    ranking_text,
    values_text,
)
from fashionseg.report.timing import counts_caveat
from fashionseg.report.training import IOU_TYPES, METRIC_FAMILIES, TABLE1_METRICS
from fashionseg.rundir import RunDir, metric


def seed_table() -> pd.DataFrame:
    """The seed's Table I: one row per backbone (R50-FPN, R50-C4, R50-DC5), columns as ``TABLE1_METRICS``.

    ``attrs["setting"]`` says how the seed obtained it (detectron2, 1000 iterations, Fashionpedia).
    """
    data = json.loads(resources.files("fashionseg.data").joinpath("seed_table1.json").read_text())
    table = pd.DataFrame.from_dict(data["rows"], orient="index")[list(TABLE1_METRICS)]
    table.index.name = "backbone"
    table.attrs.update(setting=data["setting"], source=data["source"])
    return table


def ours_table(runs: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """Table I for our runs: one row per backbone, the columns of :func:`seed_table`."""
    table = pd.DataFrame(
        {arch: {k: metric(m, k) for k in TABLE1_METRICS} for arch, m in runs.items()},
        index=list(TABLE1_METRICS),
    ).T
    table.index.name = "backbone"
    return table


def table1(ours: pd.DataFrame, seed: pd.DataFrame, ours_source: str, seed_source: str) -> pd.DataFrame:
    """Table I with our rows beside the seed's: index (backbone, source), columns "box AP" ... "mask AP75".

    Backbones missing from our runs still show the seed's row, so a gap is visible rather than hidden.
    """
    rows = []
    for arch in seed.index.union(ours.index, sort=False):
        if arch in ours.index:
            rows.append(((arch, ours_source), ours.loc[arch]))
        if arch in seed.index:
            rows.append(((arch, seed_source), seed.loc[arch]))
    table = pd.DataFrame([r for _, r in rows], index=pd.MultiIndex.from_tuples([i for i, _ in rows]))
    table.index.names = ["backbone", "source"]
    return table.rename(columns=label).round(2)


def attribute_table(runs: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """The attribute-aware metrics per backbone: box and mask AP by IoU alone, by IoU+attribute-F1 (the
    Fashionpedia AP^{IoU+F1}), and by F1 alone."""
    table = pd.DataFrame(
        {
            arch: {
                f"{IOU_TYPES[t]} {label}": number(m[t][family]["AP"])
                for t in IOU_TYPES
                for family, label in METRIC_FAMILIES.items()
            }
            for arch, m in runs.items()
        }
    ).T
    table.index.name = "backbone"
    return table.round(2)


def per_category_ap(runs: dict[str, dict[str, Any]], key: str = "segm_AP") -> pd.DataFrame:
    """AP per category (rows, the categories scored) and backbone (columns); a negative AP (no ground truth
    for the category, pycocotools' -1) becomes NaN."""
    table = pd.DataFrame(
        {arch: {c: number(v.get(key)) for c, v in m["per_category"].items()} for arch, m in runs.items()}
    )
    table = table.where(table >= 0)
    return table.dropna(how="all").sort_index()


def plot_category_heatmap(table: pd.DataFrame, title: str) -> Figure:
    """A heatmap of :func:`per_category_ap` (categories x backbones), annotated with the values."""
    fig = Figure(figsize=(2.2 + 1.6 * table.shape[1], 0.32 * len(table) + 1.5), layout="constrained")
    ax = fig.subplots()
    sns.heatmap(
        table, annot=True, fmt=".1f", cmap="viridis", vmin=0, vmax=100, ax=ax, cbar_kws={"label": "AP"}
    )
    ax.set(title=title, xlabel="", ylabel="")
    return fig


def attribute_baselines(results_dir: str | Path, archs: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The model's metrics and :func:`attribute_baseline`'s, both on the full validation split, for each run
    under ``results_dir`` that has its validation predictions (``predictions_val.json``, written by the
    run's evaluation): ``{arch: {"model": metrics, "constant": metrics}}``."""
    splits: dict[Path, dict[str, Any]] = {}  # the backbones share their data: read each file once

    def split(path: Path) -> dict[str, Any]:
        if path not in splits:
            splits[path] = json.loads(path.read_text())
        return splits[path]

    out: dict[str, dict[str, Any]] = {}
    for arch in archs:
        run = RunDir.of(results_dir, arch)
        if not run.predictions_file("val").is_file() or not run.config_file.is_file():
            continue
        data = run.config().data
        train, val = split(data.path(data.train_annotations)), split(data.path(data.val_annotations))
        results = run.predictions("val")
        out[arch] = {
            "model": evaluate(val, results, iou_types=("bbox", "segm"), show_progress=False),
            "constant": attribute_baseline(train, val, results),
        }
    return out


def attribute_baseline_table(baselines: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """Mask AP^{IoU+F1} and AP^{F1} of each backbone's attribute head beside the constant predictor's on the
    same detections (:func:`attribute_baselines`)."""
    rows = {}
    for arch, pair in baselines.items():
        row = {}
        for source, m in pair.items():
            row[f"mask AP^IoU+F1 ({source})"] = number(m["segm"].get("iou_f1", {}).get("AP"))
            row[f"AP^F1 ({source})"] = number(m["segm"].get("f1", {}).get("AP"))
        rows[arch] = row
    return pd.DataFrame.from_dict(rows, orient="index").round(2)


def training_minutes(results_dir: str | Path, archs: Iterable[str]) -> pd.Series:
    """Training wall-clock minutes of each run (the last ``train_seconds`` of its ``metrics.jsonl``;
    evaluations excluded), for the runs that have a log."""
    minutes = {}
    for arch in archs:
        log = RunDir.of(results_dir, arch).log()
        if log and "train_seconds" in log[-1]:
            minutes[arch] = float(log[-1]["train_seconds"]) / 60
    return pd.Series(minutes, name="training minutes", dtype=float)


def cpu_threads(results_dir: str | Path, archs: Iterable[str]) -> int | None:
    """The CPU threads of the machine that trained the runs (``env.json``; the first run that says)."""
    for arch in archs:
        threads = RunDir.of(results_dir, arch).env().get("cpu_threads")
        if threads:
            return int(threads)
    return None


def order_agreement(ours: pd.Series, theirs: pd.Series, decimals: int = 1) -> str:
    """Whether two rankings of the same backbones agree, pair by pair, ties included (one sentence)."""
    common = [k for k in ours.index if k in theirs.index]
    a = ours[common].astype(float).round(decimals)
    b = theirs[common].astype(float).round(decimals)
    reversed_pairs, tied_pairs = [], []
    for i, x in enumerate(common):
        for y in common[i + 1 :]:
            ours_sign, their_sign = np.sign(a[x] - a[y]), np.sign(b[x] - b[y])
            if ours_sign * their_sign < 0:
                reversed_pairs.append(f"{x}/{y}")
            elif ours_sign != their_sign:
                tied_pairs.append(f"{x}/{y}")
    if reversed_pairs:
        return f"The two orders differ: {and_list(reversed_pairs)} are ranked the other way round."
    if tied_pairs:
        return (
            f"No pair is ranked the other way round, but {and_list(tied_pairs)} are tied in one ranking and "
            "not in the other."
        )
    return "The two orders agree."


UNTRAINED_MASK_AP = 10.0  # below this best mask AP, the reading says the backbones' order is noise


def ordering_verdict(ours: pd.DataFrame) -> str:
    """Whether our mask AP ordering of the backbones can be read as a finding, in one sentence."""
    if not len(ours):
        return "No backbone has a finished run, so there is no ordering to read."
    if ours["mask_AP"].max() < UNTRAINED_MASK_AP:
        return (
            f"No backbone reaches mask AP {UNTRAINED_MASK_AP:.0f} here: the models have barely begun to "
            "learn, so the order of our rows says nothing yet about the architectures; only the seed's "
            "rows carry an ordering."
        )
    return (
        "Our values and the seed's were measured on different data and schedules and cannot be compared; "
        "the orderings can, with one run per backbone (see the reading for the noise this leaves)."
    )


def f1_reading(attributes: pd.DataFrame) -> str:
    """How AP^F1 orders the backbones beside mask AP (one sentence, from :func:`attribute_table`)."""
    if not len(attributes):
        return "No backbone has a finished run."
    by_iou, by_f1 = attributes["mask AP (IoU)"], attributes["mask AP (F1)"]
    same = rank_groups(by_iou) == rank_groups(by_f1)
    return f"By mask AP^F1 the backbones rank {ranking_text(by_f1)}, by mask AP {ranking_text(by_iou)}: " + (
        "the same order."
        if same
        else "a different order, which AP^F1 can give because it does not ask where a detection lies."
    )


def limits_reading(configs: Mapping[str, RunConfig]) -> str:
    """What the runs cannot show, in one Markdown paragraph, from their configurations (one per backbone):
    one seed per backbone, the schedule against the seed's and detectron2's 1x, synthetic data, training
    from scratch or from the project's synthetic trunk; and always that timings depend on the device and
    the image size."""
    text = ["**What this does not show.**"]
    cfgs = list(configs.values())
    if cfgs:
        seeds = values_text([c.seed for c in cfgs])
        text.append(
            f"One run per backbone here (seed {seeds}): differences of a few AP points may not survive "
            "another seed; the seeds notebook (06_seeds) sets them against the spread of several."
        )
        iterations = [c.solver.max_iter for c in cfgs]
        # the seed's schedule and detectron2's 1x, as their presets hold them
        seed_iterations, one_x = (load_config(p).solver.max_iter for p in ("seed", "1x"))
        schedule = (
            f"{values_text(iterations)} iterations (the seed trained {seed_iterations}, detectron2's 1x "
            f"schedule {one_x})"
        )
        if max(iterations) < one_x:
            text.append(f"The schedule is short, {schedule}: a longer one may change the order.")
        else:
            text.append(f"The schedule is detectron2's 1x or longer, {schedule}.")
        if any(c.data.synthetic for c in cfgs):
            text.append(
                "Synthetic garments are drawn shapes; real photographs are harder, so even well-trained demo "
                "models would say the pipeline works end to end, not how well it does on Fashionpedia."
            )
        scratch = [name for name, c in configs.items() if c.model.weights == "none"]
        if scratch:
            text.append(
                f"{and_list(scratch)} {'was' if len(scratch) == 1 else 'were'} trained from scratch (no "
                "pretrained weights), where detectron2 and the seed start from ImageNet."
            )
        trunk = [name for name, c in configs.items() if is_trunk(c.model.weights)]
        if trunk:
            text.append(
                f"{and_list(trunk)} fine-tuned the project's own ResNet-50 trunk, pretrained on synthetic "
                "images of the same generator (another seed, no image shared), where detectron2 and the seed "
                "fine-tune ImageNet's: that trunk is closer to its target than ImageNet is to Fashionpedia."
            )
    text.append("Timings depend on the device and on the image size.")
    return " ".join(text)


def honest_reading(
    ours: pd.DataFrame,
    seed: pd.DataFrame,
    speed: pd.DataFrame,
    attributes: pd.DataFrame,
    setting: str,
    missing: Sequence[str] = (),
    conditions: pd.DataFrame | None = None,
    configs: Mapping[str, RunConfig] | None = None,
) -> str:
    """What the numbers do and do not show, in Markdown, composed from the tables (no number typed here);
    with ``conditions`` (:func:`speed_conditions`) the speed part says at which proposal counts it was timed,
    and the closing caveats come from the runs' configurations ``configs`` (:func:`limits_reading`).

    Rankings are read at the precision shown (one decimal for AP, whole ms for speed): values equal there
    are reported as ties, never as an order.
    """
    parts = [
        f"**Setting.** Our runs: {setting}. The seed's: {seed.attrs.get('setting', 'its Table I')}. "
        "Different data and schedules: the absolute values are not comparable."
    ]
    if missing:
        parts.append(f"**Missing.** No finished run for {', '.join(missing)}; its rows show only the seed.")
    if len(ours):
        common = [a for a in ours.index if a in seed.index]
        parts.append(
            f"**Accuracy.** By mask AP ours rank {ranking_text(ours['mask_AP'])}; the seed's rank "
            f"{ranking_text(seed.loc[common, 'mask_AP'])}. "
            f"{order_agreement(ours['mask_AP'], seed.loc[common, 'mask_AP'])}"
        )
        if ours["mask_AP"].max() < UNTRAINED_MASK_AP:
            parts.append(
                f"**Undertrained.** {ordering_verdict(ours)} The trade-offs below are no finding either. A "
                "longer schedule, a GPU or pretrained weights are needed for that (the book's limitations "
                "page says where the learning curves stand)."
            )
        top_box, top_mask = rank_groups(ours["box_AP"])[0], rank_groups(ours["mask_AP"])[0]
        parts.append(
            f"Box AP and mask AP pick the same best backbone ({best_text(ours['mask_AP'])})."
            if top_box == top_mask
            else f"Box AP and mask AP disagree on the best backbone ({best_text(ours['box_AP'])} by box, "
            f"{best_text(ours['mask_AP'])} by mask)."
        )
        gap = (attributes["mask AP (IoU)"] - attributes["mask AP (IoU+F1)"]).mean()
        strict = "Requiring the attributes to match as well (AP^IoU+F1)"
        parts.append(
            (
                f"**Attributes.** {strict} lowers mask AP by {gap:.1f} points on average over the "
                "backbones: what the attribute head's mistakes cost."
                if gap > 0
                else f"**Attributes.** {strict} does not lower mask AP here ({-gap:+.1f} points on average): "
                "its average weighs the categories with attributes once per F1 threshold, so it is not "
                "simply a stricter AP."
            )
            + f" {f1_reading(attributes)} AP^F1 scores the attributes of detections wherever they lie, so "
            "it can be high for a backbone that localises nothing."
        )
        ms = speed["inference ms/image"]
        fastest = rank_groups(ms, decimals=0, ascending=True)[0]
        accurate = rank_groups(speed["mask AP"])[0]
        device = speed.loc[fastest[0], "device"] or "this machine"
        if set(fastest) & set(accurate):
            trade = "It is also the most accurate here, so this run shows no speed/accuracy trade-off."
        else:
            slower = ", ".join(f"{a} {ms[a] / ms[fastest[0]]:.1f}x" for a in accurate)
            trade = f"The most accurate ({best_text(speed['mask AP'])}) takes more inference time: {slower}."
        verb = "is" if len(fastest) == 1 else "are"
        parts.append(
            f"**Speed.** {best_text(ms, decimals=0, ascending=True)} {verb} the fastest at inference "
            f"({ms[fastest[0]]:.0f} ms/image on {device}). {trade}"
            + (counts_caveat(conditions) if conditions is not None and len(conditions) else "")
        )
    parts.append(limits_reading(configs or {}))
    return "\n\n".join(parts)
