"""Evaluation: COCO AP and Fashionpedia's attribute-aware AP^IoU+F1, on the 0-100 scale, read top-down.

``evaluate(gt, predictions)`` returns the metrics.json layout of ARCHITECTURE.md::

    {"bbox": {"coco": {AP, AP50, AP75, APs, APm, APl},
              "iou_f1": {AP, AP_IOU50, ..., APo, APp}, "iou": {..., APo, APa, APp}, "f1": {..., APo, APp}},
     "segm": {same},
     "per_category": {name: {"bbox_AP", "bbox_AP_iou", "bbox_AP_iou_f1", "bbox_AP_f1", "segm_AP", ...}},
     "per_supercategory": {"outerwear" | "accessory" | "part": {same keys}}}

This module is the metric's driver: :func:`evaluate` checks the two inputs, :func:`accumulate` runs the
stages, one module each, and :func:`evaluate` summarises their curves:

0. :mod:`.ground_truth` and :mod:`.results`: the annotation file and the predictions, loaded and checked;
1. :mod:`.instances`: ground truths and detections as flat arrays (image, category, area, crowd, ...);
2. :mod:`.pairs`: the image-category pairs with both, bucketed by size, with their IoUs and attribute F1s;
3. :mod:`.matching`: COCO's and FPEval's greedy matching, every threshold and area range at once;
4. :mod:`.curves`: precision at the 101 recall thresholds, and recall -> :class:`.curves.Accumulation`;
5. :mod:`.summary`: the means, COCO's (:func:`.summary.coco_result`) and FPEval's families.

Nothing loops over categories or detections. ``coco`` is pycocotools' ``COCOeval``'s numbers (tested against
:mod:`fashionseg.evaluation.coco`); ``iou_f1``, ``iou`` and ``f1`` are the three families of the official
Fashionpedia evaluator, the ``fashionpedia`` package's ``FPEval`` (a ``COCOeval`` subclass), whose definition,
one image and category at a time, is written out in :mod:`fashionseg.evaluation.reference`, the
specification this fast path is tested to equal float for float:

- Per image and category, detections by decreasing score (at most 100) are matched greedily to the ground
  truths in COCO's order (crowd and out-of-area ground truths last). A pair qualifies when IoU >= t_iou AND
  attribute-F1 >= t_f1; a detection keeps the first qualifying ground truth, and a later one replaces it only
  when both its IoU and its F1 are at least the held ones. Crowd regions match once (COCO lets them match
  many times; FPEval's matcher does not).
- t_iou and t_f1 each run 0.50:0.05:0.95 plus a -1 entry that switches that constraint off: the -1 F1 entry
  gives the IoU-only family, the -1 IoU entry the F1-only family.
- Attribute-F1 of a pair is sklearn's ``f1_score(gt, pred, average="macro")`` of the two multi-hot vectors
  over all attributes listed in the ground-truth file (:func:`.pairs.attribute_f1_matrix`).
- Categories without attributes are matched by IoU alone with COCO's matcher (crowds match many times).
- Headline means run over "slices": each category with attributes gives one slice per F1 threshold (10),
  every other category one slice scored by IoU alone; Fashionpedia has 18*10 + 28 = 208. Slices without
  ground truth (-1) are left out of means.

COCO's AP comes out of the same pass, from the same IoUs: it is every category matched by COCO's matcher,
which the categories without attributes already are; only the categories with attributes are matched once
more, by IoU alone. Its curves are laid out as ``COCOeval.eval``'s, so that :func:`.summary.coco_result`
summarises them with pycocotools' own reductions and gets its exact floats.

Plain COCO results (no entry has ``attribute_ids``, as detectron2's or MMDetection's) get the ``coco``
keys; ``iou_f1``, ``iou`` and ``f1`` are then None, ``not_computed`` says why, and the per-category tables
hold COCO's AP only. A file mixing entries with and without ``attribute_ids`` is refused.
``<type>_AP`` in the per-category and per-supercategory tables is COCO's AP, the others the families' AP; the
IoU+F1 and F1 keys are absent where no category carries attributes. A value is None (JSON null) where there
is no ground truth to score, as pycocotools' -1; with ground truth but no predictions it is 0.0.

Which categories carry attributes: Fashionpedia's 18 (:func:`fashionseg.data.ontology.attribute_category_ids`)
by default. A dataset with other ids declares its own with ``attribute_category_ids=[...]`` (command line:
``--attribute-categories 3,7,9``), or ``()`` / ``none`` to score every category by IoU alone. APo / APa / APp
group the categories whose id and name are Fashionpedia's by the ontology's ``eval_supercategory``.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import tempfile
from collections.abc import Collection, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fashionseg.data import ontology
from fashionseg.evaluation.curves import Accumulation, ScoreOrder, group_curves
from fashionseg.evaluation.ground_truth import (
    check_ground_truth_attributes,
    ground_truth_source,
    load_ground_truth,
)
from fashionseg.evaluation.instances import Instances, dt_instances, gt_instances, outside_area_ranges
from fashionseg.evaluation.matching import match_buckets
from fashionseg.evaluation.pairs import Bucket, pair_buckets
from fashionseg.evaluation.params import (
    AREA_RANGES,
    F1_THRESHOLDS,
    IOU_THRESHOLDS,
    MAX_DETECTIONS,
    RECALL_THRESHOLDS,
)
from fashionseg.evaluation.results import Predictions, carries_attributes, check_predictions
from fashionseg.evaluation.summary import (
    FAMILIES,
    coco_result,
    family_metrics,
    summary_value,
    supercategory_has_attributes,
)

# Why Fashionpedia's three families are left out for plain COCO results: FPEval matches the categories with
# attributes on attribute F1 too (the IoU family as well: F1 breaks ties, crowds match once), so no value
# exists without attributes.
NOT_COMPUTED = (
    "the predictions carry no attribute_ids: Fashionpedia's IoU+F1, IoU and F1 families match the categories "
    "with attributes on attribute F1 too, so only COCO AP is computed (--attribute-categories none scores "
    "every category by IoU alone)"
)

__all__ = ["accumulate", "evaluate", "eval_supercategories", "write_metrics"]


def evaluate(
    gt: str | Path | dict[str, Any],
    predictions: str | Path | Sequence[dict[str, Any]],
    iou_types: Sequence[str] = ("bbox", "segm"),
    attribute_category_ids: Iterable[int] | None = None,
    show_progress: bool = True,
) -> dict[str, Any]:
    """COCO and Fashionpedia metrics of ``predictions`` (COCO results, with ``attribute_ids`` for
    Fashionpedia's families) against ``gt``.

    ``gt``: an annotation file or its parsed dict (not modified); ``predictions``: a results file or list.
    Bad input raises :class:`fashionseg.errors.FashionsegError` naming the entry. Returns the layout in the
    module docstring, 0-100 scale.
    """
    with _collector_paused():
        return _evaluate(gt, predictions, iou_types, attribute_category_ids, show_progress)


def _evaluate(
    gt: str | Path | dict[str, Any],
    predictions: str | Path | Sequence[dict[str, Any]],
    iou_types: Sequence[str],
    attribute_category_ids: Iterable[int] | None,
    show_progress: bool,
) -> dict[str, Any]:
    iou_types = (iou_types,) if isinstance(iou_types, str) else tuple(iou_types)
    attribute_ids = (
        ontology.attribute_category_ids() if attribute_category_ids is None else tuple(attribute_category_ids)
    )
    # 0. the inputs, checked
    source = ground_truth_source(gt)
    # the attribute checks of the ground truth wait for the predictions: plain COCO results need none
    gt = load_ground_truth(gt, iou_types, ())
    category_ids = sorted(c["id"] for c in gt["categories"])
    scored = set(attribute_ids) & set(category_ids)
    predictions = check_predictions(
        predictions, gt, iou_types, require_attribute_ids=None if scored else False
    )
    plain = bool(scored) and not carries_attributes(predictions)
    if scored and not plain:
        check_ground_truth_attributes(gt, source, scored)
    names = {c["id"]: c["name"] for c in gt["categories"]}
    supercategories = eval_supercategories(gt["categories"])

    metrics: dict[str, Any] = {}
    per_category: dict[str, dict[str, float | None]] = {names[c]: {} for c in category_ids}
    per_supercategory: dict[str, dict[str, float | None]] = {name: {} for name in supercategories}
    # 1-4. the curves (COCO's AP matches by IoU alone whatever the attributes: without them it is the same
    # numbers)
    accumulations = accumulate(gt, predictions, iou_types, set() if plain else scored, show_progress)
    # 5. the summaries: COCO's, each family's, per category and supercategory
    for iou_type, acc in accumulations.items():
        coco = coco_result(acc.coco_precision, acc.coco_recall, acc.category_ids)
        metrics[iou_type] = {"coco": coco.metrics()} | {
            family: None if plain else _percent(family_metrics(acc, family, supercategories))
            for family in FAMILIES
        }
        groups = [(per_category[names[c]], [c]) for c in category_ids]
        groups += [(per_supercategory[name], list(ids)) for name, ids in supercategories.items()]
        for table, members in groups:
            table[f"{iou_type}_AP"] = coco.category_ap(members)
            for family in () if plain else ("iou", "iou_f1", "f1"):
                if family == "iou" or supercategory_has_attributes(acc, members):
                    table[f"{iou_type}_AP_{family}"] = _percent_value(summary_value(acc, family, members))
    metrics |= {"per_category": per_category, "per_supercategory": per_supercategory}
    if plain:
        metrics["not_computed"] = {family: NOT_COMPUTED for family in FAMILIES}
    return metrics


def accumulate(
    gt: dict[str, Any],
    predictions: Predictions | Sequence[dict[str, Any]],
    iou_types: Sequence[str],
    attribute_category_ids: Collection[int],
    show_progress: bool = False,
) -> dict[str, Accumulation]:
    """FPEval's and COCOeval's ``evaluate`` + ``accumulate`` of checked ``predictions`` against ``gt``.

    ``gt`` is the annotation dict, ``predictions`` :class:`Predictions` or checked prediction dicts. One
    :class:`Accumulation` per IoU type of ``iou_types`` ("bbox": box IoU and area; "segm": mask IoU and
    area); ``attribute_category_ids`` are the categories FPEval matches on IoU and attribute-F1, the others
    by IoU alone. Work that does not depend on the IoU type (ordering, pairing, F1) is done once, and the
    IoUs once for both evaluators.
    """
    category_ids = tuple(sorted(c["id"] for c in gt["categories"]))
    num_cats = len(category_ids)
    with_attributes = np.array([c in set(attribute_category_ids) for c in category_ids], dtype=bool)
    if not isinstance(predictions, Predictions):
        predictions = Predictions.from_dicts(predictions, iou_types)
    # 1. instances
    gts = gt_instances(gt["annotations"], gt, iou_types, category_ids, with_attributes)
    dts = dt_instances(predictions, gt, category_ids, with_attributes)

    # Ground truths by (image, category) in file order; detections by (image, category, decreasing score),
    # the best 100 of each. Images in id order, as COCOeval concatenates them.
    gt_order = np.lexsort((gts.category, gts.image))
    dt_pair = dts.image * num_cats + dts.category
    dt_order = np.lexsort((-dts.score, dt_pair))
    dt_key = dt_pair[dt_order]
    rank = np.arange(dt_order.size) - np.searchsorted(dt_key, dt_key)
    kept = rank < MAX_DETECTIONS[-1]
    dt_order, dt_key, rank = dt_order[kept], dt_key[kept], rank[kept]
    gt_ignore = gts.crowd[:, None] | outside_area_ranges(gts.area[iou_types[0]])  # [n_gt, A]; all types
    # 2. pairs
    buckets, candidates = pair_buckets(
        gts, dts, gt_order, dt_order, num_cats, with_attributes, iou_types, show_progress
    )
    order, rows = _score_order(dts, dt_order, dt_key % num_cats, rank, candidates, num_cats)
    # 3. and 4. per IoU type
    return {
        iou_type: _accumulation(
            buckets,
            iou_type,
            gts,
            gt_ignore,
            candidates.size,
            order,
            outside_area_ranges(dts.area[iou_type][dt_order[rows]]),
            category_ids,
            with_attributes,
        )
        for iou_type in iou_types
    }


def _score_order(
    dts: Instances,
    dt_order: np.ndarray,
    category: np.ndarray,
    rank: np.ndarray,
    candidates: np.ndarray,
    num_cats: int,
) -> tuple[ScoreOrder, np.ndarray]:
    """The kept detections category after category, each by decreasing score (ties: image order, as
    COCOeval's stable sort of the images' lists laid end to end), and that order ``rows`` of ``dt_order``.

    ``category`` and ``rank`` [n] are the kept detections' (in ``dt_order``); ``candidates`` the ones in
    a pair with ground truth, which the matching results are indexed by.
    """
    rows = np.lexsort((-dts.score[dt_order], category))
    candidate_of = np.full(dt_order.size, -1)
    candidate_of[candidates] = np.arange(candidates.size)
    order = ScoreOrder(
        category[rows],
        np.searchsorted(category[rows], np.arange(num_cats + 1)),
        rank[rows],
        candidate_of[rows],
    )
    return order, rows


def _accumulation(
    buckets: dict[tuple[int, int, bool], Bucket],
    iou_type: str,
    gts: Instances,
    gt_ignore: np.ndarray,
    num_candidates: int,
    order: ScoreOrder,
    outside: np.ndarray,
    category_ids: tuple[int, ...],
    with_attributes: np.ndarray,
) -> Accumulation:
    """Both evaluators' curves for one IoU type: the buckets matched, then each group's curves."""
    num_cats = len(category_ids)
    num_gt = np.stack(  # [K, A] ground truths not ignored
        [np.bincount(gts.category[~ignore], minlength=num_cats) for ignore in gt_ignore.T], 1
    )
    # 3. matching
    fp, coco = match_buckets(buckets, iou_type, gts, gt_ignore, num_candidates)
    attribute_k, plain_k = np.flatnonzero(with_attributes), np.flatnonzero(~with_attributes)
    thresholds = (len(IOU_THRESHOLDS), len(F1_THRESHOLDS))
    precision = np.full((*thresholds, len(RECALL_THRESHOLDS), num_cats, len(AREA_RANGES)), -1.0)
    recall = np.full((*thresholds, num_cats, len(AREA_RANGES), len(MAX_DETECTIONS)), -1.0)
    coco_thresholds = len(IOU_THRESHOLDS) - 1  # COCO has no "IoU off" entry
    coco_precision = np.full((coco_thresholds, len(RECALL_THRESHOLDS), num_cats, len(AREA_RANGES)), -1.0)
    coco_recall = np.full((coco_thresholds, num_cats, len(AREA_RANGES), len(MAX_DETECTIONS)), -1.0)
    # 4. curves. FPEval on the categories with attributes: every IoU and F1 threshold.
    p, r = group_curves(*fp, attribute_k, order, outside, num_gt)
    precision[:, :, :, attribute_k], recall[:, :, attribute_k] = p, r
    # The others: COCO's matcher for both (FPEval fills only its F1 entry -1 for them).
    p, r = group_curves(*coco, plain_k, order, outside, num_gt)
    precision[:, -1:, :, plain_k], recall[:, -1:, plain_k] = p, r
    coco_precision[:, :, plain_k], coco_recall[:, plain_k] = p[:-1, 0], r[:-1, 0]
    # COCO on the categories with attributes: matched once more, by IoU alone.
    p, r = group_curves(coco[0][:, :-1], coco[1][:, :-1], attribute_k, order, outside, num_gt)
    coco_precision[:, :, attribute_k], coco_recall[:, attribute_k] = p[:, 0], r[:, 0]
    return Accumulation(precision, recall, category_ids, with_attributes, coco_precision, coco_recall)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for the duration (and back on after, if it was on).

    Reading the files makes millions of dicts and lists; each full collection then walks them all, and
    allocations trigger several: a fifth of evaluate()'s time with 100 detections an image. The evaluation
    makes no reference cycles, so collecting can wait until it is done.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def eval_supercategories(categories: Sequence[dict[str, Any]]) -> dict[str, tuple[int, ...]]:
    """Outerwear / accessory / part -> the ids in ``categories`` that are Fashionpedia's (same id and name).

    The official evaluator's grouping for APo / APa / APp; empty groups are left out.
    """
    fashionpedia = {c.id: c for c in ontology.categories()}
    groups: dict[str, list[int]] = {name: [] for name in ontology.EVAL_SUPERCATEGORIES}
    for c in sorted(categories, key=lambda c: c["id"]):
        known = fashionpedia.get(c["id"])
        if known is not None and known.name == c["name"]:
            groups[known.eval_supercategory].append(c["id"])
    return {name: tuple(ids) for name, ids in groups.items() if ids}


def write_metrics(metrics: dict[str, Any], path: str | Path) -> Path:
    """Write ``metrics`` as indented JSON to ``path`` atomically (no partial file replaces a good one)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(metrics, f, indent=1)
        f.write("\n")
    os.replace(tmp, path)
    return path


def _percent(values: dict[str, float]) -> dict[str, float | None]:
    return {key: _percent_value(value) for key, value in values.items()}


def _percent_value(value: float) -> float | None:
    return None if value < 0 else 100.0 * value
