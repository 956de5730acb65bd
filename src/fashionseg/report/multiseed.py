"""The backbone comparison across seeds: is a difference larger than the noise, and does the ranking survive
a comparison at equal training time?

``fashionseg study --seeds 0,1,2`` trains every backbone once per seed: the runs' own seed (the preset's)
in ``results/<preset>/<arch>/``, every other seed ``k`` in ``results/<preset>/seed-<k>/<arch>/``. These
functions read those run folders and compose the ``06_seeds`` notebook's tables, figures and sentences, so
the book's claims follow the data. Two kinds of noise are measured: seed to seed (the spread of a backbone's
runs) and image sampling (a bootstrap interval over validation images for each run,
:mod:`fashionseg.evaluation.bootstrap`). With one seed only the second exists, and the text says so.
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

from fashionseg.errors import FashionsegError
from fashionseg.evaluation.bootstrap import EvaluatedImages, paired_difference
from fashionseg.report.render import and_list
from fashionseg.report.training import read_learning_curve
from fashionseg.rundir import CONFIG_FILE, METRICS_FILE, RunDir, metric, seed_folder

# the metrics.json entries the comparison reads (their paths: fashionseg.rundir.METRICS)
SEED_METRICS = (
    "box_AP",
    "mask_AP",
    "mask_AP50",
    "mask_AP75",
    "mask_APs",
    "mask_APm",
    "mask_APl",
    "mask_AP_garments",
    "mask_AP_accessories",
    "mask_AP_parts",
    "mask_AP_iou_f1",
    "train_s_per_iter",
    "inference_ms_per_image",
)
SIZE_COLUMNS = {"mask_APs": "small", "mask_APm": "medium", "mask_APl": "large"}
GROUP_COLUMNS = {
    "mask_AP_garments": "garments",
    "mask_AP_accessories": "accessories",
    "mask_AP_parts": "garment parts",
}


def seed_run_dirs(
    results_dir: str | Path, archs: Iterable[str], seeds: Sequence[int]
) -> dict[tuple[str, int], Path]:
    """(backbone, seed) -> its finished run folder (one holding ``metrics.json``), in archs-then-seeds order.

    A seed's run is ``results_dir/<arch>`` when that run's ``config.yaml`` says it was trained with that
    seed, else ``results_dir/seed-<k>/<arch>``. Missing runs are left out; none at all raises naming what
    to run.
    """
    runs: dict[tuple[str, int], Path] = {}
    for arch in archs:
        main = RunDir.of(results_dir, arch)
        main_seed = main.config().seed if main.has(CONFIG_FILE) else None
        for seed in seeds:
            run = main if seed == main_seed else RunDir.of(seed_folder(results_dir, seed), arch)
            if run.has(METRICS_FILE):
                runs[(arch, int(seed))] = run.path
    if not runs:
        raise FashionsegError(
            f"no finished run of seeds {', '.join(map(str, seeds))} under {results_dir}; train them with "
            f"`fashionseg study --preset {Path(results_dir).name} --seeds {','.join(map(str, seeds))}`"
        )
    return runs


def seed_metrics(runs: Mapping[tuple[str, int], Path]) -> pd.DataFrame:
    """One row per run (index: backbone, seed), the :data:`SEED_METRICS` columns and ``train_seconds``
    (the training time of the whole run, evaluations excluded, from its learning curve or log)."""
    rows = {}
    for key, run in runs.items():
        metrics = RunDir(run).metrics()
        row = {name: metric(metrics, name) for name in SEED_METRICS}
        curve = read_learning_curve(run)
        row["train_seconds"] = float(curve["train_seconds"].iloc[-1]) if len(curve) else float("nan")
        rows[key] = row
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index = pd.MultiIndex.from_tuples(table.index, names=["backbone", "seed"])
    return table


def seeds_per_backbone(table: pd.DataFrame) -> pd.Series:
    """How many seeds each backbone has runs of."""
    return table.groupby(level="backbone", sort=False).size()


def spread(table: pd.DataFrame, column: str) -> pd.DataFrame:
    """Per backbone: the mean and median of ``column`` over seeds, its standard deviation (ddof 1; NaN for
    one seed), min, max and range (max - min), and the number of seeds."""
    grouped = table[column].groupby(level="backbone", sort=False)
    out = pd.DataFrame(
        {
            "mean": grouped.mean(),
            "median": grouped.median(),
            "sd": grouped.std(ddof=1),
            "min": grouped.min(),
            "max": grouped.max(),
            "seeds": grouped.size(),
        }
    )
    out["range"] = out["max"] - out["min"]
    return out


def mean_sd_text(row: pd.Series, decimals: int = 1) -> str:
    """``4.8 ± 0.7`` (``4.8`` for one seed, ``n/a`` where no run has a value): how the book shows a
    backbone's value over seeds."""
    if np.isnan(row["mean"]):
        return "n/a"
    if row["seeds"] < 2 or np.isnan(row["sd"]):
        return f"{row['mean']:.{decimals}f}"
    return f"{row['mean']:.{decimals}f} ± {row['sd']:.{decimals}f}"


def summary_table(table: pd.DataFrame, columns: Mapping[str, str], decimals: int = 1) -> pd.DataFrame:
    """Backbones as rows, ``columns`` (metric -> header) as columns, each cell mean ± sd over seeds."""
    out = pd.DataFrame(
        {
            header: spread(table, metric).apply(mean_sd_text, axis=1, decimals=decimals)
            for metric, header in columns.items()
            if metric in table
        }
    )
    out.index.name = "backbone"
    return out


def pairwise_differences(table: pd.DataFrame, column: str = "mask_AP", decimals: int = 1) -> pd.DataFrame:
    """For each pair of backbones: the difference of their mean ``column`` and whether it exceeds the seed
    spread.

    The spread of a pair is the larger of the two backbones' seed ranges (max - min): a difference of means
    larger than it means every seed of one backbone beat every seed of the other by less than the gap would
    suggest is luck. With fewer than two seeds of either backbone no spread was measured and the verdict
    says so. Index: ``A - B`` (A the higher mean); columns ``difference``, ``seed range``, ``verdict``.
    """
    stats = spread(table, column)
    rows = {}
    names = list(stats.index)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            hi, lo = (a, b) if stats.loc[a, "mean"] >= stats.loc[b, "mean"] else (b, a)
            diff = float(stats.loc[hi, "mean"] - stats.loc[lo, "mean"])
            seeds = int(min(stats.loc[hi, "seeds"], stats.loc[lo, "seeds"]))
            noise = float(max(stats.loc[hi, "range"], stats.loc[lo, "range"])) if seeds > 1 else float("nan")
            if seeds < 2:
                verdict = "no seed spread measured (one seed)"
            elif round(diff, decimals) == 0:
                verdict = "tied"
            elif diff > noise:
                verdict = "exceeds the seed spread"
            else:
                verdict = "within the seed spread"
            rows[f"{hi} - {lo}"] = {"difference": diff, "seed range": noise, "verdict": verdict}
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "pair"
    return out


def pairwise_text(pairs: pd.DataFrame, metric: str = "mask AP", decimals: int = 1) -> str:
    """One sentence per pair: ``R50-FPN - R50-C4: 3.0 mask AP, exceeds the seed spread (range 0.8).``"""
    if pairs.empty:
        return "No pair of backbones to compare: the runs are of one backbone."
    lines = []
    for pair, row in pairs.iterrows():
        noise = (
            "" if np.isnan(row["seed range"]) else f" (largest seed range {row['seed range']:.{decimals}f})"
        )
        lines.append(f"- {pair}: {row['difference']:.{decimals}f} {metric}, {row['verdict']}{noise}.")
    return "\n".join(lines)


def seed_curves(runs: Mapping[tuple[str, int], Path], table: pd.DataFrame) -> pd.DataFrame:
    """Every run's learning curve in one long table: backbone, seed, iteration, train_seconds (as logged),
    seconds, and the AP columns. A point at iteration 0 (AP 0) starts each curve.

    ``seconds`` is the time axis of the equal-time comparison: iterations times the backbone's seconds per
    iteration, the median over its seeds of each run's median (``table``, :func:`seed_metrics` of the same
    runs: ``train_s_per_iter``), so that other work on the
    machine during part of a run, or during one run, does not move the curves; ``train_seconds`` is the
    logged wall-clock, which includes such slow-downs.
    """
    frames = []
    for (arch, seed), run in runs.items():
        curve = read_learning_curve(run)
        if curve.empty:
            continue
        start = pd.DataFrame([{"iteration": 0, "train_seconds": 0.0, "bbox_AP": 0.0, "segm_AP": 0.0}])
        curve = pd.concat([start, curve[curve["iteration"] > 0]], ignore_index=True)
        per_iter = table.loc[(arch, seed), "train_s_per_iter"]
        frames.append(curve.assign(backbone=arch, seed=seed, run_s_per_iter=per_iter))
    columns = ["backbone", "seed", "iteration", "train_seconds", "seconds", "bbox_AP", "segm_AP"]
    if not frames:
        return pd.DataFrame(columns=columns)
    curves = pd.concat(frames, ignore_index=True)
    per_run = curves.groupby(["backbone", "seed"], sort=False)["run_s_per_iter"].first()
    per_backbone = per_run.groupby(level="backbone", sort=False).median()
    curves["seconds"] = curves["iteration"] * curves["backbone"].map(per_backbone)
    return curves.drop(columns="run_s_per_iter")


def time_budget(curves: pd.DataFrame) -> float:
    """The equal-time budget: the mean training seconds of the backbone that finishes first (what every
    backbone has reached by the time the fastest one is done)."""
    ends = curves.groupby(["backbone", "seed"])["seconds"].max()
    return float(ends.groupby(level="backbone").mean().min())


def at_time(curves: pd.DataFrame, seconds: float, column: str = "segm_AP") -> pd.DataFrame:
    """Each run's ``column`` after ``seconds`` of training, interpolated linearly between its evaluations
    (a run that finished sooner keeps its final value). Index (backbone, seed), one column ``column``."""
    rows = {}
    for (arch, seed), curve in curves.groupby(["backbone", "seed"], sort=False):
        curve = curve.sort_values("seconds")
        rows[(arch, seed)] = float(np.interp(seconds, curve["seconds"], curve[column]))
    out = pd.Series(rows, name=column).to_frame()
    out.index = pd.MultiIndex.from_tuples(out.index, names=["backbone", "seed"])
    return out


def plot_seed_curves(curves: pd.DataFrame, column: str = "segm_AP", label: str = "mask AP") -> Figure:
    """Validation ``column`` of the three backbones against iterations (left) and training minutes
    (right): the mean over seeds as a line, the seeds' min-max as a band. On the time axis each point sits
    at its iteration's mean ``seconds`` over seeds (:func:`seed_curves`)."""
    fig = Figure(figsize=(10, 3.6), layout="constrained")
    by_iteration, by_time = fig.subplots(1, 2, sharey=True)
    palette = sns.color_palette("deep")
    for (arch, curve), color in zip(curves.groupby("backbone", sort=False), palette, strict=False):
        points = curve.groupby("iteration").agg(
            mean=(column, "mean"),
            low=(column, "min"),
            high=(column, "max"),
            minutes=("seconds", "mean"),
        )
        points["minutes"] /= 60
        seeds = curve["seed"].nunique()
        for ax, x in ((by_iteration, points.index), (by_time, points["minutes"])):
            ax.plot(x, points["mean"], "-o", ms=3, color=color, label=f"{arch} ({seeds} seeds)")
            if seeds > 1:
                ax.fill_between(x, points["low"], points["high"], color=color, alpha=0.2, lw=0)
    by_iteration.set(xlabel="iteration", ylabel=f"validation {label}", title="equal iterations")
    by_time.set(xlabel="training time (minutes, this machine)", title="equal wall-clock time")
    by_iteration.legend(fontsize="small")
    return fig


def intervals_table(intervals: Mapping[tuple[str, int], Any], decimals: int = 1) -> pd.DataFrame:
    """Bootstrap intervals (:class:`fashionseg.evaluation.bootstrap.BootstrapInterval`) per run as text:
    index (backbone, seed), columns ``mask AP`` and ``95% interval over images``."""
    rows = {}
    for key, iv in intervals.items():
        interval = "n/a" if iv.low is None else f"{iv.low:.{decimals}f} to {iv.high:.{decimals}f}"
        estimate = "n/a" if iv.estimate is None else f"{iv.estimate:.{decimals}f}"
        rows[key] = {"mask AP": estimate, f"{iv.level:.0%} interval over images": interval}
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index = pd.MultiIndex.from_tuples(out.index, names=["backbone", "seed"])
    return out


def attribute_group_table(scores: Mapping[tuple[str, int], pd.DataFrame]) -> pd.DataFrame:
    """Attribute F1 by group per run: index (backbone, seed), one column per attribute group, from
    :func:`fashionseg.evaluation.attribute_groups.attribute_group_scores` of each run."""
    rows = {key: frame["f1"].to_dict() for key, frame in scores.items()}
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index = pd.MultiIndex.from_tuples(out.index, names=["backbone", "seed"])
    return out


def paired_image_intervals(
    evaluated: Mapping[tuple[str, int], EvaluatedImages],
    pairs: Iterable[str],
    resamples: int = 1000,
    level: float = 0.95,
) -> pd.DataFrame:
    """For each pair ``A - B`` (:func:`pairwise_differences`' index) and each seed both have: the mask AP
    difference of the two runs with its paired bootstrap interval over the validation images
    (:func:`fashionseg.evaluation.bootstrap.paired_difference`), and whether the interval excludes 0.
    Index (pair, seed); ``evaluated`` holds each run's
    :func:`~fashionseg.evaluation.bootstrap.evaluate_images`."""
    rows = {}
    for pair in pairs:
        a, b = pair.split(" - ")
        for arch, seed in evaluated:
            if arch != a or (b, seed) not in evaluated:
                continue
            iv = paired_difference(evaluated[(a, seed)], evaluated[(b, seed)], resamples, level, seed=seed)
            excludes = iv.low is not None and (iv.low > 0 or iv.high < 0)
            rows[(pair, seed)] = {
                "difference": iv.estimate,
                f"{level:.0%} interval over images": "n/a"
                if iv.low is None
                else f"{iv.low:.1f} to {iv.high:.1f}",
                "over images": "excludes 0" if excludes else "includes 0",
            }
    out = pd.DataFrame.from_dict(rows, orient="index")
    if len(out):
        out.index = pd.MultiIndex.from_tuples(out.index, names=["pair", "seed"])
    return out


def paired_text(intervals: pd.DataFrame) -> str:
    """Per pair, in how many seeds the paired interval over images excludes 0 (one sentence)."""
    if intervals.empty:
        return "No pair of backbones has runs of a common seed."
    parts = []
    for pair, rows in intervals.groupby(level="pair", sort=False):
        n = int((rows["over images"] == "excludes 0").sum())
        parts.append(f"{pair}: {n} of {len(rows)} seed{'s' if len(rows) != 1 else ''}")
    return (
        "Seeds in which a pair's mask AP difference is larger than the sampling of the validation images "
        "(its paired interval excludes 0): " + "; ".join(parts) + "."
    )


def _ranked(stats: pd.DataFrame) -> list[str]:
    return list(stats.sort_values("mean", ascending=False).index)


def order_claim_verdict(
    table: pd.DataFrame, claimed: Sequence[tuple[str, str]], column: str = "mask_AP"
) -> str:
    """Whether ``column`` puts the first backbone of each ``(higher, lower)`` pair above the second.

    A pair supports the claim when its difference of means has the claimed sign and exceeds the seed
    spread, refutes it when it has the other sign and exceeds it, and leaves it open otherwise (within the
    spread, tied, or one seed). The claim is ``refuted`` if any pair refutes it, ``supported`` if every pair
    supports it, else ``not settled``.
    """
    pairs = pairwise_differences(table, column)
    outcomes = []
    for higher, lower in claimed:
        key = f"{higher} - {lower}" if f"{higher} - {lower}" in pairs.index else f"{lower} - {higher}"
        if key not in pairs.index:
            outcomes.append("open")
            continue
        row = pairs.loc[key]
        if row["verdict"] != "exceeds the seed spread":
            outcomes.append("open")
        else:
            outcomes.append("supports" if key.startswith(f"{higher} - ") else "refutes")
    if "refutes" in outcomes:
        return "refuted"
    return "supported" if outcomes and all(o == "supports" for o in outcomes) else "not settled"


def seed_claims() -> dict[str, Any]:
    """The seed study's claims about its Table I (``data/seed_claims.json``): ``subject``, the backbone they
    are about, and ``claims``, each with its ``id``, ``text`` and ``test``, the comparison that decides it:

    - ``fastest``: ``backbone`` has the lowest median of every one of ``metrics`` (each with its ``label``
      and ``format`` for the evidence);
    - ``order``: ``metric`` puts each ``higher`` backbone above each ``lower`` one (``others``: the other
      backbones run), by :func:`order_claim_verdict`; ``evidence`` shows the ``ranking`` or the ``best``;
    - ``not run``: what would decide it was not run (``why``); ``metric`` at equal training time is shown.
    """
    return json.loads(resources.files("fashionseg.data").joinpath("seed_claims.json").read_text())


def claims_table(table: pd.DataFrame, equal_time: pd.DataFrame, budget_seconds: float) -> pd.DataFrame:
    """The seed's Table I discussion, claim by claim (:func:`seed_claims`), beside what these runs show and a
    verdict.

    Composed from ``table`` (:func:`seed_metrics`) and the equal-time values (:func:`at_time`), so it stays
    true when the data change. Claims are checked when the subject backbone and another one ran, each one
    when the backbones it names ran. Accuracy verdicts follow :func:`order_claim_verdict` (``supported``,
    ``refuted``, ``not settled``); speed is measured once per run, so its verdict is the order of the medians.
    """
    claims = seed_claims()
    backbones = list(seeds_per_backbone(table).index)
    if claims["subject"] not in backbones or len(backbones) < 2:
        return pd.DataFrame(columns=["the seed's claim", "what these runs show", "verdict"])
    rows = []
    for claim in claims["claims"]:
        named = {claim.get(k) for k in ("backbone", "higher", "lower")} - {None, "others"}
        if not named <= set(backbones):
            continue
        shown, verdict = _CLAIM_TESTS[claim["test"]](claim, table, equal_time, budget_seconds)
        rows.append({"the seed's claim": claim["text"], "what these runs show": shown, "verdict": verdict})
    out = pd.DataFrame(rows)
    out.index = pd.RangeIndex(1, len(out) + 1, name="claim")
    return out


def _fastest_claim(claim: Mapping[str, Any], table: pd.DataFrame, *_: Any) -> tuple[str, str]:
    stats = [(m, spread(table, m["metric"])) for m in claim["metrics"]]
    shown = (
        "; ".join(
            f"{m['label']} " + ", ".join(f"{a} {s.loc[a, 'median']:{m['format']}}" for a in s.index)
            for m, s in stats
        )
        + " (medians over seeds)"
    )
    fastest_at = sum(s["median"].idxmin() == claim["backbone"] for _, s in stats)
    if fastest_at == len(stats):
        return shown, "supported"
    if fastest_at:
        return shown, f"partly (fastest at {_count_word(fastest_at)} of the {_count_word(len(stats))})"
    return shown, "refuted"


def _count_word(n: int) -> str:
    return {1: "one", 2: "two", 3: "three", 4: "four"}.get(n, str(n))


def _order_claim(claim: Mapping[str, Any], table: pd.DataFrame, *_: Any) -> tuple[str, str]:
    acc = spread(table, claim["metric"])
    named = {claim["higher"], claim["lower"]} - {"others"}
    others = [a for a in acc.index if a not in named]
    higher = others if claim["higher"] == "others" else [claim["higher"]]
    lower = others if claim["lower"] == "others" else [claim["lower"]]
    verdict = order_claim_verdict(table, [(h, lo) for h in higher for lo in lower], claim["metric"])
    ranked = _ranked(acc)
    if claim["evidence"] == "best":
        best = ranked[0]
        return f"the highest mean {claim['label']} is {best}'s ({acc.loc[best, 'mean']:.1f})", verdict
    shown = f"{claim['label']} at equal iterations, mean over seeds: " + ", ".join(
        f"{a} {acc.loc[a, 'mean']:.1f}" for a in ranked
    )
    return shown, verdict


def _not_run_claim(
    claim: Mapping[str, Any], table: pd.DataFrame, equal_time: pd.DataFrame, budget_seconds: float
) -> tuple[str, str]:
    timed = spread(equal_time, claim["metric"])
    ranked = _ranked(timed)
    shown = (
        f"at equal training time ({budget_seconds / 60:.1f} min, when the fastest backbone's run ends): "
        + ", ".join(f"{a} {timed.loc[a, 'mean']:.1f}" for a in ranked)
        + f" {claim['label']}"
    )
    return shown, f"not tested ({claim['why']}); at equal time {ranked[0]} leads"


# how each kind of claim is decided and shown: the ``test`` field of seed_claims.json
_CLAIM_TESTS = {"fastest": _fastest_claim, "order": _order_claim, "not run": _not_run_claim}


def claims_text(claims: pd.DataFrame) -> str:
    """The verdicts of :func:`claims_table` in one line, or why no claim was checked."""
    if claims.empty:
        return (
            f"No claim of the seed study is checked here: that needs {seed_claims()['subject']}'s runs and "
            "another backbone's."
        )
    return "; ".join(f"claim {i}: {v}" for i, v in claims["verdict"].items()) + "."


@dataclass(frozen=True)
class SeedAnswer:
    """The study's answer as data (:func:`seed_answer`), which :func:`answer_text` renders."""

    accuracy: pd.DataFrame  # :func:`spread` of mask AP at equal iterations, one row per backbone
    ranking: list[str]  # the backbones by mean mask AP at equal iterations, best first
    seeds: int  # the fewest seeds a backbone has runs of
    clear_leads: list[str]  # the backbones the best leads by more than the seed spread
    open_leads: list[str]  # the others it leads (within the spread, tied, or one seed)
    equal_time: dict[str, float]  # mean mask AP at equal training time, best first
    fastest: str  # the backbone with the lowest median training seconds per iteration
    fastest_s_per_iter: float  # that median

    @property
    def best(self) -> str:
        """The most accurate backbone at equal iterations."""
        return self.ranking[0]


def seed_answer(table: pd.DataFrame, pairs: pd.DataFrame, equal_time: pd.DataFrame) -> SeedAnswer:
    """Which backbone to pick and how sure, from :func:`seed_metrics`' ``table``, its
    :func:`pairwise_differences` ``pairs`` and the equal-time values (:func:`at_time`)."""
    acc = spread(table, "mask_AP")
    timed = spread(equal_time, "segm_AP")
    train = spread(table, "train_s_per_iter")
    ranked = _ranked(acc)
    beaten = [p for p in pairs.index if p.startswith(f"{ranked[0]} - ")]
    clear = [p.split(" - ")[1] for p in beaten if pairs.loc[p, "verdict"] == "exceeds the seed spread"]
    fastest = train["median"].idxmin()
    return SeedAnswer(
        accuracy=acc,
        ranking=ranked,
        seeds=int(acc["seeds"].min()),
        clear_leads=clear,
        open_leads=[p.split(" - ")[1] for p in beaten if p.split(" - ")[1] not in clear],
        equal_time={a: timed.loc[a, "mean"] for a in _ranked(timed)},
        fastest=fastest,
        fastest_s_per_iter=train.loc[fastest, "median"],
    )


def answer_text(
    table: pd.DataFrame, pairs: pd.DataFrame, equal_time: pd.DataFrame, budget_seconds: float
) -> str:
    """The study's answer in a paragraph (:func:`seed_answer`): which backbone to pick at this short
    schedule, and how sure."""
    answer = seed_answer(table, pairs, equal_time)
    seeds, clear, unclear = answer.seeds, answer.clear_leads, answer.open_leads
    text = (
        f"At equal iterations the most accurate backbone is {answer.best}: mask AP "
        + "; ".join(f"{a} {mean_sd_text(answer.accuracy.loc[a])}" for a in answer.ranking)
        + (f" (mean ± standard deviation over {seeds} seeds). " if seeds > 1 else " (one seed). ")
    )
    if seeds < 2:
        text += "With one seed no seed-to-seed spread was measured, so no difference is shown to exceed it. "
    else:
        if clear:
            text += f"Its lead over {and_list(clear)} exceeds the seed-to-seed spread"
            text += f"; over {and_list(unclear)} it does not. " if unclear else ". "
        else:
            text += "None of its leads exceeds the seed-to-seed spread. "
    text += (
        f"At equal training time ({budget_seconds / 60:.1f} minutes on this machine, when the fastest run "
        f"ends) the order is " + " > ".join(f"{a} ({ap:.1f})" for a, ap in answer.equal_time.items()) + ". "
    )
    text += (
        f"{answer.fastest} trains fastest ({answer.fastest_s_per_iter:.2f} s per iteration, median over "
        "seeds)."
    )
    return text
