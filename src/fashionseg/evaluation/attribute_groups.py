"""Attribute agreement per attribute group (textile pattern, length, silhouette, neckline type, ...).

AP^IoU+F1 pools all 294 attributes into one F1 per detection, so it cannot say which kinds of attribute a
backbone gets right; a practitioner choosing one asks exactly that ("does it see patterns but not
lengths?"). This table answers it with micro precision, recall and F1 per group.

It scores only the garments a model found: detections matched one-to-one to ground truth by mask IoU. A
backbone that finds fewer garments is scored on fewer (and perhaps easier) ones, so read it beside
detection AP, and beside ``gt_instances``, which says how many of a group's instances there were to find.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

import numpy as np
import pandas as pd
from pycocotools import mask as mask_utils

from fashionseg.data import ontology
from fashionseg.errors import FashionsegError
from fashionseg.evaluation.coco import coco_from_dict

COLUMNS = ("instances", "precision", "recall", "f1", "gt_instances")


def _groups_of(ids: Iterable[int], where: str) -> dict[str, set[int]]:
    """Attribute ids split by group (their ontology supercategory); an unknown id is the user's error."""
    groups: dict[str, set[int]] = {}
    for attribute_id in ids:
        try:
            group = ontology.attribute(int(attribute_id)).supercategory
        except KeyError:
            raise FashionsegError(
                f"{where}: attribute id {attribute_id} is not a Fashionpedia attribute"
            ) from None
        groups.setdefault(group, set()).add(int(attribute_id))
    return groups


def _match(
    ious: np.ndarray, det_categories: list[int], gt_categories: list[int], iou_threshold: float
) -> list[tuple[int, int]]:
    """Greedy one-to-one matching: each detection (rows, by descending score) takes the unmatched
    same-category ground truth (columns) of highest IoU, if that IoU is at least ``iou_threshold``."""
    taken: set[int] = set()
    pairs = []
    for i, category_id in enumerate(det_categories):
        candidates = [
            j
            for j, gt_category in enumerate(gt_categories)
            if j not in taken and gt_category == category_id and ious[i, j] >= iou_threshold
        ]
        if candidates:
            best = max(candidates, key=lambda j: ious[i, j])  # the first of equal IoUs
            taken.add(best)
            pairs.append((i, best))
    return pairs


def _percent(numerator: int, denominator: int) -> float:
    return 100.0 * numerator / denominator if denominator else float("nan")


def attribute_group_scores(
    gt: dict[str, Any],
    results: list[dict[str, Any]],
    score_threshold: float = 0.5,
    iou_threshold: float = 0.5,
    attribute_category_ids: Collection[int] | None = None,
) -> pd.DataFrame:
    """Per attribute group, how well one model's predicted attributes agree with the ground truth.

    Per image, detections scoring at least ``score_threshold`` (by descending score) are matched greedily
    one-to-one to non-crowd ground truths of their category with mask IoU >= ``iou_threshold``. Only
    categories in ``attribute_category_ids`` are scored (default: Fashionpedia's 18 that the official
    evaluation scores with attributes; the model's attribute head trains on no others). For each matched
    pair and group: TP = predicted ∩ true ids of the group, FP = predicted - true, FN = true - predicted.

    Index: each group with ground truth, in the ontology's order. Columns: ``instances`` (matched pairs
    whose ground truth has an attribute of the group), ``precision``, ``recall``, ``f1`` (micro over all
    pairs, 0-100; f1 = 2TP / (2TP + FP + FN); NaN where the denominator is 0), ``gt_instances`` (ground
    truths with an attribute of the group, matched or not).
    """
    scored = set(
        ontology.attribute_category_ids() if attribute_category_ids is None else attribute_category_ids
    )
    coco = coco_from_dict(gt)
    by_image: dict[int, list[tuple[dict[str, Any], dict[str, set[int]]]]] = {}
    for n, r in enumerate(results):
        predicted = _groups_of(r.get("attribute_ids", []), f"detection {n} (image {r['image_id']})")
        if r["score"] >= score_threshold and r["category_id"] in scored:
            by_image.setdefault(r["image_id"], []).append((r, predicted))
    counts: dict[str, np.ndarray] = {}  # group -> [instances, gt_instances, TP, FP, FN]
    for image_id in coco.getImgIds():
        anns = [
            a
            for a in coco.loadAnns(coco.getAnnIds(imgIds=[image_id], iscrowd=False))
            if a["category_id"] in scored
        ]
        truths = [_groups_of(a.get("attribute_ids", []), f"ground-truth annotation {a['id']}") for a in anns]
        for true in truths:
            for group in true:
                counts.setdefault(group, np.zeros(5, dtype=np.int64))[1] += 1
        dets = sorted(by_image.get(image_id, []), key=lambda d: -d[0]["score"])  # stable: ties keep order
        if not dets or not anns:
            continue
        ious = mask_utils.iou(
            [d["segmentation"] for d, _ in dets], [coco.annToRLE(a) for a in anns], [0] * len(anns)
        )
        pairs = _match(
            np.asarray(ious),
            [d["category_id"] for d, _ in dets],
            [a["category_id"] for a in anns],
            iou_threshold,
        )
        for i, j in pairs:
            predicted, true = dets[i][1], truths[j]
            for group in true.keys() | predicted.keys():
                p, t = predicted.get(group, set()), true.get(group, set())
                count = counts.setdefault(group, np.zeros(5, dtype=np.int64))
                count += [bool(t), 0, len(p & t), len(p - t), len(t - p)]
    rows = {}
    for group in ontology.attribute_groups():
        if group not in counts or not counts[group][1]:
            continue  # a group only predicted, never true, has no row
        instances, gt_instances, tp, fp, fn = (int(x) for x in counts[group])
        rows[group] = {
            "instances": instances,
            "precision": _percent(tp, tp + fp),
            "recall": _percent(tp, tp + fn),
            "f1": _percent(2 * tp, 2 * tp + fp + fn),
            "gt_instances": gt_instances,
        }
    table = pd.DataFrame.from_dict(rows, orient="index", columns=list(COLUMNS))
    table.index.name = "attribute_group"
    return table.astype(
        {"instances": int, "gt_instances": int, "precision": float, "recall": float, "f1": float}
    )
