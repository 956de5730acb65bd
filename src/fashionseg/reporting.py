"""Tables, figures and text of the study notebooks, computed from run folders and annotation files.

The notebooks stay thin: they call these functions and glue what they return. Every number comes from a
run's ``metrics.json`` / ``metrics.jsonl``, an annotation file, or the seed's Table I shipped as
``data/seed_table1.json``; nothing here holds a result. Figures are ``matplotlib.figure.Figure`` objects
made without pyplot; :func:`save_figure` writes one to a file and returns the image a notebook glues, so the
book shows exactly the file that was written.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections import Counter
from collections.abc import Iterable, Sequence
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


def describe_run(run_dir: str | Path) -> str:
    """One line saying how a run was made: data, schedule, image size, initial weights, device."""
    run_dir = Path(run_dir)
    cfg = read_config(run_dir / "config.yaml")
    env_path = run_dir / "env.json"
    device = json.loads(env_path.read_text())["device"] if env_path.is_file() else cfg.device
    data = "synthetic data" if cfg.data.synthetic else "Fashionpedia-format data"
    weights = "from scratch" if cfg.model.weights == "none" else f"from {cfg.model.weights} weights"
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


def constant_attributes(train: dict[str, Any]) -> dict[int, list[int]]:
    """The constant attribute predictor of the training split: for each category, the most frequent
    attribute of every attribute group (Fashionpedia's attribute supercategory) its garments carry.

    The baseline an attribute head must beat: it knows each category's attribute statistics and nothing
    about the garment in front of it.
    """
    group = {a["id"]: a["supercategory"] for a in train["attributes"]}
    counts: dict[int, Counter] = {}
    for ann in train["annotations"]:
        counts.setdefault(ann["category_id"], Counter()).update(ann.get("attribute_ids", []))
    constant: dict[int, list[int]] = {}
    for category, counter in counts.items():
        best: dict[str, tuple[int, int]] = {}
        for attribute, n in counter.items():
            g = group.get(attribute, "")
            if g not in best or (n, -attribute) > (best[g][1], -best[g][0]):
                best[g] = (attribute, n)
        constant[category] = sorted(a for a, _ in best.values())
    return constant


def attribute_baseline(
    train: dict[str, Any], val: dict[str, Any], predictions: list[dict[str, Any]]
) -> dict[str, Any]:
    """``evaluate`` of the model's own detections with their attributes replaced by
    :func:`constant_attributes`: the same boxes and masks, so the difference to the model's metrics is what
    its attribute head adds."""
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


def split_summary(splits: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """Per split (name -> annotation file): images, instances, categories used, attributes used."""
    return pd.DataFrame(
        {
            name: {
                "images": len(coco["images"]),
                "instances": len(coco["annotations"]),
                "categories": len({a["category_id"] for a in coco["annotations"]}),
                "attributes": len({i for a in coco["annotations"] for i in a.get("attribute_ids", [])}),
            }
            for name, coco in splits.items()
        }
    ).T


def annotations_by_image(coco: dict[str, Any]) -> dict[int, list[dict[str, Any]]]:
    """The annotation dicts of each image id (images without annotations are absent)."""
    grouped: dict[int, list[dict[str, Any]]] = {}
    for ann in coco["annotations"]:
        grouped.setdefault(ann["image_id"], []).append(ann)
    return grouped


def category_frequencies(coco: dict[str, Any]) -> pd.DataFrame:
    """Per category of an annotation file: supercategory, instances, and images containing it (sorted)."""
    instances = Counter(a["category_id"] for a in coco["annotations"])
    images = Counter(c for c, _ in {(a["category_id"], a["image_id"]) for a in coco["annotations"]})
    table = pd.DataFrame(
        [
            {
                "category": c["name"],
                "supercategory": c.get("supercategory", ""),
                "instances": instances[c["id"]],
                "images": images[c["id"]],
            }
            for c in coco["categories"]
            if instances[c["id"]]
        ]
    )
    return table.sort_values("instances", ascending=False, ignore_index=True)


def attribute_frequencies(coco: dict[str, Any], top: int = 25) -> pd.DataFrame:
    """The ``top`` most frequent attributes of an annotation file: name, group, instances carrying it."""
    counts = Counter(a_id for a in coco["annotations"] for a_id in a.get("attribute_ids", []))
    meta = {a["id"]: a for a in coco.get("attributes", [])}
    return pd.DataFrame(
        [
            {
                "attribute": meta.get(a_id, {}).get("name", str(a_id)),
                "group": meta.get(a_id, {}).get("supercategory", ""),
                "instances": n,
            }
            for a_id, n in counts.most_common(top)
        ],
        columns=["attribute", "group", "instances"],
    )


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


def plot_speed_accuracy(speed: pd.DataFrame, seed: pd.DataFrame | None = None) -> Figure:
    """Mask AP against inference ms/image and against training s/iter, one labelled point per backbone.

    The trade-off the seed discusses (FPN fast, C4/DC5 slower); with ``seed`` the seed's mask AP ranking is
    listed in the title, since the seed reports no timings.
    """
    fig = Figure(figsize=(10, 3.8), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, x in zip(axes, ["inference ms/image", "train s/iter"], strict=True):
        for arch, row in speed.iterrows():
            ax.scatter(row[x], row["mask AP"], s=60)
            ax.annotate(arch, (row[x], row["mask AP"]), textcoords="offset points", xytext=(6, 4))
        ax.set(xlabel=f"{x} (lower is faster)", ylabel="mask AP", title=f"mask AP vs {x}")
        ax.margins(0.25)
    if seed is not None:
        ranking = " > ".join(seed["mask_AP"].sort_values(ascending=False).index)
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


def _ranking(values: pd.Series) -> str:
    ordered = values.sort_values(ascending=False)
    return " > ".join(f"{arch} ({v:.1f})" for arch, v in ordered.items())


UNTRAINED_MASK_AP = 10.0  # below this best mask AP, the reading says the backbones' order is noise


def honest_reading(
    ours: pd.DataFrame,
    seed: pd.DataFrame,
    speed: pd.DataFrame,
    attributes: pd.DataFrame,
    setting: str,
    missing: Sequence[str] = (),
) -> str:
    """What the numbers do and do not show, in Markdown, composed from the tables (no number typed here)."""
    parts = [
        f"**Setting.** Our runs: {setting}. The seed's: {seed.attrs.get('setting', 'its Table I')}. "
        "Different data and schedules: the absolute values are not comparable, only orderings and trade-offs."
    ]
    if missing:
        parts.append(f"**Missing.** No finished run for {', '.join(missing)}; its rows show only the seed.")
    if len(ours):
        common = [a for a in ours.index if a in seed.index]
        ours_order = list(ours.loc[common, "mask_AP"].sort_values(ascending=False).index)
        seed_order = list(seed.loc[common, "mask_AP"].sort_values(ascending=False).index)
        agree = "The two orders agree." if ours_order == seed_order else "The two orders differ."
        parts.append(
            f"**Accuracy.** By mask AP ours rank {_ranking(ours['mask_AP'])}; the seed's rank "
            f"{_ranking(seed.loc[common, 'mask_AP'])}. {agree}"
        )
        if ours["mask_AP"].max() < UNTRAINED_MASK_AP:
            parts.append(
                f"**Undertrained.** No backbone reaches mask AP {UNTRAINED_MASK_AP:.0f} here: at this "
                "schedule the models have barely begun to learn, so their ordering (and the trade-offs "
                "below) says nothing yet about the architectures. A longer schedule, a GPU or pretrained "
                "weights are needed for that (the book's limitations page gives the learning curve)."
            )
        best_box, best_mask = ours["box_AP"].idxmax(), ours["mask_AP"].idxmax()
        parts.append(
            f"Box AP and mask AP pick the same best backbone ({best_mask})."
            if best_box == best_mask
            else f"Box AP and mask AP disagree on the best backbone ({best_box} by box, {best_mask} by mask)."
        )
        gap = (attributes["mask AP (IoU)"] - attributes["mask AP (IoU+F1)"]).mean()
        strict = "Requiring the attributes to match as well (AP^IoU+F1)"
        parts.append(
            f"**Attributes.** {strict} lowers mask AP by {gap:.1f} points on average over the backbones: "
            "what the attribute head's mistakes cost."
            if gap > 0
            else f"**Attributes.** {strict} does not lower mask AP here ({-gap:+.1f} points on average): its "
            "average weighs the categories with attributes once per F1 threshold, so it is not simply a "
            "stricter AP."
        )
        ms = speed["inference ms/image"]
        fast, accurate = ms.idxmin(), speed["mask AP"].idxmax()
        device = speed.loc[fast, "device"] or "this machine"
        trade = (
            "It is also the most accurate here, so this run shows no speed/accuracy trade-off."
            if fast == accurate
            else f"The most accurate, {accurate}, takes {ms[accurate] / ms[fast]:.1f}x its inference time."
        )
        parts.append(
            f"**Speed.** {fast} is the fastest at inference ({ms[fast]:.0f} ms/image on {device}). {trade}"
        )
    parts.append(
        "**What this does not show.** One seed per backbone and one short schedule: differences of a few AP "
        "points may not survive another seed or a longer schedule. Timings depend on the device and on the "
        "image size. Synthetic garments are drawn shapes; real photographs are harder, so even well-trained "
        "demo models would say the pipeline works end to end, not how well it does on Fashionpedia."
    )
    return "\n\n".join(parts)


def image_quality(
    gt: dict[str, Any],
    results: list[dict[str, Any]],
    score_threshold: float = 0.5,
    iou_threshold: float = 0.5,
) -> pd.DataFrame:
    """Per image of an annotation file, how well one model's detections cover its ground truth.

    For each ground-truth instance: the best mask IoU among detections of its category scoring at least
    ``score_threshold``. Columns: ``instances``, ``missed`` (best IoU < ``iou_threshold``), ``mean_iou``
    (mean best IoU; NaN for an image without ground truth). Index: image id.
    """
    from pycocotools import mask as mask_utils
    from pycocotools.coco import COCO

    coco = COCO()
    coco.dataset = gt
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints "creating index..."
        coco.createIndex()
    by_image: dict[int, list[dict[str, Any]]] = {}
    for r in results:
        if r["score"] >= score_threshold:
            by_image.setdefault(r["image_id"], []).append(r)
    rows = {}
    for image_id in coco.getImgIds():
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[image_id], iscrowd=False))
        best = []
        for ann in anns:
            dets = [
                d["segmentation"]
                for d in by_image.get(image_id, [])
                if d["category_id"] == ann["category_id"]
            ]
            ious = mask_utils.iou(dets, [coco.annToRLE(ann)], [0]) if dets else np.zeros((0, 1))
            best.append(float(np.max(ious)) if len(dets) else 0.0)
        rows[image_id] = {
            "instances": len(anns),
            "missed": sum(b < iou_threshold for b in best),
            "mean_iou": float(np.mean(best)) if best else float("nan"),
        }
    table = pd.DataFrame(rows).T
    table.index.name = "image_id"
    return table.astype({"instances": int, "missed": int})


def pick_images(
    quality: dict[str, pd.DataFrame], n_examples: int, n_failures: int
) -> tuple[list[int], list[int]]:
    """Validation images to show for every backbone: (examples, failures).

    Failures are the ``n_failures`` images whose ground truth the backbones cover worst (lowest mean IoU,
    averaged over backbones); examples are ``n_examples`` spread evenly over the other image ids (over all of
    them when a tiny split leaves none).
    """
    mean_iou = pd.concat([q["mean_iou"] for q in quality.values()], axis=1).mean(axis=1).dropna()
    failures = [int(i) for i in mean_iou.sort_values(kind="stable").index[:n_failures]]
    rest = [int(i) for i in sorted(mean_iou.index) if i not in failures] or sorted(map(int, mean_iou.index))
    picks = np.unique(np.linspace(0, len(rest) - 1, num=min(n_examples, len(rest))).round().astype(int))
    return [rest[i] for i in picks], failures


def failure_table(quality: dict[str, pd.DataFrame], image_ids: Sequence[int]) -> pd.DataFrame:
    """For the given images: ground-truth instances, and per backbone the missed instances and mean IoU."""
    first = next(iter(quality.values()))
    table = pd.DataFrame({"instances": first.loc[list(image_ids), "instances"]})
    for arch, q in quality.items():
        table[f"{arch} missed"] = q.loc[list(image_ids), "missed"]
        table[f"{arch} mean IoU"] = q.loc[list(image_ids), "mean_iou"].round(2)
    return table


def compare_predictions(
    image_ids: Sequence[int],
    coco: dict[str, Any],
    image_dir: Path,
    predictors: dict[str, Any],
    score_threshold: float = 0.5,
) -> Figure:
    """A grid: one row per image id, ground truth in the first column, then each predictor's detections.

    ``predictors`` maps a backbone name to a :class:`fashionseg.predict.Predictor`.
    """
    from fashionseg.data.images import read_image
    from fashionseg.visualization import draw_annotations, draw_predictions

    meta = {im["id"]: im for im in coco["images"]}
    grouped = annotations_by_image(coco)
    images = [read_image(image_dir / meta[i]["file_name"]) for i in image_ids]
    columns = {arch: p.predict(images) for arch, p in predictors.items()}
    rows = [
        [draw_annotations(image, grouped.get(i, []), coco)]
        + [
            draw_predictions(image, columns[arch][r], p.labels, score_threshold=score_threshold)
            for arch, p in predictors.items()
        ]
        for r, (i, image) in enumerate(zip(image_ids, images, strict=True))
    ]
    return image_grid(rows, [meta[i]["file_name"] for i in image_ids], ["ground truth", *predictors])
