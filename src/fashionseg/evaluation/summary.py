"""Stage 5 of the fast path: the summary numbers of the accumulated curves, COCO's and FPEval's.

Each is a mean over a selection of the precision (or recall) array, taken as pycocotools' and FPEval's own
reductions take it: the same values in the same order, so the floats are theirs, not just close to them.
COCO: AP over IoU 0.50:0.95, AP50, AP75, APs/m/l, AR@1/10/100, ARs/m/l (:func:`coco_result`). FPEval, per
family (IoU+F1, IoU alone, F1 alone): the same over "slices", one per F1 threshold for a category with
attributes and one (IoU alone) for any other (:func:`summarize`, :func:`summary_value`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from fashionseg.evaluation.curves import Accumulation
from fashionseg.evaluation.params import AREA_RANGES, F1_THRESHOLDS, IOU_THRESHOLDS, MAX_DETECTIONS

FAMILIES = ("iou_f1", "iou", "f1")
SUPERCATEGORY_KEYS = {"outerwear": "APo", "accessory": "APa", "part": "APp"}
COCO_KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl")
# COCOeval.summarize's 12 numbers: (AP or AR, IoU threshold or None for all, area range, detection limit).
_SUMMARIES = (
    (True, None, "all", 100),
    (True, 0.5, "all", 100),
    (True, 0.75, "all", 100),
    (True, None, "small", 100),
    (True, None, "medium", 100),
    (True, None, "large", 100),
    (False, None, "all", 1),
    (False, None, "all", 10),
    (False, None, "all", 100),
    (False, None, "small", 100),
    (False, None, "medium", 100),
    (False, None, "large", 100),
)


def summarize(
    acc: Accumulation, family: str, category_ids: Collection[int] | None = None
) -> dict[str, float]:
    """FPEval's summary numbers of one family ("iou_f1", "iou", "f1") over ``category_ids`` (all if None).

    Keys as FPEval names them: AP, AP_IOU50, AP_IOU75 (IoU families), AP_F150, AP_F175 (F1 families),
    AP_IOU{50,75}_F1{50,75} (iou_f1), APs, APm, APl, AR@1, AR@10, AR@100, ARs@100, ARm@100, ARl@100.
    Values on FPEval's 0-1 scale, -1 where no slice has ground truth.
    """
    use_iou, use_f1 = family in ("iou_f1", "iou"), family in ("iou_f1", "f1")
    out = {"AP": summary_value(acc, family, category_ids)}
    if use_iou:
        for iou_thr in (0.5, 0.75):
            out[f"AP_IOU{round(iou_thr * 100)}"] = summary_value(acc, family, category_ids, iou_thr=iou_thr)
    if use_f1:
        for f1_thr in (0.5, 0.75):
            out[f"AP_F1{round(f1_thr * 100)}"] = summary_value(acc, family, category_ids, f1_thr=f1_thr)
    if use_iou and use_f1:
        for iou_thr in (0.5, 0.75):
            for f1_thr in (0.5, 0.75):
                key = f"AP_IOU{round(iou_thr * 100)}_F1{round(f1_thr * 100)}"
                out[key] = summary_value(acc, family, category_ids, iou_thr=iou_thr, f1_thr=f1_thr)
    for area in ("small", "medium", "large"):
        out[f"AP{area[0]}"] = summary_value(acc, family, category_ids, area=area)
    for max_det in MAX_DETECTIONS:
        out[f"AR@{max_det}"] = summary_value(acc, family, category_ids, recall=True, max_det=max_det)
    for area in ("small", "medium", "large"):
        out[f"AR{area[0]}@100"] = summary_value(acc, family, category_ids, recall=True, area=area)
    return out


def summary_value(
    acc: Accumulation,
    family: str,
    category_ids: Collection[int] | None = None,
    *,
    recall: bool = False,
    iou_thr: float | None = None,
    f1_thr: float | None = None,
    area: str = "all",
    max_det: int = 100,
) -> float:
    """FPEval's ``_summarize``: the mean AP (or AR) over the family's slices, -1 when none is defined.

    IoU families average the 10 IoU thresholds (or take ``iou_thr``), the F1 family takes the -1 entry; a
    category with attributes gives one slice per F1 threshold in the F1 families (or ``f1_thr``'s), any
    other category the -1 (IoU alone) slice.
    """
    if not recall and max_det != MAX_DETECTIONS[-1]:
        raise ValueError(f"AP is kept at {MAX_DETECTIONS[-1]} detections only, not {max_det}")
    use_iou, use_f1 = family in ("iou_f1", "iou"), family in ("iou_f1", "f1")
    if not use_iou:
        t = np.array([len(IOU_THRESHOLDS) - 1])
    elif iou_thr is None:
        t = np.arange(len(IOU_THRESHOLDS) - 1)
    else:
        t = np.flatnonzero(IOU_THRESHOLDS == iou_thr)
    keep = set(acc.category_ids if category_ids is None else category_ids)
    kept = np.array([c in keep for c in acc.category_ids], dtype=bool)
    by_f1 = kept & acc.with_attributes if use_f1 else np.zeros_like(kept)
    f1_index = np.arange(F1_THRESHOLDS.size - 1)
    if f1_thr is not None:
        f1_index = np.flatnonzero(F1_THRESHOLDS == f1_thr)
    chosen = np.zeros((len(acc.category_ids), len(F1_THRESHOLDS)), dtype=bool)  # [K, F] the slices
    chosen[kept & ~by_f1, -1] = True
    chosen[np.ix_(np.flatnonzero(by_f1), f1_index)] = True
    k, f = (x[None, :] for x in np.nonzero(chosen))  # category after category, F1 thresholds in order
    if not k.size or not t.size:
        return -1.0
    a, m = list(AREA_RANGES).index(area), MAX_DETECTIONS.index(max_det)
    if recall:
        values = acc.recall[t[:, None], f, k, a, m]
    else:  # [T, R, slices], FPEval's order: the mean then adds the same floats in the same order
        values = np.swapaxes(acc.precision[t[:, None], f, :, k, a], 1, 2)
    defined = values[values > -1]
    return float(np.mean(defined)) if defined.size else -1.0


def supercategory_has_attributes(acc: Accumulation, members: Collection[int]) -> bool:
    """Whether a supercategory is scored in the F1 families (FPEval skips accessories, which have none)."""
    return any(w for c, w in zip(acc.category_ids, acc.with_attributes, strict=True) if c in members)


def family_metrics(
    acc: Accumulation, family: str, supercategories: Mapping[str, Collection[int]]
) -> dict[str, float]:
    """:func:`summarize` of a family over all categories plus APo / APa / APp per supercategory (0-1 scale).

    ``supercategories`` maps outerwear / accessory / part to category ids; a supercategory without
    attribute categories is left out of the F1 families, as FPEval leaves out accessories.
    """
    out = summarize(acc, family)
    for name, members in supercategories.items():
        if family == "iou" or supercategory_has_attributes(acc, members):
            out[SUPERCATEGORY_KEYS[name]] = summary_value(acc, family, members)
    return out


@dataclass(frozen=True)
class CocoResult:
    """``stats``: pycocotools' 12 summary numbers (0-1, -1 where there is no ground truth).

    ``precision``: ``COCOeval.eval["precision"]`` at 100 detections [T=10 IoU thresholds, R=101 recall
    thresholds, K categories, A=4 area ranges]; ``category_ids`` [K] its category order.
    """

    stats: np.ndarray
    precision: np.ndarray
    category_ids: tuple[int, ...]

    def metrics(self) -> dict[str, float | None]:
        """AP, AP50, AP75, APs, APm, APl on the 0-100 scale; None where there is no ground truth."""
        return {key: _percent(value) for key, value in zip(COCO_KEYS, self.stats[:6], strict=True)}

    def category_ap(self, category_ids: Sequence[int]) -> float | None:
        """AP (IoU 0.50:0.95, all areas, 100 detections) over these categories' precision, 0-100 scale."""
        index = [self.category_ids.index(c) for c in category_ids]
        values = self.precision[:, :, index, 0]
        return _percent(float(np.mean(values[values > -1]))) if np.any(values > -1) else None


def coco_result(precision: np.ndarray, recall: np.ndarray, category_ids: Sequence[int]) -> CocoResult:
    """``COCOeval.summarize`` of ``precision`` [T, R, K, A] (100 detections) and ``recall`` [T, K, A, M].

    The same selections and ``np.mean`` over arrays of pycocotools' layout: the mean sees the same values in
    the same order, so the summaries are pycocotools' floats, not just close to them.
    """
    areas, limits = list(AREA_RANGES), list(MAX_DETECTIONS)
    stats = np.zeros(len(_SUMMARIES))
    for i, (is_ap, iou_thr, area, max_det) in enumerate(_SUMMARIES):
        s = precision if is_ap else recall
        if iou_thr is not None:
            s = s[np.where(iou_thr == IOU_THRESHOLDS[:-1])[0]]
        s = (
            s[:, :, :, [areas.index(area)]]
            if is_ap
            else s[:, :, [areas.index(area)], [limits.index(max_det)]]
        )
        stats[i] = np.mean(s[s > -1]) if np.any(s > -1) else -1
    return CocoResult(stats, precision, tuple(int(c) for c in category_ids))


def _percent(value: float) -> float | None:
    return None if value < 0 else 100.0 * float(value)
