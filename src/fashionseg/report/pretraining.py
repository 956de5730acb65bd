"""The method chapter's pretraining section: the shipped trunk, and R50-FPN from it against from scratch.

The trunk's facts come from its manifest (``weights/r50-gn-trunk.json``, written by ``fashionseg pretrain``);
the comparison reads two learning curves: the demo's R50-FPN run (fine-tuned from the trunk) and the
``scratch`` preset's R50-FPN run (``results/scratch/R50-FPN``), at equal iterations and at equal time, as
He et al.'s "Rethinking ImageNet Pre-training" asks the question.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from fashionseg.config import project_root
from fashionseg.models.trunk import TRUNK_FILE, read_manifest


def read_trunk_manifest(trunk_path: str | Path | None = None) -> dict[str, Any]:
    """The manifest of the shipped trunk (or of ``trunk_path``)."""
    return read_manifest(trunk_path or project_root() / TRUNK_FILE)


def pretext_ap_text(val: dict[str, Any]) -> str:
    """A manifest's ``val`` in words: ``50.0 / 40.1``, or a joint pretext's per design
    (``R50-FPN 50.0 / 40.1, R50-C4 30.2 / 25.0``)."""
    if "bbox_AP" in val:
        return f"{val['bbox_AP']:.1f} / {val['segm_AP']:.1f}"
    return ", ".join(f"{arch} {ap['bbox_AP']:.1f} / {ap['segm_AP']:.1f}" for arch, ap in val.items())


def trunk_summary(manifest: dict[str, Any]) -> pd.DataFrame:
    """One row per fact of the pretraining: pretext, data, schedule, cost, machine, result, file."""
    data, solver = manifest["data"], manifest["recipe"]["solver"]
    overlap = data["disjoint_from_study"]
    rows = {
        "pretext": manifest["pretext"],
        "data": (
            f"{data['synth_train']} training + {data['synth_val']} validation synthetic images of "
            f"{data['synth_size']} px, seed {data['synth_seed']}; none of them among the study's "
            f"{overlap['study_images']} (content hash)"
        ),
        "schedule": (
            f"{manifest['iterations']} iterations, batch {solver['ims_per_batch']}, lr {solver['base_lr']} "
            f"(x0.1 at {', '.join(map(str, solver['steps']))})"
        ),
        "training time": f"{manifest['train_seconds'] / 60:.1f} min on {manifest['cpu_threads']} threads",
        "CPU": manifest["cpu"]["model"],
        "pretext's val box / mask AP": pretext_ap_text(manifest["val"]),
        "kept": manifest["stages"],
        "file": (
            f"{manifest['file']}, {manifest['bytes'] / 1e6:.1f} MB ({manifest['dtype']}), "
            f"SHA-256 {manifest['sha256'][:16]}..."
        ),
    }
    return pd.DataFrame({"": list(rows.values())}, index=pd.Index(list(rows), name="pretraining"))


def plot_trunk_curve(manifest: dict[str, Any]) -> Figure:
    """The pretext's training loss and validation AP against iterations."""
    fig = Figure(figsize=(10, 3.4), layout="constrained")
    loss_ax, ap_ax = fig.subplots(1, 2)
    loss = pd.DataFrame(manifest["loss_curve"])
    loss_ax.plot(loss["iteration"], loss["loss"], color="0.3")
    loss_ax.set(xlabel="iteration", ylabel="training loss (all terms)", title="pretext: training loss")
    curve = pd.DataFrame(manifest["learning_curve"])
    if not curve.empty:
        ap_ax.plot(curve["iteration"], curve["segm_AP"], "-o", ms=3, label="mask AP")
        ap_ax.plot(curve["iteration"], curve["bbox_AP"], "--o", ms=3, label="box AP")
        ap_ax.legend(fontsize="small")
    ap_ax.set(xlabel="iteration", ylabel="AP", title="pretext: AP on its own validation images")
    return fig


def _at_or_before(curve: pd.DataFrame, column: str, limit: float) -> pd.Series | None:
    """The last point of ``curve`` whose ``column`` is at most ``limit`` (None if there is none)."""
    before = curve[curve[column] <= limit]
    return None if before.empty else before.iloc[-1]


def _point(point: pd.Series) -> str:
    return f"iteration {int(point['iteration'])}, {point['train_seconds'] / 60:.1f} min"


def _last_common_iteration(scratch: pd.DataFrame, trunk: pd.DataFrame) -> tuple[pd.Series, pd.Series] | None:
    """The points of ``scratch`` and ``trunk`` at the largest iteration both curves were evaluated at (None
    if they share none): an equal-iterations comparison never pairs two different iterations."""
    common = set(scratch["iteration"].astype(int)) & set(trunk["iteration"].astype(int))
    if not common:
        return None
    at = max(common)
    return scratch[scratch["iteration"] == at].iloc[-1], trunk[trunk["iteration"] == at].iloc[-1]


def scratch_against_trunk(scratch: pd.DataFrame, trunk: pd.DataFrame) -> pd.DataFrame:
    """R50-FPN box and mask AP from the trunk and from scratch, at the largest iteration both curves reached
    (equal iterations; a shorter run is not set against the other's last point) and at the largest training
    time both reached (equal time, the pretraining not counted: it is paid once for all designs and runs).
    Each row says which points of the two curves it compares."""
    if scratch.empty or trunk.empty:
        return pd.DataFrame()
    last = trunk.iloc[-1]
    pairs: list[tuple[str, pd.Series, pd.Series]] = []
    if (common := _last_common_iteration(scratch, trunk)) is not None:
        pairs.append(("equal iterations", common[1], common[0]))
    # the training seconds both runs reached (2% for timing noise): a run that stopped sooner is not set
    # against the other's later point
    budget = min(float(last["train_seconds"]), float(scratch["train_seconds"].iloc[-1])) * 1.02
    ours = _at_or_before(trunk, "train_seconds", budget)
    other = _at_or_before(scratch, "train_seconds", budget)
    if ours is not None and other is not None:
        pairs.append(("equal training time", ours, other))
    rows = [
        {
            "comparison": label,
            "from the trunk": f"{ours['bbox_AP']:.1f} / {ours['segm_AP']:.1f}",
            "from scratch": f"{other['bbox_AP']:.1f} / {other['segm_AP']:.1f}",
            "trunk point": _point(ours),
            "scratch point": _point(other),
            "mask AP gain": float(ours["segm_AP"] - other["segm_AP"]),
        }
        for label, ours, other in pairs
    ]
    return pd.DataFrame(rows).set_index("comparison") if rows else pd.DataFrame()


def pretraining_reading(comparison: pd.DataFrame, manifest: dict[str, Any]) -> str:
    """What the comparison shows and what it does not, in Markdown, from the table and the manifest."""
    cost = manifest["train_seconds"] / 60
    if comparison.empty:
        return (
            "No from-scratch R50-FPN run to compare with: make it with `fashionseg train --preset scratch "
            "--arch R50-FPN -p output_dir=results/scratch`."
        )
    gains = comparison["mask AP gain"]
    direction = "raises" if (gains > 0).all() else "does not always raise"
    return (
        f"Fine-tuning the trunk {direction} R50-FPN's mask AP over training from scratch: by "
        + " and ".join(f"{g:+.1f} points at {label}" for label, g in gains.items())
        + f" (box / mask AP in the table). The trunk cost {cost:.0f} minutes of training once "
        f"({manifest['iterations']} R50-FPN iterations), shared by every design, seed and rerun. Counted in "
        "full, it is the same compute as training R50-FPN from scratch for that long, which on its own "
        f"split reached box / mask AP {pretext_ap_text(manifest['val'])}. "
        "What this does not show: the trunk's images come from the study's own generator, so it is closer "
        "to the target than ImageNet is to Fashionpedia; the gain says what a pretrained trunk buys at this "
        "scale, not what ImageNet's buys on real photographs."
    )
