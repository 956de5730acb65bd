"""The comparison of the backbones (03_compare, the book's results chapter): Table I beside the seed's, the
attribute metrics and their constant baseline, mask AP per category, and the reading of them all.

Every number comes from the runs' files (:class:`fashionseg.rundir.RunDir`) or the seed's Table I shipped as
``data/seed_table1.json``; the readings are composed from the tables, so they stay true when the data change.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
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
    label,
    number,
    rank_groups,
    ranking_text,
    tie_text,
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


def order_differences(ours: pd.Series, theirs: pd.Series, decimals: int = 1) -> tuple[list[str], list[str]]:
    """Where two rankings of the same backbones disagree, pair by pair (``A/B``), at ``decimals``: the pairs
    ranked the other way round, and the pairs tied in one ranking and not in the other."""
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
    return reversed_pairs, tied_pairs


def order_agreement(ours: pd.Series, theirs: pd.Series, decimals: int = 1) -> str:
    """Whether two rankings of the same backbones agree, pair by pair, ties included (one sentence, from
    :func:`order_differences`)."""
    reversed_pairs, tied_pairs = order_differences(ours, theirs, decimals)
    if reversed_pairs:
        return f"The two orders differ: {and_list(reversed_pairs)} are ranked the other way round."
    if tied_pairs:
        return (
            f"No pair is ranked the other way round, but {and_list(tied_pairs)} are tied in one ranking and "
            "not in the other."
        )
    return "The two orders agree."


UNTRAINED_MASK_AP = 10.0  # below this best mask AP, the reading says the backbones' order is noise


def undertrained(ours: pd.DataFrame) -> bool:
    """Whether no backbone of :func:`ours_table` reaches mask AP :data:`UNTRAINED_MASK_AP`: the models have
    barely begun to learn, so the order of our rows is no finding."""
    return bool(ours["mask_AP"].max() < UNTRAINED_MASK_AP)


def ordering_verdict(ours: pd.DataFrame) -> str:
    """Whether our mask AP ordering of the backbones can be read as a finding (:func:`undertrained`), in one
    sentence."""
    if not len(ours):
        return "No backbone has a finished run, so there is no ordering to read."
    if undertrained(ours):
        return (
            f"No backbone reaches mask AP {UNTRAINED_MASK_AP:.0f} here: the models have barely begun to "
            "learn, so the order of our rows says nothing yet about the architectures; only the seed's "
            "rows carry an ordering."
        )
    return (
        "Our values and the seed's were measured on different data and schedules and cannot be compared; "
        "the orderings can, with one run per backbone (see the reading for the noise this leaves)."
    )


def f1_same_order(attributes: pd.DataFrame) -> bool:
    """Whether mask AP^F1 ranks the backbones of :func:`attribute_table` as mask AP does (ties included)."""
    return rank_groups(attributes["mask AP (IoU)"]) == rank_groups(attributes["mask AP (F1)"])


def f1_reading(attributes: pd.DataFrame) -> str:
    """How AP^F1 orders the backbones beside mask AP (one sentence, from :func:`attribute_table`)."""
    if not len(attributes):
        return "No backbone has a finished run."
    by_iou, by_f1 = attributes["mask AP (IoU)"], attributes["mask AP (F1)"]
    same = f1_same_order(attributes)
    return f"By mask AP^F1 the backbones rank {ranking_text(by_f1)}, by mask AP {ranking_text(by_iou)}: " + (
        "the same order."
        if same
        else "a different order, which AP^F1 can give because it does not ask where a detection lies."
    )


@dataclass(frozen=True)
class RunLimits:
    """What the runs' configurations leave unshown (:func:`run_limits`); :func:`limits_reading` renders it."""

    seeds: list[int]  # each run's seed
    iterations: list[int]  # each run's schedule
    seed_iterations: int  # the seed study's schedule, as the seed preset holds it
    one_x_iterations: int  # detectron2's 1x schedule, as the 1x preset holds it
    synthetic: bool  # a run trained on synthetic data
    scratch: list[str]  # the runs trained from random weights
    trunk: list[str]  # the runs fine-tuned from the project's own trunk

    @property
    def short(self) -> bool:
        """Whether every schedule is shorter than detectron2's 1x: a longer one may change the order."""
        return max(self.iterations) < self.one_x_iterations


def run_limits(configs: Mapping[str, RunConfig]) -> RunLimits | None:
    """What the runs of ``configs`` (one per backbone) cannot show, as data; None without a run."""
    if not configs:
        return None
    cfgs = list(configs.values())
    seed_iterations, one_x = (load_config(p).solver.max_iter for p in ("seed", "1x"))
    return RunLimits(
        seeds=[c.seed for c in cfgs],
        iterations=[c.solver.max_iter for c in cfgs],
        seed_iterations=seed_iterations,
        one_x_iterations=one_x,
        synthetic=any(c.data.synthetic for c in cfgs),
        scratch=[name for name, c in configs.items() if c.model.weights == "none"],
        trunk=[name for name, c in configs.items() if is_trunk(c.model.weights)],
    )


def limits_reading(configs: Mapping[str, RunConfig]) -> str:
    """What the runs cannot show (:func:`run_limits`), in one Markdown paragraph, from their configurations
    (one per backbone): one seed per backbone, the schedule against the seed's and detectron2's 1x,
    synthetic data, training from scratch or from the project's synthetic trunk; and always that timings
    depend on the device and the image size."""
    text = ["**What this does not show.**"]
    limits = run_limits(configs)
    if limits is not None:
        text.append(
            f"One run per backbone here (seed {values_text(limits.seeds)}): differences of a few AP points "
            "may not survive another seed; the seeds notebook (06_seeds) sets them against the spread of "
            "several."
        )
        schedule = (
            f"{values_text(limits.iterations)} iterations (the seed trained {limits.seed_iterations}, "
            f"detectron2's 1x schedule {limits.one_x_iterations})"
        )
        if limits.short:
            text.append(f"The schedule is short, {schedule}: a longer one may change the order.")
        else:
            text.append(f"The schedule is detectron2's 1x or longer, {schedule}.")
        if limits.synthetic:
            text.append(
                "Synthetic garments are drawn shapes; real photographs are harder, so even well-trained demo "
                "models would say the pipeline works end to end, not how well it does on Fashionpedia."
            )
        if limits.scratch:
            text.append(
                f"{and_list(limits.scratch)} {'was' if len(limits.scratch) == 1 else 'were'} trained from "
                "scratch (no pretrained weights), where detectron2 and the seed start from ImageNet."
            )
        if limits.trunk:
            text.append(
                f"{and_list(limits.trunk)} fine-tuned the project's own ResNet-50 trunk, pretrained on "
                "synthetic images of the same generator (another seed, no image shared), where detectron2 "
                "and the seed fine-tune ImageNet's: that trunk is closer to its target than ImageNet is to "
                "Fashionpedia."
            )
    text.append("Timings depend on the device and on the image size.")
    return " ".join(text)


@dataclass(frozen=True)
class ComparisonVerdict:
    """What the comparison's tables say, as data (:func:`comparison_verdict`); :func:`honest_reading`
    renders it. Rankings are best first in groups of ties (:func:`fashionseg.report.render.rank_groups`), at
    the precision shown: one decimal for AP, whole ms for speed."""

    mask_ranking: list[list[str]]  # our backbones by mask AP
    seed_ranking: list[list[str]]  # the seed's by mask AP, on the backbones we ran
    reversed_pairs: list[str]  # pairs ("A/B") the two rankings order the other way round
    tied_pairs: list[str]  # pairs tied in one ranking and not in the other
    undertrained: bool  # no backbone reaches UNTRAINED_MASK_AP: no order of ours is a finding
    best_box: list[str]  # the best backbone by box AP (several when tied)
    best_mask: list[str]  # the best by mask AP
    attribute_gap: float  # mask AP minus mask AP^IoU+F1, the mean over the backbones
    f1_same_order: bool  # mask AP^F1 ranks the backbones as mask AP does
    fastest: list[str]  # the fastest at inference
    fastest_ms: float  # its inference ms/image
    device: Any  # what the fastest was timed on (the speed table's "device")
    most_accurate: list[str]  # the best by the speed table's mask AP
    slowdown: dict[str, float]  # with a trade-off: each most accurate backbone's time over the fastest's

    @property
    def orders_agree(self) -> bool:
        """Whether our mask AP order and the seed's agree pair by pair, ties included."""
        return not self.reversed_pairs and not self.tied_pairs

    @property
    def box_and_mask_agree(self) -> bool:
        """Whether box AP and mask AP pick the same best backbone."""
        return self.best_box == self.best_mask

    @property
    def speed_tradeoff(self) -> bool:
        """Whether the most accurate backbone is not also the fastest: accuracy costs inference time."""
        return not set(self.fastest) & set(self.most_accurate)


def comparison_verdict(
    ours: pd.DataFrame, seed: pd.DataFrame, speed: pd.DataFrame, attributes: pd.DataFrame
) -> ComparisonVerdict | None:
    """What :func:`ours_table` beside the seed's (:func:`seed_table`), the speed table
    (:func:`fashionseg.report.timing.speed_table`) and :func:`attribute_table` say; None without a run."""
    if not len(ours):
        return None
    common = [a for a in ours.index if a in seed.index]
    reversed_pairs, tied_pairs = order_differences(ours["mask_AP"], seed.loc[common, "mask_AP"])
    ms = speed["inference ms/image"]
    fastest = rank_groups(ms, decimals=0, ascending=True)[0]
    accurate = rank_groups(speed["mask AP"])[0]
    tradeoff = not set(fastest) & set(accurate)
    return ComparisonVerdict(
        mask_ranking=rank_groups(ours["mask_AP"]),
        seed_ranking=rank_groups(seed.loc[common, "mask_AP"]),
        reversed_pairs=reversed_pairs,
        tied_pairs=tied_pairs,
        undertrained=undertrained(ours),
        best_box=rank_groups(ours["box_AP"])[0],
        best_mask=rank_groups(ours["mask_AP"])[0],
        attribute_gap=(attributes["mask AP (IoU)"] - attributes["mask AP (IoU+F1)"]).mean(),
        f1_same_order=f1_same_order(attributes),
        fastest=fastest,
        fastest_ms=ms[fastest[0]],
        device=speed.loc[fastest[0], "device"],
        most_accurate=accurate,
        slowdown={a: ms[a] / ms[fastest[0]] for a in accurate} if tradeoff else {},
    )


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
    """What the numbers do and do not show, in Markdown: :func:`comparison_verdict` of the tables rendered
    (no number typed here); with ``conditions`` (:func:`speed_conditions`) the speed part says at which
    proposal counts it was timed, and the closing caveats come from the runs' configurations ``configs``
    (:func:`limits_reading`).

    Rankings are read at the precision shown (one decimal for AP, whole ms for speed): values equal there
    are reported as ties, never as an order.
    """
    parts = [
        f"**Setting.** Our runs: {setting}. The seed's: {seed.attrs.get('setting', 'its Table I')}. "
        "Different data and schedules: the absolute values are not comparable."
    ]
    if missing:
        parts.append(f"**Missing.** No finished run for {', '.join(missing)}; its rows show only the seed.")
    verdict = comparison_verdict(ours, seed, speed, attributes)
    if verdict is not None:
        common = [a for a in ours.index if a in seed.index]
        parts.append(
            f"**Accuracy.** By mask AP ours rank {ranking_text(ours['mask_AP'])}; the seed's rank "
            f"{ranking_text(seed.loc[common, 'mask_AP'])}. "
            f"{order_agreement(ours['mask_AP'], seed.loc[common, 'mask_AP'])}"
        )
        if verdict.undertrained:
            parts.append(
                f"**Undertrained.** {ordering_verdict(ours)} The trade-offs below are no finding either. A "
                "longer schedule, a GPU or pretrained weights are needed for that (the book's limitations "
                "page says where the learning curves stand)."
            )
        parts.append(
            f"Box AP and mask AP pick the same best backbone ({tie_text(verdict.best_mask)})."
            if verdict.box_and_mask_agree
            else f"Box AP and mask AP disagree on the best backbone ({tie_text(verdict.best_box)} by box, "
            f"{tie_text(verdict.best_mask)} by mask)."
        )
        gap = verdict.attribute_gap
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
        if verdict.speed_tradeoff:
            slower = ", ".join(f"{a} {ratio:.1f}x" for a, ratio in verdict.slowdown.items())
            trade = (
                f"The most accurate ({tie_text(verdict.most_accurate)}) takes more inference time: {slower}."
            )
        else:
            trade = "It is also the most accurate here, so this run shows no speed/accuracy trade-off."
        verb = "is" if len(verdict.fastest) == 1 else "are"
        parts.append(
            f"**Speed.** {tie_text(verdict.fastest)} {verb} the fastest at inference "
            f"({verdict.fastest_ms:.0f} ms/image on {verdict.device or 'this machine'}). {trade}"
            + (counts_caveat(conditions) if conditions is not None and len(conditions) else "")
        )
    parts.append(limits_reading(configs or {}))
    return "\n\n".join(parts)
