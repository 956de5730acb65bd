"""Load and check the ground truth of an evaluation: a COCO annotation file with Fashionpedia's attributes.

Every problem raises :class:`FashionsegError` naming the file, the annotation (or image) id, the field and
the value.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np

from fashionseg.errors import FashionsegError
from fashionseg.evaluation.fields import (
    check_iou_types,
    checked_boxes,
    checked_rle,
    finite,
    hashable,
    is_int,
    malformed_rle_counts,
    read_json,
    short,
)


def load_ground_truth(
    gt: str | Path | dict[str, Any], iou_types: Sequence[str], attribute_category_ids: Collection[int]
) -> dict[str, Any]:
    """The ground-truth annotation dict (read from ``gt`` when it is a path), checked for evaluation.

    Checks the fields the metrics read: unique annotation ids, known image and category ids, ``area``,
    the geometry of each requested IoU type, and (:func:`check_ground_truth_attributes`) ``attribute_ids``
    drawn from the file's ``attributes`` list on annotations of ``attribute_category_ids``.
    """
    source = ground_truth_source(gt)
    data = read_json(gt, "ground-truth") if isinstance(gt, str | Path) else gt
    if not isinstance(data, dict):
        raise FashionsegError(f"{source}: expected a COCO annotation object, got {type(data).__name__}")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise FashionsegError(f"{source}: the top-level '{key}' list is missing; is this a COCO file?")
    check_iou_types(iou_types)
    if not isinstance(data.get("attributes", []), list):
        raise FashionsegError(f"{source}: 'attributes' must be a list")
    for key in ("images", "categories", "attributes"):
        for k, entry in enumerate(data.get(key, [])):
            # ids are numbered in sorted order (sorted_ranks): integers, as COCO's are
            if not isinstance(entry, dict) or not is_int(entry.get("id")):
                raise FashionsegError(
                    f"{source}: {key}[{k}] is not an object with an integer id: {short(entry)}"
                )
        ids = [entry["id"] for entry in data.get(key, [])]
        if len(set(ids)) != len(ids):
            raise FashionsegError(
                f"{source}: {key} id {_first_repeated(ids)} appears twice; ids must be unique"
            )
    names = [c.get("name") for c in data["categories"]]
    if not all(isinstance(name, str) for name in names) or len(set(names)) != len(names):
        raise FashionsegError(
            f"{source}: every category needs a name of its own (the per-category tables' keys)"
        )
    image_ids = {im["id"] for im in data["images"]}
    category_ids = {c["id"] for c in data["categories"]}
    required = ["area", "iscrowd"] + [{"bbox": "bbox", "segm": "segmentation"}[t] for t in iou_types]
    if "segm" in iou_types:
        for im in data["images"]:
            if not all(isinstance(im.get(k), int) and im[k] > 0 for k in ("height", "width")):
                raise FashionsegError(f"{source}: image id {im['id']} needs positive int height and width")
    seen: set[Any] = set()
    for k, ann in enumerate(data["annotations"]):
        if not isinstance(ann, dict) or not is_int(ann.get("id")):
            raise FashionsegError(
                f"{source}: annotations[{k}] is not an object with an integer id: {short(ann)}"
            )
        ann_id = ann.get("id")
        where = f"{source}: annotation id {ann_id}"
        if ann_id in seen:
            raise FashionsegError(f"{where} appears twice; annotation ids must be unique")
        seen.add(ann_id)
        if not hashable(ann.get("image_id")) or ann.get("image_id") not in image_ids:
            raise FashionsegError(f"{where}: image_id {ann.get('image_id')!r} is not in the images list")
        if not hashable(ann.get("category_id")) or ann.get("category_id") not in category_ids:
            raise FashionsegError(
                f"{where}: category_id {ann.get('category_id')!r} is not in the categories list"
            )
        for field in required:
            if field not in ann:
                raise FashionsegError(f"{where} has no '{field}' field")
    _check_ground_truth_values(data, source, iou_types)
    check_ground_truth_attributes(data, source, attribute_category_ids)
    return data


# The largest image side the evaluation accepts (JPEG's): it bounds how far a polygon may reach, since
# pycocotools rasterises polygons pixel step by pixel step and crashes on coordinates like 1e9.
MAX_SIDE = 65_535


def _check_ground_truth_values(data: dict[str, Any], source: str, iou_types: Sequence[str]) -> None:
    """The values the metrics compute with: finite ``area`` and ``iscrowd`` numbers, boxes of four finite
    numbers, polygons near their image and well-formed RLEs of its size (what pycocotools decodes safely).

    Checked for all annotations at once with numpy; entry by entry only to name a bad one.
    """
    annotations = data["annotations"]
    for field in ("area", "iscrowd"):
        values = [ann[field] for ann in annotations]
        if not all(map(finite, values)):
            bad = next(ann for ann, v in zip(annotations, values, strict=True) if not finite(v))
            raise FashionsegError(
                f"{source}: annotation id {bad['id']}: {field} {short(bad[field])} is not a number"
            )
    if "bbox" in iou_types:
        checked_boxes(annotations, f"{source} annotations")
    if "segm" not in iou_types:
        return
    sizes = {im["id"]: (im["height"], im["width"]) for im in data["images"]}
    for image_id, (height, width) in sizes.items():
        if max(height, width) > MAX_SIDE:
            raise FashionsegError(
                f"{source}: image id {image_id} is {width}x{height}, over {MAX_SIDE} a side"
            )
    polygons: list[dict[str, Any]] = []
    for ann in annotations:
        segmentation = ann["segmentation"]
        where = f"{source}: annotation id {ann['id']}"
        size = sizes[ann["image_id"]]
        if isinstance(segmentation, dict):
            checked_rle(segmentation, list(size), where)
            counts = segmentation["counts"]
            if (
                isinstance(counts, str)
                and malformed_rle_counts([counts.encode("ascii", "replace")], [size[0] * size[1]])[0]
            ):
                raise FashionsegError(
                    f"{where}: malformed RLE: counts {short(counts)} do not cover the image"
                )
        elif (
            isinstance(segmentation, list)
            and segmentation
            and all(type(part) is list for part in segmentation)
            and len(segmentation[0]) > 4  # how pycocotools tells polygons from boxes
        ):
            polygons.append(ann)
        else:
            raise FashionsegError(
                f"{where}: segmentation must be polygons [[x1, y1, x2, y2, x3, y3, ...], ...] or an RLE "
                f"{{'size': [h, w], 'counts': ...}}, got {short(segmentation)}"
            )
    _check_polygons(polygons, sizes, source)


def _check_polygons(
    annotations: Sequence[dict[str, Any]], sizes: dict[Any, tuple[int, int]], source: str
) -> None:
    """Polygon coordinates: finite numbers within one image size of their image (see :data:`MAX_SIDE`)."""
    counts = [sum(map(len, ann["segmentation"])) for ann in annotations]
    try:
        coordinates = chain.from_iterable(chain.from_iterable(ann["segmentation"]) for ann in annotations)
        values = np.fromiter(coordinates, np.float64, sum(counts))
        # x at even, y at odd places of each polygon; the limit is the larger image side, either way
        limit = np.repeat([max(sizes[ann["image_id"]]) for ann in annotations], counts).astype(np.float64)
        good = np.isfinite(values) & (values >= -limit) & (values <= 2 * limit)
        if good.all():
            return
        first = int(np.searchsorted(np.cumsum(counts), np.flatnonzero(~good)[0], side="right"))
        problem = "has a point more than the image's size outside the image"
    except (TypeError, ValueError, OverflowError):
        first = next(
            i
            for i, ann in enumerate(annotations)
            if not all(finite(v) for part in ann["segmentation"] for v in part)
        )
        problem = "has a coordinate that is not a finite number"
    raise FashionsegError(f"{source}: annotation id {annotations[first]['id']}: the polygon {problem}")


def _first_repeated(values: Sequence[Any]) -> Any:
    seen: set[Any] = set()
    for value in values:
        if value in seen:
            return value
        seen.add(value)
    return None


def _sorted_ids(ids: Collection[Any]) -> list[Any]:
    """``ids`` sorted, or in the order of their text when they are of types that do not compare."""
    try:
        return sorted(ids)
    except TypeError:
        return sorted(ids, key=repr)


def ground_truth_source(gt: str | Path | dict[str, Any]) -> str:
    """How errors name the ground truth: its path, or "ground truth" for a dict."""
    return str(gt) if isinstance(gt, str | Path) else "ground truth"


def check_ground_truth_attributes(
    data: dict[str, Any], source: str, attribute_category_ids: Collection[int]
) -> None:
    """Raise unless every annotation of ``attribute_category_ids`` carries ``attribute_ids`` from the file's
    ``attributes`` list (only these categories are scored with attributes)."""
    category_ids = {c["id"] for c in data["categories"]}
    scored = set(attribute_category_ids) & category_ids
    if not scored:
        return
    attribute_ids = {a["id"] for a in data.get("attributes", [])}
    if not attribute_ids:
        raise FashionsegError(
            f"{source} has no 'attributes' list, but categories {sorted(scored)} are scored with attributes; "
            "add the list, or evaluate by IoU alone (attribute_category_ids=() / --attribute-categories none)"
        )
    for ann in data["annotations"]:
        if ann["category_id"] not in scored:
            continue
        where = f"{source}: annotation id {ann['id']}"
        atts = ann.get("attribute_ids")
        if not isinstance(atts, list) or not all(hashable(a) for a in atts):
            raise FashionsegError(f"{where} (category {ann['category_id']}) has no 'attribute_ids' list")
        unknown = _sorted_ids(set(atts) - attribute_ids)
        if unknown:
            raise FashionsegError(f"{where}: attribute ids {unknown} are not in the file's attributes list")
