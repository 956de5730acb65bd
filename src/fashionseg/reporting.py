"""Tables, figures and text of the study notebooks, computed from run folders and annotation files.

The notebooks stay thin: they call these functions and glue what they return. Every number comes from a
run's ``metrics.json`` / ``metrics.jsonl``, an annotation file, or the seed's Table I shipped as
``data/seed_table1.json``; nothing here holds a result. Figures are ``matplotlib.figure.Figure`` objects
made without pyplot; :func:`save_figure` writes one to a file and returns the image a notebook glues, so the
book shows exactly the file that was written.

This is the top layer of the notebooks' code: it reads the tables of :mod:`fashionseg.data.statistics`,
:mod:`fashionseg.evaluation` (per image: :mod:`fashionseg.evaluation.per_image`) and
:mod:`fashionseg.trends.stats` and turns them into tables, readings and prose; none of those import it.
Running models over images for a figure is :mod:`fashionseg.comparison`'s.
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
from IPython.display import Image as DisplayImage
from matplotlib.figure import Figure
from PIL import Image

from fashionseg.config import RunConfig, read_config, to_dict
from fashionseg.data.statistics import constant_attributes
from fashionseg.errors import FashionsegError
from fashionseg.models.trunk import is_trunk

# Table I's columns, in the seed's order: our name -> (metrics.json IoU type, COCO key)
TABLE1_METRICS: dict[str, tuple[str, str]] = {
    "box_AP": ("bbox", "AP"),
    "mask_AP": ("segm", "AP"),
    "box_AP50": ("bbox", "AP50"),
    "mask_AP50": ("segm", "AP50"),
    "box_AP75": ("bbox", "AP75"),
    "mask_AP75": ("segm", "AP75"),
}
IOU_TYPES = {"bbox": "box", "segm": "mask"}
METRIC_FAMILIES = {"coco": "AP (IoU)", "iou_f1": "AP (IoU+F1)", "f1": "AP (F1)"}


def save_figure(fig: Figure, path: str | Path, dpi: int = 100) -> DisplayImage:
    """Write ``fig`` to ``path`` and return it as an image to display or glue.

    The suffix picks the format: ``.png`` for plots, ``.jpg`` for grids of photographs, which PNG stores
    at ten times the size (the committed results must stay small).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    jpeg = path.suffix.lower() in (".jpg", ".jpeg")
    fig.savefig(path, dpi=dpi, bbox_inches="tight", pil_kwargs={"quality": 85} if jpeg else None)
    return DisplayImage(data=path.read_bytes(), format="jpeg" if jpeg else "png")


def _label(key: str) -> str:
    """``mask_AP50`` -> ``mask AP50`` (the table headers the seed uses)."""
    return key.replace("_", " ")


def seed_table() -> pd.DataFrame:
    """The seed's Table I: one row per backbone (R50-FPN, R50-C4, R50-DC5), columns as ``TABLE1_METRICS``.

    ``attrs["setting"]`` says how the seed obtained it (detectron2, 1000 iterations, Fashionpedia).
    """
    data = json.loads(resources.files("fashionseg.data").joinpath("seed_table1.json").read_text())
    table = pd.DataFrame.from_dict(data["rows"], orient="index")[list(TABLE1_METRICS)]
    table.index.name = "backbone"
    table.attrs.update(setting=data["setting"], source=data["source"])
    return table


def finished_runs(
    results_dir: str | Path, archs: Iterable[str], needed: str = "metrics.json"
) -> dict[str, Path]:
    """The run folder of each backbone under ``results_dir`` that holds ``needed`` (``metrics.json`` for the
    comparison, ``model_final.pt`` where the models are run again).

    Raises FashionsegError naming the folder and what to run first when no backbone has one, so that a
    notebook executed before any training stops with that message rather than a bare ``StopIteration``.
    """
    archs = list(archs)
    runs = {arch: Path(results_dir) / arch for arch in archs if (Path(results_dir) / arch / needed).is_file()}
    if not runs:
        preset = Path(results_dir).name
        files = ", ".join(f"{a}/{needed}" for a in archs)
        raise FashionsegError(
            f"no finished run under {results_dir}: none of {files} exists; train first with "
            f"`fashionseg study --preset {preset}` (or execute notebooks/02_train_backbone.ipynb with "
            f"output_dir={str(results_dir)!r} for each backbone)"
        )
    return runs


def read_run_metrics(results_dir: str | Path, archs: Iterable[str]) -> dict[str, dict[str, Any]]:
    """``metrics.json`` of each backbone's run folder under ``results_dir`` that has one (others are left
    out, so a failed backbone does not stop the comparison)."""
    runs = {}
    for arch in archs:
        path = Path(results_dir) / arch / "metrics.json"
        if path.is_file():
            runs[arch] = json.loads(path.read_text())
    return runs


def _number(value: Any) -> float:
    """A plain float (nan for a missing value) so that glue stores ``3.1``, not ``np.float64(3.1)``."""
    return float("nan") if value is None else float(value)


def key_numbers(metrics: dict[str, Any]) -> dict[str, float]:
    """The headline numbers of one run: Table I's six APs, box/mask AP^{IoU+F1}, and the two speeds."""
    numbers = {name: _number(metrics[t]["coco"][k]) for name, (t, k) in TABLE1_METRICS.items()}
    for iou_type, prefix in IOU_TYPES.items():
        numbers[f"{prefix}_AP_iou_f1"] = _number(metrics[iou_type]["iou_f1"]["AP"])
        numbers[f"{prefix}_AP_f1"] = _number(metrics[iou_type]["f1"]["AP"])
    speed = metrics.get("speed", {})
    numbers["train_s_per_iter"] = _number(speed.get("train_s_per_iter"))
    numbers["inference_ms_per_image"] = _number(speed.get("inference_ms_per_image"))
    return numbers


def ours_table(runs: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """Table I for our runs: one row per backbone, the columns of :func:`seed_table`."""
    table = pd.DataFrame(
        {arch: {k: key_numbers(m)[k] for k in TABLE1_METRICS} for arch, m in runs.items()},
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
    return table.rename(columns=_label).round(2)


def attribute_table(runs: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """The attribute-aware metrics per backbone: box and mask AP by IoU alone, by IoU+attribute-F1 (the
    Fashionpedia AP^{IoU+F1}), and by F1 alone."""
    table = pd.DataFrame(
        {
            arch: {
                f"{IOU_TYPES[t]} {label}": _number(m[t][family]["AP"])
                for t in IOU_TYPES
                for family, label in METRIC_FAMILIES.items()
            }
            for arch, m in runs.items()
        }
    ).T
    table.index.name = "backbone"
    return table.round(2)


def speed_table(runs: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """Per backbone: mask AP, box AP, training s/iter and inference ms/image (with the device measured on)."""
    rows = {}
    for arch, m in runs.items():
        n = key_numbers(m)
        rows[arch] = {
            "mask AP": n["mask_AP"],
            "box AP": n["box_AP"],
            "train s/iter": n["train_s_per_iter"],
            "inference ms/image": n["inference_ms_per_image"],
            "device": m.get("speed", {}).get("device", ""),
        }
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "backbone"
    return table.round({"mask AP": 2, "box AP": 2, "train s/iter": 3, "inference ms/image": 1})


def per_category_ap(runs: dict[str, dict[str, Any]], key: str = "segm_AP") -> pd.DataFrame:
    """AP per category (rows, the categories scored) and backbone (columns); a negative AP (no ground truth
    for the category, pycocotools' -1) becomes NaN."""
    table = pd.DataFrame(
        {arch: {c: _number(v.get(key)) for c, v in m["per_category"].items()} for arch, m in runs.items()}
    )
    table = table.where(table >= 0)
    return table.dropna(how="all").sort_index()


def read_env(run_dir: str | Path) -> dict[str, Any]:
    """A run's ``env.json`` (what ran it), empty where the run has none."""
    path = Path(run_dir) / "env.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def describe_run(run_dir: str | Path) -> str:
    """One line saying how a run was made: data, schedule, image size, initial weights, device."""
    run_dir = Path(run_dir)
    cfg = read_config(run_dir / "config.yaml")
    device = read_env(run_dir).get("device", cfg.device)
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
    rows: list[tuple[str, str]] = []

    def flatten(prefix: str, node: dict[str, Any]) -> None:
        for key, value in node.items():
            if isinstance(value, dict):
                flatten(f"{prefix}{key}.", value)
            else:
                rows.append((prefix + key, str(value)))

    flatten("", to_dict(cfg))
    return pd.DataFrame(rows, columns=["key", "value"]).set_index("key")


def read_metrics_log(path: str | Path) -> pd.DataFrame:
    """``metrics.jsonl`` as a table: one row per logged iteration (iteration, loss, loss_*, lr, time)."""
    lines = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    return pd.DataFrame(lines)


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


def attribute_loss_note(log: pd.DataFrame, weight: float | None = None) -> str:
    """One sentence on the attribute loss of a training log: whether it falls or stays flat, beside the
    total loss, from :func:`loss_change` (``weight``: the config's ``model.attribute_loss_weight``, by
    which the logged term is already multiplied)."""
    if "loss_attribute" not in log or log["loss_attribute"].dropna().empty:
        return "This run logged no attribute loss."
    first, last = loss_change(log, "loss_attribute")
    total_first, total_last = loss_change(log, "loss")
    drop = 1 - last / first if first > 0 else 0.0
    total_drop = 1 - total_last / total_first if total_first > 0 else 0.0
    weighted = f" (logged after its weight {weight:g})" if weight is not None else ""
    span = (
        f"from {first:.3f} over the first tenth of the logged iterations to {last:.3f} over the last"
        f"{weighted}; the total loss went from {total_first:.2f} to {total_last:.2f} ({-total_drop:+.0%})"
    )
    if drop < FLAT_LOSS_DROP:
        return (
            f"**The attribute loss stays flat** ({-drop:+.0%}, {span}): the attribute head has not learned "
            "yet, so this run's attributes, and its AP^IoU+F1 and AP^F1, say nothing about what the head "
            "could learn."
        )
    return f"The attribute loss falls by {drop:.0%}, {span}."


def read_learning_curve(run_dir: str | Path) -> pd.DataFrame:
    """A run's ``learning_curve.jsonl``: validation AP by iteration and training seconds (empty table when
    the run evaluated only at the end and has not been evaluated yet)."""
    path = Path(run_dir) / "learning_curve.jsonl"
    if not path.is_file():
        return pd.DataFrame(columns=["iteration", "train_seconds", "bbox_AP", "segm_AP"])
    return read_metrics_log(path)


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


def training_minutes(results_dir: str | Path, archs: Iterable[str]) -> pd.Series:
    """Training wall-clock minutes of each run (the last ``train_seconds`` of its ``metrics.jsonl``;
    evaluations excluded), for the runs that have a log."""
    minutes = {}
    for arch in archs:
        path = Path(results_dir) / arch / "metrics.jsonl"
        if path.is_file():
            log = read_metrics_log(path)
            if "train_seconds" in log and len(log):
                minutes[arch] = float(log["train_seconds"].iloc[-1]) / 60
    return pd.Series(minutes, name="training minutes", dtype=float)


def cpu_threads(results_dir: str | Path, archs: Iterable[str]) -> int | None:
    """The CPU threads of the machine that trained the runs (``env.json``; the first run that says)."""
    for arch in archs:
        threads = read_env(Path(results_dir) / arch).get("cpu_threads")
        if threads:
            return int(threads)
    return None


# The recipe the method chapter shows, as (row label, dotted config key); env.json's entries follow
RECIPE_KEYS: tuple[tuple[str, str], ...] = (
    ("data", "data.root"),
    ("synthetic data", "data.synthetic"),
    ("shortest / longest image edge (px)", "data.min_size|data.max_size"),
    ("horizontal flip probability", "data.hflip_prob"),
    ("initial weights", "model.weights"),
    ("backbone / head normalisation", "model.norm|model.head_norm"),
    ("iterations", "solver.max_iter"),
    ("images per batch", "solver.ims_per_batch"),
    ("base learning rate (for the reference batch)", "solver.base_lr|solver.reference_batch"),
    ("momentum / weight decay", "solver.momentum|solver.weight_decay"),
    ("warm-up iterations / start factor", "solver.warmup_iters|solver.warmup_factor"),
    ("learning-rate decays at / factor", "solver.steps|solver.gamma"),
    ("gradient-norm clip", "solver.clip_grad_norm"),
    ("bfloat16 autocast requested", "solver.amp"),
    ("evaluation every (iterations)", "solver.eval_period"),
    (
        "RPN proposals, training (pre / post NMS)",
        "model.rpn_pre_nms_top_n_train|model.rpn_post_nms_top_n_train",
    ),
    ("RPN proposals, test (pre / post NMS)", "model.rpn_pre_nms_top_n_test|model.rpn_post_nms_top_n_test"),
    ("anchors sampled per training image", "model.rpn_batch_size_per_image"),
    ("RoIs sampled per training image", "model.box_batch_size_per_image"),
    ("detections kept per image", "model.box_detections_per_img"),
    ("attribute loss weight", "model.attribute_loss_weight"),
    ("seed", "seed"),
)
RECIPE_ENV = {
    "torch": "torch",
    "torchvision": "torchvision",
    "python": "python",
    "device": "device",
    "CPU threads": "cpu_threads",
    "git commit": "git_commit",
}


def _dotted(tree: dict[str, Any], key: str) -> Any:
    for part in key.split("."):
        tree = tree[part]
    return tree


def _recipe_value(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value))
    return f"{value:g}" if isinstance(value, float) else str(value)


def recipe_table(results_dir: str | Path, archs: Iterable[str]) -> pd.DataFrame:
    """The training recipe of each run as its ``config.yaml`` and ``env.json`` record it: one row per
    setting of :data:`RECIPE_KEYS` and :data:`RECIPE_ENV`, one column per backbone (values as text; a
    ``|`` in a key joins two values with " / ")."""
    columns = {}
    for arch, cfg in read_run_configs(results_dir, archs).items():
        tree, env = to_dict(cfg), read_env(Path(results_dir) / arch)
        column = {
            label: " / ".join(_recipe_value(_dotted(tree, k)) for k in keys.split("|"))
            for label, keys in RECIPE_KEYS
        }
        for label, key in RECIPE_ENV.items():
            value = env.get(key)
            column[label] = "" if value is None else str(value)[:10] if key == "git_commit" else str(value)
        columns[arch] = column
    table = pd.DataFrame(columns)
    table.index.name = "setting"
    return table


# detectron2's defaults for the counts the demo lowers (config/defaults.py: MODEL.RPN.POST_NMS_TOPK_TEST,
# MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE, TEST.DETECTIONS_PER_IMAGE)
DETECTRON2_COUNTS = {
    "model.rpn_post_nms_top_n_test": 1000,
    "model.box_batch_size_per_image": 512,
    "model.box_detections_per_img": 100,
}
SPEED_COUNT_LABELS = {
    "model.rpn_post_nms_top_n_test": "test proposals",
    "model.box_batch_size_per_image": "training RoIs/image",
    "model.box_detections_per_img": "detections/image",
}


def speed_conditions(results_dir: str | Path, archs: Iterable[str]) -> pd.DataFrame:
    """Per backbone, what its timings were measured under: the proposal, RoI and detection counts of its
    ``config.yaml`` (detectron2's default in each header), the training batch, the inference batch, the
    warm-up, the images timed, the CPU threads (``env.json``) and the device."""
    rows = {}
    for arch, cfg in read_run_configs(results_dir, archs).items():
        run_dir = Path(results_dir) / arch
        tree, env = to_dict(cfg), read_env(run_dir)
        metrics_path = run_dir / "metrics.json"
        speed = json.loads(metrics_path.read_text()).get("speed", {}) if metrics_path.is_file() else {}
        row: dict[str, Any] = {
            f"{SPEED_COUNT_LABELS[key]} (detectron2: {d2})": int(_dotted(tree, key))
            for key, d2 in DETECTRON2_COUNTS.items()
        }
        row["training batch"] = int(tree["solver"]["ims_per_batch"])
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


def count_text(conditions: pd.DataFrame, column: str) -> str:
    """A column of :func:`speed_conditions` in words: ``50`` when every backbone has it, else
    ``100 (R50-FPN) and 50 (R50-C4, R50-DC5)``."""
    groups = conditions.groupby(column, sort=False).groups
    if len(groups) == 1:
        return str(next(iter(groups)))
    return and_list([f"{value} ({', '.join(map(str, archs))})" for value, archs in groups.items()])


INFERENCE_SPEED_FILE = "inference_speed.json"  # written by benchmarks/inference_speed.py --out


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
    by_arch: dict[str, dict[str, dict[str, Any]]] = {}
    for row in record["rows"]:
        by_arch.setdefault(row["arch"], {})[row["setting"]] = row
    parts, counts = [], ""
    for arch, settings in by_arch.items():
        demo, d2 = settings.get("demo"), settings.get("detectron2")
        if demo and d2:
            parts.append(
                f"{arch} {d2['ms_per_image']:.0f} ms/image at {d2['proposals']} proposals against "
                f"{demo['ms_per_image']:.0f} at the demo's {demo['proposals']} "
                f"({d2['ms_per_image'] / demo['ms_per_image']:.1f}x)" + _share_text(demo, d2)
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


def speed_note(conditions: pd.DataFrame) -> str:
    """How the timings of :func:`speed_table` were measured and what the demo's counts do to them, in one
    paragraph of plain text (to paste with glue), from :func:`speed_conditions`."""
    if not len(conditions):
        return "No backbone has a finished run, so there are no timings."

    first = conditions.iloc[0]
    same = {c: conditions[c].nunique() == 1 for c in conditions}
    proposals, rois, detections = (c for c in conditions.columns[: len(DETECTRON2_COUNTS)])
    text = [
        "Training s/iter is the median of the logged intervals at "
        + f"batch {count_text(conditions, 'training batch')}"
        + "; inference ms/image is the model's time over "
        + (
            f"the {first['images timed']} validation images"
            if same["images timed"]
            else "the validation images"
        )
        + ", predicted "
        + (f"in batches of {first['inference batch']}" if same["inference batch"] else "in batches")
        + (
            ", with no warm-up (the first batch is timed too)"
            if (conditions["warm-up batches"] == 0).all()
            else ""
        )
        + (f", on {first['device']}" if same["device"] and first["device"] else "")
        + (f" with {first['threads']:.0f} CPU threads" if same["threads"] and first["threads"] else "")
        + "."
    ]
    d2 = dict(zip(conditions.columns[:3], DETECTRON2_COUNTS.values(), strict=True))
    counts = {column: count_text(conditions, column) for column in (proposals, rois, detections)}
    text.append(
        f"The demo keeps {counts[proposals]} test proposals per image (detectron2: {d2[proposals]}), "
        f"samples {counts[rois]} RoIs per training image (detectron2: {d2[rois]}) and keeps at most "
        f"{counts[detections]} detections per image (detectron2: {d2[detections]})."
    )
    if conditions[proposals].nunique() > 1 and "R50-C4" in conditions.index:
        text.append(
            "The timings are therefore not at equal counts. R50-C4 runs its res5 stage once per proposal, so "
            "its inference time grows with the count far more than the others': fewer proposals flatter it."
        )
    text.append(
        "The script benchmarks/inference_speed.py times the same trained models at the demo's counts and at "
        "detectron2's, with the batch, threads and warm-up stated; its numbers are not part of this book."
    )
    return " ".join(text)


def attribute_baseline(
    train: dict[str, Any], val: dict[str, Any], predictions: list[dict[str, Any]]
) -> dict[str, Any]:
    """``evaluate`` of the model's own detections with their attributes replaced by
    :func:`fashionseg.data.statistics.constant_attributes`: the same boxes and masks, so the difference to
    the model's metrics is what its attribute head adds."""
    from fashionseg.evaluation import evaluate

    constant = constant_attributes(train)
    swapped = [
        {**p, "attribute_ids": constant.get(p["category_id"], []), "attribute_scores": None}
        for p in predictions
    ]
    for p in swapped:
        p.pop("attribute_scores")
    return evaluate(val, swapped, iou_types=("bbox", "segm"), show_progress=False)


def attribute_baselines(results_dir: str | Path, archs: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The model's metrics and :func:`attribute_baseline`'s, both on the full validation split, for each run
    under ``results_dir`` that has its validation predictions (``predictions_val.json``, written by the
    run's evaluation): ``{arch: {"model": metrics, "constant": metrics}}``."""
    from fashionseg.evaluation import evaluate

    splits: dict[Path, dict[str, Any]] = {}  # the backbones share their data: read each file once

    def split(path: Path) -> dict[str, Any]:
        if path not in splits:
            splits[path] = json.loads(path.read_text())
        return splits[path]

    out: dict[str, dict[str, Any]] = {}
    for arch in archs:
        run_dir = Path(results_dir) / arch
        predictions = run_dir / "predictions_val.json"
        if not predictions.is_file() or not (run_dir / "config.yaml").is_file():
            continue
        data = read_config(run_dir / "config.yaml").data
        train, val = split(data.path(data.train_annotations)), split(data.path(data.val_annotations))
        results = json.loads(predictions.read_text())
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
            row[f"mask AP^IoU+F1 ({source})"] = _number(m["segm"].get("iou_f1", {}).get("AP"))
            row[f"AP^F1 ({source})"] = _number(m["segm"].get("f1", {}).get("AP"))
        rows[arch] = row
    return pd.DataFrame.from_dict(rows, orient="index").round(2)


def metrics_table(metrics: dict[str, Any]) -> pd.DataFrame:
    """Box and mask rows; COCO AP, AP50, AP75, APs, APm, APl and the Fashionpedia AP^{IoU+F1} and AP^{F1}."""
    rows = {}
    for iou_type, name in IOU_TYPES.items():
        coco = metrics[iou_type]["coco"]
        rows[name] = {k: _number(coco.get(k)) for k in ("AP", "AP50", "AP75", "APs", "APm", "APl")}
        rows[name]["AP (IoU+F1)"] = _number(metrics[iou_type]["iou_f1"]["AP"])
        rows[name]["AP (F1)"] = _number(metrics[iou_type]["f1"]["AP"])
    return pd.DataFrame(rows).T.round(2)


def plot_frequencies(table: pd.DataFrame, label: str, hue: str, title: str) -> Figure:
    """A horizontal bar chart of ``table["instances"]`` per ``label``, coloured by ``hue``."""
    fig = Figure(figsize=(8, 0.28 * len(table) + 1.2), layout="constrained")
    ax = fig.subplots()
    sns.barplot(data=table, y=label, x="instances", hue=hue, dodge=False, ax=ax)
    ax.set(title=title, ylabel="")
    ax.legend(fontsize="small", title=hue)
    return fig


def image_grid(
    rows: Sequence[Sequence[Image.Image]], row_labels: Sequence[str], col_labels: Sequence[str]
) -> Figure:
    """Images in a grid (one row per image, one column per source: ground truth, then each model)."""
    n_rows, n_cols = len(rows), len(col_labels)
    fig = Figure(figsize=(3.2 * n_cols, 3.2 * n_rows), layout="constrained")
    axes = np.asarray(fig.subplots(n_rows, n_cols, squeeze=False))
    for r, (images, row_label) in enumerate(zip(rows, row_labels, strict=True)):
        for c, image in enumerate(images):
            ax = axes[r, c]
            ax.imshow(image)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(col_labels[c])
            if c == 0:
                ax.set_ylabel(row_label)
    return fig


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


def plot_category_heatmap(table: pd.DataFrame, title: str) -> Figure:
    """A heatmap of :func:`per_category_ap` (categories x backbones), annotated with the values."""
    fig = Figure(figsize=(2.2 + 1.6 * table.shape[1], 0.32 * len(table) + 1.5), layout="constrained")
    ax = fig.subplots()
    sns.heatmap(
        table, annot=True, fmt=".1f", cmap="viridis", vmin=0, vmax=100, ax=ax, cbar_kws={"label": "AP"}
    )
    ax.set(title=title, xlabel="", ylabel="")
    return fig


def rank_groups(values: pd.Series, decimals: int = 1, ascending: bool = False) -> list[list[str]]:
    """The index of ``values`` best first (highest, or lowest with ``ascending``), in groups of ties.

    Values equal once rounded to ``decimals`` (the precision the book shows) tie: a difference too small to
    print is not an order. NaN values are left out; a group keeps the index's order.
    """
    rounded = values.dropna().astype(float).round(decimals) + 0.0  # + 0.0: -0.0 and 0.0 are one value
    levels = sorted(set(rounded), reverse=not ascending)
    return [[str(k) for k in rounded.index if rounded[k] == level] for level in levels]


def ranking_text(values: pd.Series, decimals: int = 1, ascending: bool = False) -> str:
    """``R50-FPN (4.8) > R50-C4 = R50-DC5 (0.0)``: :func:`rank_groups` with each group's value."""
    rounded = values.dropna().astype(float).round(decimals) + 0.0
    return " > ".join(
        f"{' = '.join(group)} ({rounded[group[0]]:.{decimals}f})"
        for group in rank_groups(values, decimals, ascending)
    )


def best_text(values: pd.Series, decimals: int = 1, ascending: bool = False) -> str:
    """The best of ``values`` by name, or the tied best: ``R50-FPN``, ``R50-C4 and R50-DC5 (tied)``."""
    groups = rank_groups(values, decimals, ascending)
    if not groups:
        return "none"
    top = groups[0]
    return top[0] if len(top) == 1 else f"{and_list(top)} (tied)"


def and_list(items: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c`` (empty for no items)."""
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} and {items[-1]}"


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


def _counts_caveat(conditions: pd.DataFrame) -> str:
    """The sentence the reading adds to its speed part: the test proposal counts of the timings."""
    column = conditions.columns[0]
    return (
        f" These timings are at the demo's test proposal counts, {count_text(conditions, column)}, not "
        f"detectron2's {DETECTRON2_COUNTS['model.rpn_post_nms_top_n_test']}"
        + (", and not equal across the backbones" if conditions[column].nunique() > 1 else "")
        + "."
    )


SEED_ITERATIONS = 1000  # the seed's schedule (data/seed_table1.json's setting)
DETECTRON2_1X_ITERATIONS = 90_000  # detectron2's 1x schedule (SOLVER.MAX_ITER of its model zoo's 1x configs)


def read_run_configs(results_dir: str | Path, archs: Iterable[str]) -> dict[str, RunConfig]:
    """The ``config.yaml`` of each backbone's run folder under ``results_dir`` that has one."""
    paths = {arch: Path(results_dir) / arch / "config.yaml" for arch in archs}
    return {arch: read_config(path) for arch, path in paths.items() if path.is_file()}


def _values_text(values: Sequence[Any]) -> str:
    """``300`` when all runs agree, else ``300 and 1000`` (the distinct values in order)."""
    return and_list([str(v) for v in dict.fromkeys(values)])


def limits_reading(configs: Mapping[str, RunConfig]) -> str:
    """What the runs cannot show, in one Markdown paragraph, from their configurations (one per backbone):
    one seed per backbone, the schedule against the seed's and detectron2's 1x, synthetic data, training
    from scratch or from the project's synthetic trunk; and always that timings depend on the device and
    the image size."""
    text = ["**What this does not show.**"]
    cfgs = list(configs.values())
    if cfgs:
        seeds = _values_text([c.seed for c in cfgs])
        text.append(
            f"One run per backbone here (seed {seeds}): differences of a few AP points may not survive "
            "another seed; the seeds notebook (06_seeds) sets them against the spread of several."
        )
        iterations = [c.solver.max_iter for c in cfgs]
        schedule = (
            f"{_values_text(iterations)} iterations (the seed trained {SEED_ITERATIONS}, detectron2's 1x "
            f"schedule {DETECTRON2_1X_ITERATIONS})"
        )
        if max(iterations) < DETECTRON2_1X_ITERATIONS:
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
            + (_counts_caveat(conditions) if conditions is not None and len(conditions) else "")
        )
    parts.append(limits_reading(configs or {}))
    return "\n\n".join(parts)


def _failure_order(quality: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Per image with ground truth: mean IoU and missed instances averaged / summed over the backbones,
    worst first (lowest mean IoU, then most instances missed, then most instances, then image id)."""
    table = pd.DataFrame(
        {
            "mean_iou": pd.concat([q["mean_iou"] for q in quality.values()], axis=1).mean(axis=1),
            "missed": sum(q["missed"] for q in quality.values()),
            "instances": next(iter(quality.values()))["instances"],
        }
    ).dropna(subset=["mean_iou"])
    table.index = table.index.astype(int).rename(None)
    table["image_id"] = table.index
    table["rounded_iou"] = table["mean_iou"].round(2)
    return table.sort_values(
        ["rounded_iou", "missed", "instances", "image_id"], ascending=[True, False, False, True]
    )


def pick_images(
    quality: dict[str, pd.DataFrame], n_examples: int, n_failures: int
) -> tuple[list[int], list[int]]:
    """Validation images to show for every backbone: (examples, failures).

    Failures are the ``n_failures`` images whose ground truth the backbones cover worst: lowest mean IoU
    (averaged over backbones, at two decimals), and among equal ones the most instances missed, so that when
    every image scores IoU 0 the choice is still by failure, not by id. Examples are ``n_examples`` spread
    evenly over the other image ids (over all of them when a tiny split leaves none).
    """
    order = _failure_order(quality)
    failures = [int(i) for i in order["image_id"][:n_failures]]
    ids = sorted(int(i) for i in order["image_id"])
    rest = [i for i in ids if i not in failures] or ids
    picks = np.unique(np.linspace(0, len(rest) - 1, num=min(n_examples, len(rest))).round().astype(int))
    return [rest[i] for i in picks], failures


def failure_caption(quality: dict[str, pd.DataFrame], failures: Sequence[int]) -> str:
    """What the failure images shown are and how they were chosen, true also when they tie (one or two
    sentences; plain text, to paste with glue)."""
    order = _failure_order(quality)
    if not failures:
        return "No validation image has ground truth to fail on."
    shown = order.loc[list(failures)]
    n_images, k = len(order), len(failures)
    zero = order[order["mean_iou"] == 0]
    missed = ", ".join(f"{m:.0f}" for m in shown["missed"])
    per = f"summed over the {len(quality)} backbones" if len(quality) > 1 else "by the backbone"
    if (shown["mean_iou"] == 0).all() and len(zero) > k:
        return (
            f"{len(zero)} of the {n_images} validation images have mean mask IoU 0 for every backbone: no "
            f"detection covers any of their ground truth, so IoU cannot rank them. Shown are the {k} of them "
            f"with the most ground-truth instances missed ({missed}, {per})."
        )
    boundary = shown["rounded_iou"].max()
    tied = order[order["rounded_iou"] == boundary]
    text = (
        f"The {k} validation images of {n_images} whose ground truth the backbones cover worst: lowest mean "
        f"mask IoU, averaged over the backbones ({', '.join(f'{v:.2f}' for v in shown['mean_iou'])})."
    )
    if len(tied) > len(shown[shown["rounded_iou"] == boundary]):
        text += (
            f" {len(tied)} images tie at mean IoU {boundary:.2f}; among them those with the most instances "
            f"missed are shown ({missed}, {per})."
        )
    return text


def failure_table(quality: dict[str, pd.DataFrame], image_ids: Sequence[int]) -> pd.DataFrame:
    """For the given images: ground-truth instances, and per backbone the missed instances and mean IoU."""
    first = next(iter(quality.values()))
    table = pd.DataFrame({"instances": first.loc[list(image_ids), "instances"]})
    for arch, q in quality.items():
        table[f"{arch} missed"] = q.loc[list(image_ids), "missed"]
        table[f"{arch} mean IoU"] = q.loc[list(image_ids), "mean_iou"].round(2)
    return table


TREND_CONTROL = "skirt"  # the planted design keeps the skirt's share flat: the recovery table's control


def missed_categories_table(misses: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Per ground-truth category (rows, most instances first), per backbone: ``missed / instances`` of its
    validation instances, from :func:`fashionseg.evaluation.per_image.missed_by_category` of each run."""
    if not misses:
        return pd.DataFrame()
    first = next(iter(misses.values()))
    table = pd.DataFrame(
        {
            arch: [f"{int(m.loc[c, 'missed'])}/{int(m.loc[c, 'instances'])}" for c in first.index]
            for arch, m in misses.items()
        },
        index=first.index,
    )
    table.insert(0, "instances", first["instances"].astype(int))
    table = table.sort_values("instances", ascending=False, kind="stable")
    table.index.name = "category"
    return table.drop(columns="instances")


def missed_categories_text(misses: Mapping[str, pd.DataFrame]) -> str:
    """Which categories each backbone misses entirely, and its most missed one otherwise (one sentence
    per backbone, from :func:`fashionseg.evaluation.per_image.missed_by_category`)."""
    sentences = []
    for arch, m in misses.items():
        present = m[m["instances"] > 0]
        every = [f"“{c}”" for c in present.index if present.loc[c, "missed"] == present.loc[c, "instances"]]
        if every:
            share = (
                f"all {len(present)}" if len(every) == len(present) else f"{len(every)} of the {len(present)}"
            )
            sentences.append(
                f"{arch} misses every validation instance of {share} categories: {and_list(every)}."
            )
        elif len(present):
            worst = present["missed_share"].astype(float).idxmax()
            sentences.append(
                f"{arch} finds at least one instance of every category; it misses most of “{worst}” "
                f"({int(present.loc[worst, 'missed'])} of {int(present.loc[worst, 'instances'])})."
            )
    return " ".join(sentences)


def prediction_counts(report: dict[str, Any], score_threshold: float) -> pd.DataFrame:
    """What a trends prediction run found (its ``report``): images found, predicted, unreadable, without a
    metadata row, metadata rows without an image, detections at ``score_threshold``; one ``count`` column."""
    counts = {
        "images found": report["images_found"],
        "images predicted": report["images_predicted"],
        "unreadable images": len(report["images_unreadable"]),
        "images without a metadata row": len(report["images_without_metadata"]),
        "metadata rows without an image": len(report["rows_without_image"]),
        f"detections at score >= {score_threshold}": report["detections_at_threshold"],
    }
    return pd.Series(counts, name="count").to_frame()


def trend_lines(sources: Mapping[str, Any], design: pd.DataFrame | None = None) -> pd.DataFrame:
    """The per-group shares of every source (name -> :class:`fashionseg.trends.stats.Statistics`) in one
    long table with a ``source`` column, for :func:`fashionseg.trends.plots.plot_trends`; with ``design``
    (:meth:`PlantedTrends.table`) the planted shares first, as source "planted" with no interval."""
    lines = (
        [design.assign(ci_low=design["share"], ci_high=design["share"], source="planted")]
        if design is not None
        else []
    )
    lines += [stats.trend.by_group.assign(source=name) for name, stats in sources.items()]
    return pd.concat(lines, ignore_index=True)


def recovery_table(
    sources: Mapping[str, Any], features: Sequence[str], planted: pd.DataFrame | None = None
) -> pd.DataFrame:
    """:func:`fashionseg.trends.stats.compare_changes` of the planted changes (``planted``, feature and
    change; left out when None) and each source's trend, on ``features``."""
    from fashionseg.trends.stats import compare_changes

    changes = {"planted": planted} if planted is not None else {}
    changes |= {name: stats.trend.change for name, stats in sources.items()}
    return compare_changes(changes, features)


def control_p_values(recovery: pd.DataFrame, feature: str = TREND_CONTROL) -> pd.Series:
    """``p_trend`` of the flat control ``feature`` per source of a :func:`recovery_table` (named after it)."""
    return recovery.xs("p_trend", axis=1, level=1).loc[feature]


def movers_table(sources: Mapping[str, Any]) -> pd.DataFrame:
    """The risers and fallers of every source, indexed by (source, direction, feature): first and last
    share, change, p_trend, q_trend."""
    columns = ["feature", "first_share", "last_share", "change", "p_trend", "q_trend"]
    return pd.concat(
        {
            (name, kind): table[columns].set_index("feature")
            for name, stats in sources.items()
            for kind, table in (("riser", stats.risers), ("faller", stats.fallers))
        },
        names=["source", "direction"],
    )


RECOVERY_P = 0.01  # a planted trend counts as recovered at p_trend below this, in the planted direction


def recovered_trends(recovery: pd.DataFrame, p: float = RECOVERY_P) -> dict[str, int]:
    """Per source of a :func:`fashionseg.trends.stats.compare_changes` table that has a ``planted`` block:
    how many planted features (those with a planted change) it finds at ``p_trend < p`` in the planted
    direction."""
    if "planted" not in recovery.columns.get_level_values(0):
        return {}
    planted = recovery[("planted", "change")].dropna()
    out = {}
    for source in dict.fromkeys(recovery.columns.get_level_values(0)):
        if source == "planted":
            continue
        found = recovery.loc[planted.index, (source, "p_trend")] < p
        same_sign = np.sign(recovery.loc[planted.index, (source, "change")]) == np.sign(planted)
        out[str(source)] = int((found & same_sign).sum())
    return out


def implied_changes(planted: pd.DataFrame) -> pd.DataFrame:
    """The changes the planted design implies without planting them (columns feature, change).

    The collection's generator gives the skirts that are neither striped nor dotted (plain or check) what
    the two planted patterns leave (:meth:`PlantedTrends.quotas`), so their share changes by minus the sum
    of the two planted changes: a trend there follows from the design and is no false discovery.
    """
    from fashionseg.data import ontology, synthetic

    names = {a.id: a.name for a in ontology.attributes()}
    skirt = next(c.name for c in ontology.categories() if c.id == synthetic.SKIRT)
    change = planted.set_index("feature")["change"]
    planted_patterns = [f"{skirt}: {names[synthetic.PATTERNS[p]]}" for p in ("stripe", "dot")]
    if not all(f in change.index for f in planted_patterns):
        return pd.DataFrame(columns=["feature", "change"])
    rest = -float(change[planted_patterns].sum())
    others = [f"{skirt}: {names[synthetic.PATTERNS[p]]}" for p in ("plain", "check")]
    return pd.DataFrame({"feature": others, "change": [rest] * len(others)})


def false_discoveries(
    changes: dict[str, pd.DataFrame],
    planted: pd.DataFrame,
    alpha: float,
    implied: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The trends each source reports that the design did not plant: features whose trend survives the
    false-discovery rate (``q_trend < alpha``, what the risers and fallers are chosen from) but that were
    not planted, or were planted in the other direction.

    ``changes``: source name -> :attr:`TrendResult.change`; ``planted``: feature and planted change
    (:meth:`PlantedTrends.change`); ``implied``: changes the design implies (:func:`implied_changes`),
    which count as planted. Returns one row per false discovery: source, feature, why, change, p_trend,
    q_trend (empty, with these columns, when there is none).
    """
    expected = planted if implied is None or not len(implied) else pd.concat([planted, implied])
    planted_sign = np.sign(expected.set_index("feature")["change"])
    implied_features = set() if implied is None else set(implied["feature"])
    rows = []
    for source, change in changes.items():
        found = change[(change["q_trend"] < alpha) & change["change"].notna()]
        for _, row in found.iterrows():
            sign = planted_sign.get(row["feature"])
            if sign is not None and np.sign(row["change"]) == sign:
                continue
            rows.append(
                {
                    "source": source,
                    "feature": row["feature"],
                    "why": "not planted"
                    if sign is None
                    else "implied the other way"
                    if row["feature"] in implied_features
                    else "planted the other way",
                    "change": float(row["change"]),
                    "p_trend": float(row["p_trend"]),
                    "q_trend": float(row["q_trend"]),
                }
            )
    return pd.DataFrame(rows, columns=["source", "feature", "why", "change", "p_trend", "q_trend"])


def false_discovery_counts(found: pd.DataFrame, sources: Iterable[str]) -> dict[str, int]:
    """How many false discoveries (:func:`false_discoveries`) each source has, zero included."""
    counts = found["source"].value_counts()
    return {str(s): int(counts.get(s, 0)) for s in sources}


def false_discovery_table(found: pd.DataFrame, sources: Iterable[str]) -> pd.DataFrame:
    """One row per source: how many false discoveries (:func:`false_discoveries`) it has and which, each
    with its change and q-value ("none" where there is none)."""
    rows = {}
    for source in sources:
        mine = found[found["source"] == source]
        rows[str(source)] = {
            "false discoveries": len(mine),
            "features (change, q)": "; ".join(
                f"{r.feature} ({r.change:+.2f}, q {r.q_trend:.3f}"
                + ("" if r.why == "not planted" else f", {r.why}")
                + ")"
                for r in mine.itertuples()
            )
            or "none",
        }
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "source"
    return table


def trends_reading(
    photos: int,
    seasons: int,
    n_planted: int,
    recovered: dict[str, int],
    found: pd.DataFrame,
    sources: Sequence[str],
    control: pd.Series,
    alpha: float,
) -> str:
    """What the trend statistics found in the planted collection, per source, in Markdown: planted trends
    recovered, unplanted trends found (false discoveries) and the flat control's p-value."""
    text = [f"{photos} photos over {seasons} seasons; {n_planted} planted trends."]
    text += [
        f"Recovered at p < {RECOVERY_P:g} in the planted direction by the {k}: {n} of {n_planted}."
        for k, n in recovered.items()
    ]
    counts = false_discovery_counts(found, sources)
    for source, n in counts.items():
        names = ", ".join(found.loc[found["source"] == source, "feature"])
        text.append(
            f"Trends found by the {source} that were not planted (q < {alpha:g}, false discoveries): {n}"
            + (f" ({names})." if n else ".")
        )
    text += [f"The flat control ({control.name}) gives p = {p:.2f} on the {k}." for k, p in control.items()]
    if recovered.get("ground truth", 0) > recovered.get("model", 0):
        text.append(
            "Where the ground truth shows a planted trend and the model's predictions do not, the statistics "
            "found it and the model lost it: it misses or confuses those garments or patterns too often."
        )
    if counts.get("model", 0) > counts.get("ground truth", 0):
        text.append(
            "A trend the model reports and the ground truth does not is the model's: its errors change "
            "from season to season, the collection does not."
        )
    return " ".join(text)
