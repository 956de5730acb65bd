"""Stage 1 of the fast path: the ground truths and detections as flat arrays over their instances.

Each instance's image (rank among the ground truth's image ids, COCOeval's image order), category, score,
crowd flag, attribute list, area per IoU type and geometry (boxes, compressed RLEs). What the later stages
read in bulk; nothing here depends on a threshold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain, compress
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from fashionseg.evaluation.params import AREA_RANGES
from fashionseg.evaluation.results import Predictions, sorted_ranks

_AREA_LOW = np.array([lo for lo, _ in AREA_RANGES.values()], dtype=np.float64)
_AREA_HIGH = np.array([hi for _, hi in AREA_RANGES.values()], dtype=np.float64)


@dataclass(frozen=True)
class Instances:
    """Ground truths or detections as flat arrays over their n entries."""

    image: np.ndarray  # int64 [n] rank of the image id among the ground truth's
    category: np.ndarray  # int64 [n] index into the sorted category ids
    score: np.ndarray  # float64 [n] (ground truth: zeros)
    crowd: np.ndarray  # bool [n]
    id_zero: np.ndarray  # bool [n] id 0 (ground truth)
    attributes: AttributeLists  # the entries' attributes; empty for categories without
    area: dict[str, np.ndarray]  # IoU type -> float64 [n]: box / mask area (ground truth: annotated area)
    boxes: np.ndarray | None  # float64 [n, 4] when bbox is evaluated
    rles: list[dict[str, Any]] | None  # [n] compressed RLEs when segm is evaluated

    def geometry(self, iou_type: str, index: np.ndarray) -> np.ndarray | list[dict[str, Any]]:
        """What pycocotools' ``iou`` takes for these entries: boxes [m, 4] or a list of RLEs."""
        return self.boxes[index] if iou_type == "bbox" else [self.rles[i] for i in index]

    def attribute_rows(self, index: np.ndarray) -> np.ndarray:
        """bool [*index.shape, N]: the multi-hot attribute vectors of the entries ``index``."""
        return self.attributes.rows(index)


@dataclass(frozen=True)
class AttributeLists:
    """n entries' attribute lists, as columns of the ground-truth file's N attributes laid end to end.

    Only the detections that meet a ground truth of their category get a multi-hot row: with 100
    detections an image, a dense [n, N] matrix would be mostly unread.
    """

    start: np.ndarray  # int64 [n + 1] where each entry's columns start in ``column``
    column: np.ndarray  # int64 [m] attribute columns
    num_attributes: int

    @classmethod
    def of(
        cls, counts: np.ndarray, column: np.ndarray, keep: np.ndarray, num_attributes: int
    ) -> AttributeLists:
        """Lists of ``counts`` [n] columns each, laid end to end in ``column``; emptied where not ``keep``."""
        if not keep.all():
            column = column[np.repeat(keep, counts)]
            counts = np.where(keep, counts, 0)
        return cls(np.r_[0, np.cumsum(counts)], column, num_attributes)

    def rows(self, index: np.ndarray) -> np.ndarray:
        """bool [*index.shape, N]: multi-hot rows of the entries ``index`` (ints in [0, n))."""
        flat = np.asarray(index, dtype=np.int64).ravel()
        begin = self.start[flat]
        counts = self.start[flat + 1] - begin
        offset = np.repeat(begin - (np.cumsum(counts) - counts), counts)
        out = np.zeros((flat.size, self.num_attributes), dtype=bool)
        out[np.repeat(np.arange(flat.size), counts), self.column[offset + np.arange(offset.size)]] = True
        return out.reshape(*np.shape(index), self.num_attributes)


def gt_instances(
    annotations: Sequence[dict[str, Any]],
    gt: dict[str, Any],
    iou_types: Sequence[str],
    category_ids: Sequence[int],
    with_attributes: np.ndarray,
) -> Instances:
    """The flat arrays of the ground-truth annotations (area: the annotated one, for either IoU type)."""
    n = len(annotations)
    category = _category_index([a["category_id"] for a in annotations], category_ids)
    rles = _gt_rles(annotations, gt) if "segm" in iou_types else None
    boxes = None
    if "bbox" in iou_types:
        boxes = np.array([a["bbox"] for a in annotations], dtype=np.float64).reshape(n, 4)
    return Instances(
        image=_image_rank([a["image_id"] for a in annotations], gt),
        category=category,
        score=np.zeros(n),
        crowd=np.array([bool(a.get("iscrowd", 0)) for a in annotations], dtype=bool),
        id_zero=np.array([a.get("id") == 0 for a in annotations], dtype=bool),
        attributes=_attribute_lists(
            [a.get("attribute_ids") for a in annotations], category, with_attributes, gt
        ),
        area=dict.fromkeys(iou_types, np.array([a["area"] for a in annotations], dtype=np.float64)),
        boxes=boxes,
        rles=rles,
    )


def dt_instances(
    predictions: Predictions, gt: dict[str, Any], category_ids: Sequence[int], with_attributes: np.ndarray
) -> Instances:
    """The flat arrays of checked predictions (area: the box's for bbox, the mask's for segm)."""
    n, index = len(predictions), predictions.index
    if index is None:
        category = _category_index(predictions.category_id, category_ids)
        image = _image_rank(predictions.image_id, gt)
        attributes = _attribute_lists(predictions.attribute_ids, category, with_attributes, gt)
    else:  # numbered while checking
        category, image = index.category, index.image
        num_attributes = len({a["id"] for a in gt.get("attributes", [])})
        attributes = AttributeLists.of(
            index.attribute_count, index.attribute_column, with_attributes[category], num_attributes
        )
    boxes, rles = predictions.bbox, predictions.segmentation
    area = {"bbox": boxes[:, 2] * boxes[:, 3]} if boxes is not None else {}
    if rles is not None:
        area["segm"] = predictions.segmentation_area
        if area["segm"] is None:
            area["segm"] = _mask_areas(rles)
    return Instances(
        image=image,
        category=category,
        score=np.asarray(predictions.score, dtype=np.float64),
        crowd=np.zeros(n, dtype=bool),
        id_zero=np.zeros(n, dtype=bool),
        attributes=attributes,
        area=area,
        boxes=boxes,
        rles=rles,
    )


def _image_rank(image_ids: Sequence[Any], gt: dict[str, Any]) -> np.ndarray:
    """int64 [n]: each image id's rank among the ground truth's image ids (COCOeval's image order)."""
    rank = sorted_ranks(im["id"] for im in gt["images"])
    return np.fromiter(map(rank.__getitem__, image_ids), np.int64, len(image_ids))


def _category_index(ids: Sequence[int], category_ids: Sequence[int]) -> np.ndarray:
    index = sorted_ranks(category_ids)
    return np.fromiter(map(index.__getitem__, ids), np.int64, len(ids))


def _attribute_lists(
    lists: Sequence[list[int] | None], category: np.ndarray, with_attributes: np.ndarray, gt: dict[str, Any]
) -> AttributeLists:
    """The entries' attribute lists (None: none) as columns of the ground-truth file's sorted attributes;
    empty for categories without attributes."""
    column = sorted_ranks({a["id"] for a in gt.get("attributes", [])})
    keep = with_attributes[category]
    kept = list(compress(lists, keep.tolist()))  # the others' lists are not read (nor checked)
    if None in kept:
        kept = [atts or [] for atts in kept]
    counts = np.zeros(len(lists), dtype=np.int64)
    counts[keep] = np.fromiter(map(len, kept), np.int64, len(kept))
    columns = np.fromiter(map(column.__getitem__, chain.from_iterable(kept)), np.int64, int(counts.sum()))
    return AttributeLists(np.r_[0, np.cumsum(counts)], columns, len(column))


def _gt_rles(annotations: Sequence[dict[str, Any]], gt: dict[str, Any]) -> list[dict[str, Any]]:
    """The annotations' compressed RLEs, as ``COCO.annToRLE`` makes them (:func:`_rle`).

    Polygons are rasterised by one pycocotools call an image (each polygon is encoded on its own, so the
    RLEs are the same), then merged per annotation as ``annToRLE`` merges them; a call per annotation was
    a tenth of an evaluation with few detections an image.
    """
    sizes = {im["id"]: (im["height"], im["width"]) for im in gt["images"]}
    rles: list[Any] = [None] * len(annotations)
    polygons: dict[Any, list[int]] = {}  # image id -> annotations with polygons, in order
    for i, a in enumerate(annotations):
        segmentation = a["segmentation"]
        # frPyObjects reads a list as polygons when its first entry has over 4 numbers (4: a box)
        if isinstance(segmentation, list) and segmentation and len(segmentation[0]) > 4:
            polygons.setdefault(a["image_id"], []).append(i)
        else:
            rles[i] = _rle(segmentation, *sizes[a["image_id"]])
    for image_id, members in polygons.items():
        parts = [annotations[i]["segmentation"] for i in members]
        encoded = mask_utils.frPyObjects(list(chain.from_iterable(parts)), *sizes[image_id])
        stops = np.cumsum([len(part) for part in parts]).tolist()
        for i, stop, part in zip(members, stops, parts, strict=True):
            own = encoded[stop - len(part) : stop]
            rles[i] = own[0] if len(own) == 1 else mask_utils.merge(own)
    return rles


def _rle(segmentation: Any, height: int, width: int) -> dict[str, Any]:
    """A compressed RLE of a polygon list or an RLE, as ``COCO.annToRLE`` makes it."""
    if isinstance(segmentation, list):
        return mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
    if isinstance(segmentation["counts"], list):
        return mask_utils.frPyObjects(segmentation, height, width)
    return segmentation


def _mask_areas(rles: list[dict[str, Any]]) -> np.ndarray:
    """float64 [n] pixel areas. pycocotools' ``area`` fails on lists over 255 with numpy 2: chunks of 255."""
    chunks = [mask_utils.area(rles[i : i + 255]) for i in range(0, len(rles), 255)]
    return np.concatenate(chunks).astype(np.float64) if chunks else np.zeros(0)


def outside_area_ranges(area: np.ndarray) -> np.ndarray:
    """bool [n, A]: area outside each area range (bounds belong to the range, as in COCO)."""
    return (area[:, None] < _AREA_LOW) | (area[:, None] > _AREA_HIGH)
