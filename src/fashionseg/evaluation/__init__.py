"""Evaluation: COCO AP and Fashionpedia's attribute-aware AP^IoU+F1, on the 0-100 scale.

``evaluate(gt, predictions)`` returns the metrics.json layout of ARCHITECTURE.md::

    {"bbox": {"coco": {AP, AP50, AP75, APs, APm, APl},
              "iou_f1": {AP, AP_IOU50, ..., APo, APp}, "iou": {..., APo, APa, APp}, "f1": {..., APo, APp}},
     "segm": {same},
     "per_category": {name: {"bbox_AP", "bbox_AP_iou", "bbox_AP_iou_f1", "bbox_AP_f1", "segm_AP", ...}},
     "per_supercategory": {"outerwear" | "accessory" | "part": {same keys}}}

Plain COCO results (no entry has ``attribute_ids``, as detectron2's or MMDetection's) get the ``coco``
keys; ``iou_f1``, ``iou`` and ``f1`` are then None, ``not_computed`` says why, and the per-category tables
hold COCO's AP only. A file mixing entries with and without ``attribute_ids`` is refused.

``coco`` is pycocotools' ``COCOeval``'s numbers (tested against :mod:`fashionseg.evaluation.coco`);
``iou_f1``, ``iou`` and ``f1`` are the three families of the official Fashionpedia evaluator (specified one
image at a time by :mod:`fashionseg.evaluation.reference`). Both come from one vectorised pass over the same
IoUs (:mod:`fashionseg.evaluation.attribute_ap`), summarised by :mod:`fashionseg.evaluation.summary`.
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
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from fashionseg.data import ontology
from fashionseg.evaluation.attribute_ap import accumulate
from fashionseg.evaluation.ground_truth import (
    check_ground_truth_attributes,
    ground_truth_source,
    load_ground_truth,
)
from fashionseg.evaluation.pairs import attribute_f1_matrix
from fashionseg.evaluation.results import carries_attributes, check_predictions
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

__all__ = ["attribute_f1_matrix", "evaluate", "eval_supercategories", "write_metrics"]


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
    # COCO's AP matches by IoU alone whatever the attributes: without them it is the same numbers
    accumulations = accumulate(gt, predictions, iou_types, set() if plain else scored, show_progress)
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
