"""The side-by-side chapter (04_qualitative): which validation images to show, why, and what each backbone
misses, from :mod:`fashionseg.evaluation.per_image`'s tables."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fashionseg.report.render import and_list


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


@dataclass(frozen=True)
class FailureChoice:
    """How the failure images shown were chosen (:func:`failure_choice`), which :func:`failure_caption`
    renders."""

    images: int  # validation images with ground truth
    backbones: int  # the backbones the IoUs are averaged and the misses summed over
    mean_iou: list[float]  # each image shown: its mean mask IoU over the backbones
    missed: list[float]  # each image shown: its ground-truth instances missed, summed over the backbones
    zero_iou: int  # images at mean IoU 0 for every backbone
    boundary: float  # the highest mean IoU shown, at two decimals
    tied: int  # images at that mean IoU, shown or not
    tied_shown: int  # images shown at that mean IoU

    @property
    def unranked(self) -> bool:
        """Whether IoU cannot rank them: every image shown, and more besides, is at mean IoU 0, so the misses
        chose them."""
        return all(v == 0 for v in self.mean_iou) and self.zero_iou > len(self.mean_iou)

    @property
    def ties_broken(self) -> bool:
        """Whether more images tie at the boundary IoU than are shown at it: the misses chose among them."""
        return self.tied > self.tied_shown


def failure_choice(quality: dict[str, pd.DataFrame], failures: Sequence[int]) -> FailureChoice | None:
    """What :func:`pick_images`' ``failures`` are, from the backbones' ``quality`` (image id -> mean IoU,
    missed, instances; :func:`fashionseg.evaluation.per_image.image_quality`); None without failures."""
    if not failures:
        return None
    order = _failure_order(quality)
    shown = order.loc[list(failures)]
    boundary = shown["rounded_iou"].max()
    return FailureChoice(
        images=len(order),
        backbones=len(quality),
        mean_iou=shown["mean_iou"].tolist(),
        missed=shown["missed"].tolist(),
        zero_iou=int((order["mean_iou"] == 0).sum()),
        boundary=boundary,
        tied=int((order["rounded_iou"] == boundary).sum()),
        tied_shown=int((shown["rounded_iou"] == boundary).sum()),
    )


def failure_caption(quality: dict[str, pd.DataFrame], failures: Sequence[int]) -> str:
    """What the failure images shown are and how they were chosen (:func:`failure_choice`), true also when
    they tie (one or two sentences; plain text, to paste with glue)."""
    choice = failure_choice(quality, failures)
    if choice is None:
        return "No validation image has ground truth to fail on."
    k = len(choice.mean_iou)
    missed = ", ".join(f"{m:.0f}" for m in choice.missed)
    per = f"summed over the {choice.backbones} backbones" if choice.backbones > 1 else "by the backbone"
    if choice.unranked:
        return (
            f"{choice.zero_iou} of the {choice.images} validation images have mean mask IoU 0 for every "
            "backbone: no detection covers any of their ground truth, so IoU cannot rank them. Shown are the "
            f"{k} of them with the most ground-truth instances missed ({missed}, {per})."
        )
    text = (
        f"The {k} validation images of {choice.images} whose ground truth the backbones cover worst: lowest "
        f"mean mask IoU, averaged over the backbones ({', '.join(f'{v:.2f}' for v in choice.mean_iou)})."
    )
    if choice.ties_broken:
        text += (
            f" {choice.tied} images tie at mean IoU {choice.boundary:.2f}; among them those with the most "
            f"instances missed are shown ({missed}, {per})."
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


@dataclass(frozen=True)
class CategoryMisses:
    """What one backbone misses by category (:func:`category_misses`), which :func:`missed_categories_text`
    renders."""

    categories: int  # categories with validation instances
    missed_entirely: list[str]  # those of which it misses every instance
    worst: str | None = None  # when it misses none entirely: the category with the largest share missed
    worst_missed: int = 0  # its instances missed
    worst_instances: int = 0  # its instances


def category_misses(misses: Mapping[str, pd.DataFrame]) -> dict[str, CategoryMisses]:
    """Per backbone, its :func:`fashionseg.evaluation.per_image.missed_by_category` table as a verdict."""
    out = {}
    for arch, m in misses.items():
        present = m[m["instances"] > 0]
        every = [str(c) for c in present.index if present.loc[c, "missed"] == present.loc[c, "instances"]]
        if every or not len(present):
            out[arch] = CategoryMisses(len(present), every)
        else:
            worst = present["missed_share"].astype(float).idxmax()
            missed, instances = int(present.loc[worst, "missed"]), int(present.loc[worst, "instances"])
            out[arch] = CategoryMisses(len(present), every, str(worst), missed, instances)
    return out


def missed_categories_text(misses: Mapping[str, pd.DataFrame]) -> str:
    """Which categories each backbone misses entirely, and its most missed one otherwise (one sentence
    per backbone, from :func:`category_misses`)."""
    sentences = []
    for arch, verdict in category_misses(misses).items():
        every = [f"“{c}”" for c in verdict.missed_entirely]
        n = verdict.categories
        if every:
            share = f"all {n}" if len(every) == n else f"{len(every)} of the {n}"
            sentences.append(
                f"{arch} misses every validation instance of {share} categories: {and_list(every)}."
            )
        elif verdict.worst is not None:
            sentences.append(
                f"{arch} finds at least one instance of every category; it misses most of "
                f"“{verdict.worst}” ({verdict.worst_missed} of {verdict.worst_instances})."
            )
    return " ".join(sentences)
