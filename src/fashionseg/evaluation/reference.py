"""The metric's specification: COCO's AP and Fashionpedia's AP^IoU+F1, one image and category at a time.

Slow and plain, as ``COCOeval``'s and FPEval's loops read; the fast path
(:func:`fashionseg.evaluation.accumulate` and :mod:`.summary`) is tested to give the same floats
(tests/test_evaluation_reference.py). The IoUs are pycocotools' (``iou`` of boxes or masks); everything after
them is spelled out here:

1. Per image and category: the ground truths, and the detections by decreasing score, the best 100.
2. Attribute-F1 of a pair: the mean, over the classes "has the attribute" and "has not" that either list
   holds, of 2 |both| / (|ground truth's| + |detection's|), over the attributes of the ground-truth file.
3. Matching, per IoU threshold, F1 threshold and area range: each detection in turn takes a free ground
   truth, scanning the ones not ignored (crowd, or area outside the range) first. It takes the first that
   qualifies (IoU >= t_iou, and F1 >= t_f1 for FPEval) and moves on to a later one only if its IoU (and F1)
   are at least the held ones; holding one not ignored, it stops at the ignored ones. COCO's matcher lets
   a crowd region be taken again; FPEval's, used for the categories with attributes, does not.
4. A detection that took an ignored ground truth, or took none and lies outside the area range, is ignored;
   any other is a true or a false positive. pycocotools records the taken ground truth's id, so taking one
   with id 0 reads as taking none.
5. Precision at recall r: the highest precision at or after the first detection (all images', by decreasing
   score) whose recall reaches r, 0 when none does. Recall: the true positives among each image's first
   1, 10, 100 detections over the ground truths not ignored. Both -1 without such ground truth.
6. AP: the mean precision over the recall thresholds, the IoU thresholds and the slices (a category with
   attributes: one per F1 threshold, in the families that use F1; any other: one, by IoU alone), leaving
   out the -1 entries. The -1 threshold switches its constraint off: IoU -1 gives the F1 family.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from fashionseg.evaluation.coco import coco_from_dict
from fashionseg.evaluation.params import (
    AREA_RANGES,
    F1_THRESHOLDS,
    IOU_THRESHOLDS,
    MAX_DETECTIONS,
    RECALL_THRESHOLDS,
)

OFF = -1  # the index of the -1 ("constraint off") entry of IOU_THRESHOLDS and F1_THRESHOLDS


@dataclass(frozen=True)
class ReferenceCurves:
    """Precision and recall of one IoU type, laid out as :class:`.curves.Accumulation`'s; -1: undefined."""

    precision: np.ndarray  # FPEval [Ti=11, Tf=11, R=101, K, A=4], 100 detections
    recall: np.ndarray  # FPEval [Ti, Tf, K, A, M=3]
    coco_precision: np.ndarray  # COCOeval [T=10, R, K, A]
    coco_recall: np.ndarray  # COCOeval [T, K, A, M]
    with_attributes: tuple[bool, ...]  # [K] categories in id order


@dataclass(frozen=True)
class _Pair:
    """One image and category: its ground truths, its detections (best first) and their IoUs and F1s."""

    gts: list[dict[str, Any]]
    dts: list[dict[str, Any]]
    dt_areas: list[float]
    ious: np.ndarray  # [D, G]
    f1s: list[list[float]]  # [D][G]


def reference_curves(
    gt: dict[str, Any],
    predictions: Sequence[dict[str, Any]],
    iou_type: str,
    attribute_category_ids: Collection[int],
) -> ReferenceCurves:
    """Both evaluators' curves of checked prediction dicts against the checked annotation dict ``gt``."""
    images, categories = sorted(i["id"] for i in gt["images"]), sorted(c["id"] for c in gt["categories"])
    num_t, num_f, num_k, num_a = len(IOU_THRESHOLDS), len(F1_THRESHOLDS), len(categories), len(AREA_RANGES)
    precision = np.full((num_t, num_f, len(RECALL_THRESHOLDS), num_k, num_a), -1.0)
    recall = np.full((num_t, num_f, num_k, num_a, len(MAX_DETECTIONS)), -1.0)
    coco_precision, coco_recall = precision[:-1, OFF].copy(), recall[:-1, OFF].copy()
    coco = coco_from_dict(gt)  # its annToRLE: polygons and uncompressed RLEs as pycocotools reads them
    for k, category in enumerate(categories):
        fpeval = category in attribute_category_ids  # else COCO's matcher, by IoU alone (F1 entry -1 only)
        pairs = [_pair(coco, predictions, image, category, iou_type) for image in images]
        for a, area in enumerate(AREA_RANGES.values()):
            for t, t_iou in enumerate(IOU_THRESHOLDS):
                for f in range(num_f) if fpeval else [OFF]:
                    curve = _curve(pairs, area, t_iou, F1_THRESHOLDS[f], fpeval)
                    precision[t, f, :, k, a], recall[t, f, k, a] = curve
                if t_iou >= 0:  # COCO has no "IoU off" entry
                    coco_precision[t, :, k, a], coco_recall[t, k, a] = _curve(pairs, area, t_iou, -1, False)
    with_attributes = tuple(c in attribute_category_ids for c in categories)
    return ReferenceCurves(precision, recall, coco_precision, coco_recall, with_attributes)


def _pair(
    coco: COCO, predictions: Sequence[dict[str, Any]], image: int, category: int, iou_type: str
) -> _Pair:
    gts = [g for g in coco.dataset["annotations"] if (g["image_id"], g["category_id"]) == (image, category)]
    dts = [d for d in predictions if (d["image_id"], d["category_id"]) == (image, category)]
    dts = sorted(dts, key=lambda d: -d["score"])[: MAX_DETECTIONS[-1]]  # stable: ties keep the file's order
    if iou_type == "bbox":
        dt_geometry, gt_geometry = [d["bbox"] for d in dts], [g["bbox"] for g in gts]
        dt_areas = [d["bbox"][2] * d["bbox"][3] for d in dts]
    else:
        dt_geometry, gt_geometry = [d["segmentation"] for d in dts], [coco.annToRLE(g) for g in gts]
        dt_areas = [float(mask_utils.area(d["segmentation"])) for d in dts]
    crowd = [int(g.get("iscrowd", 0)) for g in gts]
    ious = mask_utils.iou(dt_geometry, gt_geometry, crowd) if dts and gts else np.zeros((len(dts), len(gts)))
    universe = len({a["id"] for a in coco.dataset.get("attributes", [])})
    f1s = [
        [attribute_f1(g.get("attribute_ids") or [], d.get("attribute_ids") or [], universe) for g in gts]
        for d in dts
    ]
    return _Pair(gts, dts, dt_areas, np.asarray(ious), f1s)


def attribute_f1(gt_ids: Collection[int], dt_ids: Collection[int], universe: int) -> float:
    """sklearn's ``f1_score(gt, dt, average="macro")`` of the multi-hot vectors of ``universe`` entries."""
    gt, dt, n = set(gt_ids), set(dt_ids), universe
    classes = [(len(gt & dt), len(gt), len(dt)), (n - len(gt | dt), n - len(gt), n - len(dt))]  # 1 and 0
    scores = [2 * agree / (n_gt + n_dt) for agree, n_gt, n_dt in classes if n_gt + n_dt > 0]
    return sum(scores) / len(scores)


def _curve(
    pairs: list[_Pair], area: tuple[float, float], t_iou: float, t_f1: float, fpeval: bool
) -> tuple[np.ndarray, np.ndarray]:
    """One category's precision [R] and recall [M] at one area range and threshold pair (``accumulate``)."""
    outcomes, num_gt = [], 0  # (score, place in its image's list, true positive, false positive)
    for pair in pairs:
        ignored = [bool(g.get("iscrowd", 0)) or not area[0] <= g["area"] <= area[1] for g in pair.gts]
        num_gt += ignored.count(False)
        for place, taken in enumerate(_match(pair, ignored, t_iou, t_f1, fpeval)):
            matched = taken is not None and pair.gts[taken]["id"] != 0
            skip = ignored[taken] if taken is not None else False
            skip = skip or (not matched and not area[0] <= pair.dt_areas[place] <= area[1])
            outcomes.append((pair.dts[place]["score"], place, matched and not skip, not matched and not skip))
    if num_gt == 0:
        return np.full(len(RECALL_THRESHOLDS), -1.0), np.full(len(MAX_DETECTIONS), -1.0)
    outcomes.sort(key=lambda o: -o[0])  # stable: ties keep the images' order
    tp = np.cumsum([o[2] for o in outcomes], dtype=np.int64).astype(float)
    fp = np.cumsum([o[3] for o in outcomes], dtype=np.int64).astype(float)
    pr = (tp / (fp + tp + np.spacing(1))).tolist()
    for i in range(len(pr) - 1, 0, -1):  # the highest precision at or after each detection
        pr[i - 1] = max(pr[i - 1], pr[i])
    reached = np.searchsorted(tp / num_gt, RECALL_THRESHOLDS, side="left")  # first detection reaching each
    precision = np.array([pr[i] if i < len(pr) else 0.0 for i in reached])
    recall = np.array([sum(o[2] for o in outcomes if o[1] < m) / num_gt for m in MAX_DETECTIONS])
    return precision, recall


def _match(pair: _Pair, ignored: list[bool], t_iou: float, t_f1: float, fpeval: bool) -> list[int | None]:
    """The greedy matching: per detection (best first), the index of the ground truth it takes, or None."""
    scan = sorted(range(len(pair.gts)), key=lambda g: ignored[g])  # ignored last, stable
    taken: set[int] = set()
    out = []
    for d in range(len(pair.dts)):
        best, held_iou, held_f1 = None, min(t_iou, 1 - 1e-10), min(t_f1, 1 - 1e-10)
        for g in scan:
            if g in taken and (fpeval or not pair.gts[g].get("iscrowd", 0)):
                continue
            if best is not None and not ignored[best] and ignored[g]:
                break
            if pair.ious[d, g] < held_iou or (fpeval and pair.f1s[d][g] < held_f1):
                continue
            best, held_iou, held_f1 = g, pair.ious[d, g], pair.f1s[d][g]
        if best is not None:
            taken.add(best)
        out.append(best)
    return out


def reference_summary(curves: ReferenceCurves) -> dict[str, dict[str, float]]:
    """AP, AP at IoU 0.5 and 0.75, APs, APm, APl of COCO ("coco": AP, AP50, AP75, APs, APm, APl) and of each
    family ("iou_f1", "iou", "f1", FPEval's keys, with AP_F150 and AP_F175 in the F1 ones), 0-1 scale."""
    areas, categories = list(AREA_RANGES), range(len(curves.with_attributes))
    every_iou, every_f1 = list(range(len(IOU_THRESHOLDS) - 1)), list(range(len(F1_THRESHOLDS) - 1))
    at_50, at_75 = _at(IOU_THRESHOLDS, 0.5), _at(IOU_THRESHOLDS, 0.75)
    coco_keys = [("AP", every_iou, "all"), ("AP50", at_50, "all"), ("AP75", at_75, "all")]
    coco_keys += [(f"AP{area[0]}", every_iou, area) for area in areas[1:]]
    out = {"coco": {}}
    for key, t, area in coco_keys:
        out["coco"][key] = _mean([curves.coco_precision[t, :, k, areas.index(area)] for k in categories])
    for family, use_iou, use_f1 in (("iou_f1", True, True), ("iou", True, False), ("f1", False, True)):
        ious = every_iou if use_iou else [OFF]
        keys = [("AP", ious, every_f1, "all")] + [(f"AP{a[0]}", ious, every_f1, a) for a in areas[1:]]
        keys += [(f"AP_IOU{v}", t, every_f1, "all") for v, t in ((50, at_50), (75, at_75)) if use_iou]
        keys += [(f"AP_F1{v}", ious, _at(F1_THRESHOLDS, v / 100), "all") for v in (50, 75) if use_f1]
        out[family] = {}
        for key, t, f1s, area in keys:
            slices = [  # category after category, its F1 thresholds in order
                (k, f)
                for k, with_attributes in enumerate(curves.with_attributes)
                for f in (f1s if use_f1 and with_attributes else [OFF])
            ]
            out[family][key] = _mean([curves.precision[t, f, :, k, areas.index(area)] for k, f in slices])
    return out


def _at(thresholds: np.ndarray, value: float) -> list[int]:
    return np.flatnonzero(thresholds == value).tolist()


def _mean(slices: list[np.ndarray]) -> float:
    """The mean of the defined entries of [T, R] arrays, one per slice, laid out [T, R, slices] as FPEval and
    COCOeval lay them (so that the sum runs in their order), -1 when none is defined."""
    values = np.stack(slices, axis=-1)
    defined = values[values > -1]
    return float(np.mean(defined)) if defined.size else -1.0
