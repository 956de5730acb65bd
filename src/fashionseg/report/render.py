"""How the report shows things, written once: figures saved as the files the book shows, numbers as plain
floats, lists and rankings as words (ties as ties). Every chapter module renders through these."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import seaborn as sns
from IPython.display import Image as DisplayImage
from matplotlib.figure import Figure
from PIL import Image


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


def plot_frequencies(table: pd.DataFrame, label: str, hue: str, title: str) -> Figure:
    """A horizontal bar chart of ``table["instances"]`` per ``label``, coloured by ``hue``."""
    fig = Figure(figsize=(8, 0.28 * len(table) + 1.2), layout="constrained")
    ax = fig.subplots()
    sns.barplot(data=table, y=label, x="instances", hue=hue, dodge=False, ax=ax)
    ax.set(title=title, ylabel="")
    ax.legend(fontsize="small", title=hue)
    return fig


def number(value: Any) -> float:
    """A plain float (nan for a missing value) so that glue stores ``3.1``, not ``np.float64(3.1)``."""
    return float("nan") if value is None else float(value)


def label(key: str) -> str:
    """``mask_AP50`` -> ``mask AP50`` (the table headers the seed uses)."""
    return key.replace("_", " ")


def and_list(items: Sequence[str]) -> str:
    """``a``, ``a and b``, ``a, b and c`` (empty for no items)."""
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} and {items[-1]}"


def values_text(values: Sequence[Any]) -> str:
    """``300`` when all runs agree, else ``300 and 1000`` (the distinct values in order)."""
    return and_list([str(v) for v in dict.fromkeys(values)])


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


def tie_text(group: Sequence[str]) -> str:
    """A group of :func:`rank_groups` by name: ``R50-FPN``, or ``R50-C4 and R50-DC5 (tied)``."""
    return group[0] if len(group) == 1 else f"{and_list(group)} (tied)"


def best_text(values: pd.Series, decimals: int = 1, ascending: bool = False) -> str:
    """The best of ``values`` by name, or the tied best: ``R50-FPN``, ``R50-C4 and R50-DC5 (tied)``."""
    groups = rank_groups(values, decimals, ascending)
    return tie_text(groups[0]) if groups else "none"
