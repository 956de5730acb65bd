"""The method chapter's pretraining section: how the shipped trunk was made, which pretext it uses and why,
and R50-FPN from it against from scratch.

The trunk's facts come from its manifest (``weights/r50-gn-trunk.json``, written by ``fashionseg pretrain``)
and from the manifests of the trunks it continues (``initial_trunk``: the first stage,
``weights/r50-gn-fpn-trunk.json``). The pretext's choice reads the candidates measured in ``results/pretext``
(each a trunk fine-tuned into the three designs with the demo preset) beside the shipped trunk's own
fine-tunes (``results/demo``). The comparison with training from scratch reads two learning curves: the
demo's R50-FPN run and the ``scratch`` preset's (``results/scratch/R50-FPN``), at equal iterations and at
equal time, as He et al.'s "Rethinking ImageNet Pre-training" asks the question.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from fashionseg.config import ARCHITECTURES, project_root
from fashionseg.models.trunk import TRUNK_FILE, TrunkError, read_manifest, resolve_trunk_path
from fashionseg.rundir import RunDir, metric


def read_trunk_manifest(trunk_path: str | Path | None = None) -> dict[str, Any]:
    """The manifest of the shipped trunk (or of ``trunk_path``)."""
    return read_manifest(trunk_path or project_root() / TRUNK_FILE)


def read_trunk_stages(trunk_path: str | Path | None = None) -> list[dict[str, Any]]:
    """The manifests of the shipped trunk (or ``trunk_path``) and of every trunk it continues, first stage
    first. A stage's ``initial_trunk`` names the trunk it started from; that trunk's manifest must carry the
    SHA-256 recorded there, or the history would describe another file."""
    stages = [read_trunk_manifest(trunk_path)]
    while start := stages[0].get("initial_trunk"):
        path = resolve_trunk_path(start["weights"])
        if not path.is_absolute():
            path = project_root() / path
        earlier = read_manifest(path)
        if earlier.get("sha256") != start.get("sha256"):
            raise TrunkError(
                f"{path.with_suffix('.json')} has SHA-256 {str(earlier.get('sha256'))[:12]}..., but the "
                f"trunk made from it recorded {str(start.get('sha256'))[:12]}...: not this trunk's start; "
                "restore it with git or rerun `make pretrain`"
            )
        stages.insert(0, earlier)
    return stages


def pretext_ap_text(val: dict[str, Any]) -> str:
    """A manifest's ``val`` in words: ``50.0 / 40.1``, or a joint pretext's per design
    (``R50-FPN 50.0 / 40.1, R50-C4 30.2 / 25.0``)."""
    if "bbox_AP" in val:
        return f"{val['bbox_AP']:.1f} / {val['segm_AP']:.1f}"
    return ", ".join(f"{arch} {ap['bbox_AP']:.1f} / {ap['segm_AP']:.1f}" for arch, ap in val.items())


def _stage_facts(manifest: dict[str, Any]) -> dict[str, str]:
    data, solver = manifest["data"], manifest["recipe"]["solver"]
    overlap = data["disjoint_from_study"]
    return {
        "pretext": manifest["pretext"],
        "starts from": (
            f"the trunk {manifest['initial_trunk']['weights']}"
            if "initial_trunk" in manifest
            else "random weights"
        ),
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


def trunk_summary(stages: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per fact of the pretraining (pretext, start, data, schedule, cost, machine, result, file), one
    column per stage (``read_trunk_stages``), the shipped trunk's last."""
    columns = {f"stage {i}": _stage_facts(manifest) for i, manifest in enumerate(stages, start=1)}
    table = pd.DataFrame(columns)
    table.index.name = "pretraining"
    return table


def plot_trunk_curve(stages: list[dict[str, Any]]) -> Figure:
    """The pretraining's loss and validation AP against iterations, stage after stage (a later stage's
    iterations continue the earlier's). A joint stage's loss sums every design's, and its AP is each design's
    at the end (it keeps no curve)."""
    fig = Figure(figsize=(10, 3.4), layout="constrained")
    loss_ax, ap_ax = fig.subplots(1, 2)
    offset = 0
    for number, manifest in enumerate(stages, start=1):
        label = f"stage {number}" if len(stages) > 1 else None
        loss = pd.DataFrame(manifest["loss_curve"])
        if not loss.empty:
            loss_ax.plot(loss["iteration"] + offset, loss["loss"], label=label)
        curve = pd.DataFrame(manifest["learning_curve"])
        if not curve.empty:
            ap_ax.plot(curve["iteration"] + offset, curve["segm_AP"], "-o", ms=3, label="mask AP")
            ap_ax.plot(curve["iteration"] + offset, curve["bbox_AP"], "--o", ms=3, label="box AP")
        elif "bbox_AP" not in manifest["val"]:  # a joint stage: each design's mask AP at its end
            for arch, ap in manifest["val"].items():
                ap_ax.plot([offset + manifest["iterations"]], [ap["segm_AP"]], "s", label=f"{arch} mask AP")
        offset += manifest["iterations"]
    if len(stages) > 1:
        loss_ax.legend(fontsize="small")
    if ap_ax.get_lines():
        ap_ax.legend(fontsize="small")
    loss_ax.set(xlabel="iteration", ylabel="training loss (all terms)", title="pretraining: training loss")
    ap_ax.set(xlabel="iteration", ylabel="AP", title="pretraining: AP on its own validation images")
    return fig


@dataclasses.dataclass(frozen=True)
class PretextCandidate:
    """A pretext as the study judges it: the trunk it made, fine-tuned into each design with the demo
    preset. ``runs`` holds ``<arch>/metrics.json`` of those fine-tunes (a design may be missing)."""

    name: str
    pretext: str
    iterations: int
    pretrain_seconds: float
    trunk_sha256: str
    runs: Path


def read_pretext_candidates(folder: str | Path | None = None) -> list[PretextCandidate]:
    """The measured candidates under ``folder`` (default ``results/pretext``): each subfolder's
    ``candidate.json`` and its fine-tunes."""
    folder = Path(folder) if folder is not None else project_root() / "results" / "pretext"
    candidates = []
    for path in sorted(folder.glob("*/candidate.json")):
        facts = json.loads(path.read_text())
        keep = ("pretext", "iterations", "pretrain_seconds", "trunk_sha256")
        candidates.append(PretextCandidate(path.parent.name, **{k: facts[k] for k in keep}, runs=path.parent))
    return candidates


def shipped_candidate(stages: list[dict[str, Any]], results_dir: str | Path) -> PretextCandidate:
    """The shipped trunk (``read_trunk_stages``) as a candidate, with the study's fine-tunes in
    ``results_dir``."""
    shipped = stages[-1]
    history = ", then ".join(f"{m['arch']} for {m['iterations']} it" for m in stages)
    return PretextCandidate(
        "shipped",
        f"the shipped trunk: {history}",
        sum(int(m["iterations"]) for m in stages),
        sum(float(m["train_seconds"]) for m in stages),
        shipped["sha256"],
        Path(results_dir),
    )


def _fine_tuned_ap(run: Path) -> tuple[float, float] | None:
    """A fine-tune's box and mask AP from its ``metrics.json`` (None: not fine-tuned)."""
    run_dir = RunDir(run)
    if not run_dir.metrics_file.is_file():
        return None
    metrics = run_dir.metrics()
    return metric(metrics, "box_AP"), metric(metrics, "mask_AP")


def pretext_table(candidates: list[PretextCandidate], archs: tuple[str, ...] = ARCHITECTURES) -> pd.DataFrame:
    """Each candidate's pretraining cost and each design's fine-tuned box / mask AP, with the worst design's
    mask AP, the criterion of the choice (a pretext must serve all three, not the best-served one)."""
    rows = []
    for candidate in candidates:
        row: dict[str, Any] = {
            "pretext": candidate.pretext,
            "pretraining": f"{candidate.iterations} it, {candidate.pretrain_seconds / 60:.0f} min",
        }
        masks = []
        for arch in archs:
            ap = _fine_tuned_ap(candidate.runs / arch)
            row[arch] = "not measured" if ap is None else f"{ap[0]:.1f} / {ap[1]:.1f}"
            masks.append(None if ap is None else ap[1])
        row["worst mask AP"] = None if None in masks else round(float(min(masks)), 1)
        rows.append(row)
    return pd.DataFrame(rows).set_index("pretext") if rows else pd.DataFrame()


def pretext_reading(table: pd.DataFrame, shipped: str) -> str:
    """Which candidate serves the worst-served design best, and whether the shipped trunk is it."""
    measured = table["worst mask AP"].dropna()
    if measured.empty:
        return "No pretext was measured on all three designs."
    best = measured.astype(float).idxmax()
    verdict = (
        "The shipped trunk's pretext is the one that serves the worst-served design best"
        if best == shipped
        else f"The best candidate by the worst design's mask AP is not the shipped trunk's but {best!r}"
    )
    return (
        f"{verdict}: its worst design reaches mask AP {measured[best]:.1f}, against "
        + ", ".join(f"{v:.1f}" for name, v in measured.items() if name != best)
        + " for the other candidates measured on all three."
    )


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


def pretraining_reading(comparison: pd.DataFrame, stages: list[dict[str, Any]]) -> str:
    """What the comparison shows and what it does not, in Markdown, from the table and the trunk's stages."""
    cost = sum(m["train_seconds"] for m in stages) / 60
    iterations = " then ".join(f"{m['iterations']} {m['arch']} iterations" for m in stages)
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
        f"({iterations}), shared by every design, seed and rerun; at its end the pretext's detectors "
        "reached, on the pretraining split's own validation images, box / mask AP "
        f"{pretext_ap_text(stages[-1]['val'])}. "
        "What this does not show: the trunk's images come from the study's own generator, so it is closer "
        "to the target than ImageNet is to Fashionpedia; the gain says what a pretrained trunk buys at this "
        "scale, not what ImageNet's buys on real photographs."
    )
