"""Seaborn figures of the trend statistics: trend lines with bootstrap bands, and heatmaps.

Every function takes tables of :mod:`fashionseg.trends.stats` and returns a matplotlib ``Figure`` built
without pyplot (no global figure state, no display needed), so a notebook shows it inline and
:func:`write_plots` saves it as PNG.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from fashionseg.trends.stats import Statistics


def plot_trends(
    by_group: pd.DataFrame, features: Sequence[str], levels: Sequence[str] | None = None, columns: int = 3
) -> Figure:
    """One panel per feature: its share per group with the 95% bootstrap band.

    ``by_group`` is :attr:`TrendResult.by_group` (columns feature, group, share, ci_low, ci_high); when it
    has a ``source`` column (e.g. "model" and "ground truth"), each panel draws one line per source. The
    x axis follows ``levels`` (default: the group column's categories, else the order of appearance).
    """
    features = list(features)
    groups = by_group["group"]
    if levels is None:
        levels = list(groups.cat.categories) if isinstance(groups.dtype, pd.CategoricalDtype) else None
    levels = [str(v) for v in (levels if levels is not None else dict.fromkeys(groups))]
    rows = max(1, math.ceil(len(features) / columns))
    ncols = max(1, min(columns, len(features)))
    fig = Figure(figsize=(4 * ncols, 3 * rows), layout="constrained")
    axes = fig.subplots(rows, ncols, squeeze=False).ravel()
    sources = list(dict.fromkeys(by_group["source"])) if "source" in by_group else [None]
    palette = dict(zip(sources, sns.color_palette("colorblind", len(sources)), strict=True))
    x = np.arange(len(levels))
    for ax, feature in zip(axes, features, strict=False):
        for source in sources:
            line = by_group[by_group["feature"] == feature]
            if source is not None:
                line = line[line["source"] == source]
            line = line.set_index(line["group"].astype(str)).reindex(levels)
            color = palette[source]
            ax.fill_between(x, line["ci_low"], line["ci_high"], color=color, alpha=0.2, linewidth=0)
            sns.lineplot(x=x, y=line["share"].to_numpy(), marker="o", color=color, label=source, ax=ax)
        ax.set(title=feature, xlabel="", ylabel="share", ylim=(0, 1), xticks=x, xticklabels=levels)
    for ax in axes[len(features) :]:
        ax.set_visible(False)
    return fig


def _percent_heatmap(table: pd.DataFrame, figsize: tuple[float, float], cmap: str, label: str) -> Figure:
    """A heatmap of shares (0-1) annotated in whole percent on a fixed 0-100 colour scale."""
    fig = Figure(figsize=figsize, layout="constrained")
    ax = fig.subplots()
    sns.heatmap(
        table * 100, annot=True, fmt=".0f", cmap=cmap, vmin=0, vmax=100, ax=ax, cbar_kws={"label": label}
    )
    ax.set(xlabel="", ylabel="")
    return fig


def plot_share_heatmap(by_group: pd.DataFrame, features: Sequence[str]) -> Figure:
    """Feature x group heatmap of the shares (annotated in %)."""
    table = (
        by_group[by_group["feature"].isin(features)]
        .pivot_table(index="feature", columns="group", values="share", observed=True)
        .reindex(list(features))
    )
    figsize = (1.2 * table.shape[1] + 3, 0.35 * len(table) + 1.5)
    return _percent_heatmap(table, figsize, "viridis", "share (%)")


def plot_category_prevalence(prevalence: pd.DataFrame, top: int = 20) -> Figure:
    """Bar chart of the share of images containing each category (the ``top`` most frequent)."""
    table = prevalence.head(top)
    fig = Figure(figsize=(6, 0.3 * len(table) + 1.2), layout="constrained")
    ax = fig.subplots()
    sns.barplot(table, x="share", y="category_name", color=sns.color_palette("colorblind")[0], ax=ax)
    ax.set(xlabel="share of images", ylabel="", xlim=(0, 1))
    return fig


def plot_attribute_heatmap(attribute_prevalence: pd.DataFrame, top: int = 15) -> Figure:
    """Category x attribute heatmap of attribute prevalence, for the ``top`` most frequent attributes."""
    frequent = (
        attribute_prevalence.groupby("attribute_name")["instances_with"].sum().nlargest(top).index.tolist()
    )
    table = attribute_prevalence[attribute_prevalence["attribute_name"].isin(frequent)].pivot_table(
        index="category_name", columns="attribute_name", values="share"
    )
    figsize = (0.5 * max(1, table.shape[1]) + 3, 0.4 * max(1, len(table)) + 2)
    return _percent_heatmap(table, figsize, "mako", "share of the category's instances (%)")


def plot_cooccurrence(cooccurrence: pd.DataFrame, top: int = 15) -> Figure:
    """Heatmap of P(column attribute | row attribute) on the same instance, for the ``top`` attributes."""
    counts = cooccurrence.groupby("name_a")["n_a"].first().nlargest(top)
    names = counts.index.tolist()
    table = (
        cooccurrence[cooccurrence["name_a"].isin(names) & cooccurrence["name_b"].isin(names)]
        .pivot_table(index="name_a", columns="name_b", values="p_b_given_a")
        .reindex(index=names, columns=names)
    )
    figsize = (0.5 * max(1, len(names)) + 3, 0.4 * max(1, len(names)) + 2)
    return _percent_heatmap(table, figsize, "rocket_r", "P(column | row) on one instance (%)")


def write_plots(stats: Statistics, out_dir: Path) -> list[Path]:
    """Save the figures of one statistics run as ``out_dir/<name>.png``; returns the files written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    figures = {"category_prevalence": plot_category_prevalence(stats.category_prevalence)}
    if not stats.attribute_prevalence.empty:
        figures["attribute_prevalence"] = plot_attribute_heatmap(stats.attribute_prevalence)
    if not stats.cooccurrence.empty:
        figures["attribute_cooccurrence"] = plot_cooccurrence(stats.cooccurrence)
    if stats.trend is not None and not stats.trend.change.empty:
        moving = pd.concat([stats.risers, stats.fallers])["feature"].tolist()
        if moving:
            figures["trends_risers_fallers"] = plot_trends(stats.trend.by_group, moving)
        strongest = stats.trend.change.sort_values("p_trend", kind="stable").head(20)["feature"].tolist()
        figures["trend_heatmap"] = plot_share_heatmap(stats.trend.by_group, strongest)
    written = []
    for name, fig in figures.items():
        path = out_dir / f"{name}.png"
        fig.savefig(path, dpi=110)
        written.append(path)
    return written
