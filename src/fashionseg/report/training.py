"""The training notebook (02_train_backbone): one run's configuration, losses, metrics and learning curve.

Every number comes from the run folder (:class:`fashionseg.rundir.RunDir`): ``config.yaml``, ``env.json``,
``metrics.jsonl``, ``learning_curve.jsonl`` and ``metrics.json`` (paths: :data:`fashionseg.rundir.METRICS`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from fashionseg.config import RunConfig, flatten, to_dict
from fashionseg.models.trunk import is_trunk
from fashionseg.report.render import number
from fashionseg.rundir import RunDir

# Table I's columns, in the seed's order (names of fashionseg.rundir.METRICS)
TABLE1_METRICS = ("box_AP", "mask_AP", "box_AP50", "mask_AP50", "box_AP75", "mask_AP75")
# a run's headline numbers (names of fashionseg.rundir.METRICS), glued by notebook 02 as <arch>_<name>
KEY_NUMBERS = (
    *TABLE1_METRICS,
    "box_AP_iou_f1",
    "box_AP_f1",
    "mask_AP_iou_f1",
    "mask_AP_f1",
    "train_s_per_iter",
    "inference_ms_per_image",
)
IOU_TYPES = {"bbox": "box", "segm": "mask"}
METRIC_FAMILIES = {"coco": "AP (IoU)", "iou_f1": "AP (IoU+F1)", "f1": "AP (F1)"}


def metrics_table(metrics: dict[str, Any]) -> pd.DataFrame:
    """Box and mask rows; COCO AP, AP50, AP75, APs, APm, APl and the Fashionpedia AP^{IoU+F1} and AP^{F1}."""
    rows = {}
    for iou_type, name in IOU_TYPES.items():
        coco = metrics[iou_type]["coco"]
        rows[name] = {k: number(coco.get(k)) for k in ("AP", "AP50", "AP75", "APs", "APm", "APl")}
        rows[name]["AP (IoU+F1)"] = number(metrics[iou_type]["iou_f1"]["AP"])
        rows[name]["AP (F1)"] = number(metrics[iou_type]["f1"]["AP"])
    return pd.DataFrame(rows).T.round(2)


METRIC_FAMILY_NOTES = {
    "AP (IoU)": "COCO's AP. A detection is a true positive when its category is right and its mask (or "
    "box) overlaps a ground truth by IoU >= t, averaged over t = 0.50, 0.55, ..., 0.95. Attributes play no "
    "part.",
    "AP (IoU+F1)": "Fashionpedia's AP^IoU+F1. On the categories that carry attributes, a detection must "
    "also describe that ground truth with attribute F1 >= t_F1, averaged over both thresholds; the other "
    "categories are scored by IoU alone. Its mean weighs each category with attributes once per F1 "
    "threshold, so it is not simply a stricter AP(IoU) and can even exceed it.",
    "AP (F1)": "The same with the IoU condition switched off: on the categories with attributes, a "
    "detection of the right category matches a ground truth of its image by attribute F1 alone, wherever "
    "the two lie. It ignores localisation, so a backbone that localises nothing can score well on it: it "
    "measures the attribute head, not the detector.",
}


def metric_families_note() -> str:
    """The three metric families of the tables (:data:`METRIC_FAMILY_NOTES`) as a Markdown list."""
    return "\n".join(f"- **{name}**: {note}" for name, note in METRIC_FAMILY_NOTES.items())


def describe_run(run_dir: str | Path) -> str:
    """One line saying how a run was made: data, schedule, image size, initial weights, device."""
    run = RunDir(run_dir)
    cfg = run.config()
    device = run.env().get("device", cfg.device)
    data = "synthetic data" if cfg.data.synthetic else "Fashionpedia-format data"
    weights = (
        "from scratch"
        if cfg.model.weights == "none"
        else "fine-tuned from the pretrained trunk"
        if is_trunk(cfg.model.weights)
        else f"from {cfg.model.weights} weights"
    )
    return (
        f"{data} ({cfg.data.root}), {cfg.solver.max_iter} iterations at batch {cfg.solver.ims_per_batch}, "
        f"shortest edge {cfg.data.min_size} px, {weights}, on {device}"
    )


def config_table(cfg: RunConfig) -> pd.DataFrame:
    """The full run configuration as (key, value) rows with dotted keys, for display."""
    rows = [(key, str(value)) for key, value in flatten(to_dict(cfg))]
    return pd.DataFrame(rows, columns=["key", "value"]).set_index("key")


def read_metrics_log(run_dir: str | Path) -> pd.DataFrame:
    """A run's ``metrics.jsonl`` as a table: one row per logged iteration (iteration, loss, loss_*, lr,
    time, train_seconds)."""
    return pd.DataFrame(RunDir(run_dir).log())


def plot_losses(log: pd.DataFrame, title: str) -> Figure:
    """The total loss and each loss term against the iteration (log scale), and the learning rate."""
    fig = Figure(figsize=(10, 3.6), layout="constrained")
    ax_loss, ax_lr = fig.subplots(1, 2, width_ratios=[3, 1])
    for column in ["loss", *sorted(c for c in log.columns if c.startswith("loss_"))]:
        ax_loss.plot(log["iteration"], log[column], label=column, linewidth=2.2 if column == "loss" else 1.2)
    ax_loss.set(xlabel="iteration", ylabel="loss", yscale="log", title=title)
    ax_loss.legend(fontsize="small", ncol=2)
    ax_lr.plot(log["iteration"], log["lr"], color="black")
    ax_lr.set(xlabel="iteration", ylabel="learning rate", title="schedule")
    return fig


FLAT_LOSS_DROP = 0.1  # a loss term that falls by less than this share over a run is called flat


def loss_change(log: pd.DataFrame, column: str, fraction: float = 0.1) -> tuple[float, float]:
    """The median of ``column`` over the first and over the last ``fraction`` of the logged iterations
    (at least one logged row each): where a noisy loss term starts and ends."""
    values = log[column].dropna().to_numpy(dtype=float)
    if not len(values):
        return float("nan"), float("nan")
    n = max(1, round(len(values) * fraction))
    return float(np.median(values[:n])), float(np.median(values[-n:]))


@dataclass(frozen=True)
class AttributeLossChange:
    """Where a run's attribute loss and total loss start and end (:func:`loss_change`), and the verdict."""

    first: float
    last: float
    total_first: float
    total_last: float

    @property
    def drop(self) -> float:
        """The share the attribute loss fell by (negative where it rose)."""
        return 1 - self.last / self.first if self.first > 0 else 0.0

    @property
    def total_drop(self) -> float:
        """The share the total loss fell by."""
        return 1 - self.total_last / self.total_first if self.total_first > 0 else 0.0

    @property
    def flat(self) -> bool:
        """Whether the attribute loss fell by less than :data:`FLAT_LOSS_DROP`: the head has not learned."""
        return self.drop < FLAT_LOSS_DROP


def attribute_loss_change(log: pd.DataFrame) -> AttributeLossChange | None:
    """The attribute loss of a training log against its total loss (None when it logged no attribute loss)."""
    if "loss_attribute" not in log or log["loss_attribute"].dropna().empty:
        return None
    return AttributeLossChange(*loss_change(log, "loss_attribute"), *loss_change(log, "loss"))


def attribute_loss_note(log: pd.DataFrame, weight: float | None = None) -> str:
    """One sentence on the attribute loss of a training log: :func:`attribute_loss_change`'s verdict, flat or
    falling, beside the total loss (``weight``: the config's ``model.attribute_loss_weight``, by which the
    logged term is already multiplied)."""
    change = attribute_loss_change(log)
    if change is None:
        return "This run logged no attribute loss."
    weighted = f" (logged after its weight {weight:g})" if weight is not None else ""
    span = (
        f"from {change.first:.3f} over the first tenth of the logged iterations to {change.last:.3f} over "
        f"the last{weighted}; the total loss went from {change.total_first:.2f} to {change.total_last:.2f} "
        f"({-change.total_drop:+.0%})"
    )
    if change.flat:
        return (
            f"**The attribute loss stays flat** ({-change.drop:+.0%}, {span}): the attribute head has not "
            "learned yet, so this run's attributes, and its AP^IoU+F1 and AP^F1, say nothing about what the "
            "head could learn."
        )
    return f"The attribute loss falls by {change.drop:.0%}, {span}."


def read_learning_curve(run_dir: str | Path) -> pd.DataFrame:
    """A run's ``learning_curve.jsonl``: validation AP by iteration and training seconds (empty table when
    the run evaluated only at the end and has not been evaluated yet)."""
    points = RunDir(run_dir).curve()
    if not points:
        return pd.DataFrame(columns=["iteration", "train_seconds", "bbox_AP", "segm_AP"])
    return pd.DataFrame(points)


def plot_learning_curves(curves: dict[str, pd.DataFrame], title: str) -> Figure:
    """Validation box (dashed) and mask (solid) AP of each run against iterations and against training
    wall-clock seconds: the equal-iterations and the equal-time comparison."""
    fig = Figure(figsize=(10, 3.6), layout="constrained")
    by_iteration, by_time = fig.subplots(1, 2, sharey=True)
    for (name, curve), color in zip(curves.items(), sns.color_palette("deep"), strict=False):
        if curve.empty:
            continue
        for key, style in (("segm_AP", "-"), ("bbox_AP", "--")):
            label = f"{name} {'mask' if key == 'segm_AP' else 'box'}"
            by_iteration.plot(
                curve["iteration"], curve[key], style, color=color, marker="o", ms=3, label=label
            )
            by_time.plot(curve["train_seconds"] / 60, curve[key], style, color=color, marker="o", ms=3)
    by_iteration.set(xlabel="iteration", ylabel="validation AP", title=title)
    by_time.set(xlabel="training time (minutes, this machine)", title="against wall-clock time")
    by_iteration.legend(fontsize="small", ncol=2)
    return fig


def learning_curve_reading(curves: dict[str, pd.DataFrame], decimals: int = 1) -> str:
    """Where each run's validation mask AP stands at its last evaluation against the one before: still
    rising, flat (equal at ``decimals``) or falling; one sentence, from :func:`read_learning_curve`."""
    states: dict[str, list[str]] = {"still rising": [], "flat": [], "falling": []}
    for name, curve in curves.items():
        if len(curve) < 2:
            continue
        before, last = curve.iloc[-2], curve.iloc[-1]
        a, b = round(float(before["segm_AP"]), decimals), round(float(last["segm_AP"]), decimals)
        state = "still rising" if b > a else "flat" if b == a else "falling"
        states[state].append(
            f"{name} {a:.{decimals}f} at iteration {int(before['iteration'])}, "
            f"{b:.{decimals}f} at {int(last['iteration'])}"
        )
    told = [f"{state} ({'; '.join(runs)})" for state, runs in states.items() if runs]
    if not told:
        return "No run has two evaluations to compare."
    return "At the end of training the validation mask AP is " + ", and ".join(told) + "."
