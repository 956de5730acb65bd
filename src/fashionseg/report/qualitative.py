"""The side-by-side chapter (04_qualitative): which validation images to show, why, and what each backbone
misses, from :mod:`fashionseg.evaluation.per_image`'s tables."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

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
