"""Load and check the two inputs of an evaluation: a ground-truth annotation file and a predictions list.

Predictions are COCO results (one dict per detection) with Fashionpedia's ``attribute_ids``::

    {"image_id": 7, "category_id": 31, "score": 0.93, "bbox": [x, y, w, h],
     "segmentation": {"size": [h, w], "counts": "..."}, "attribute_ids": [160, 204]}

Every problem raises :class:`FashionsegError` naming the file, the entry (index and image_id), the field and
the value. A checked prediction is a fresh dict with only the fields the evaluation reads: ``score`` a float,
``bbox`` four floats, ``segmentation`` a compressed RLE with ``str`` counts, ``attribute_ids`` a list of ints.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from fashionseg.errors import FashionsegError

IOU_TYPES = ("bbox", "segm")


def load_ground_truth(
    gt: str | Path | dict[str, Any], iou_types: Sequence[str], attribute_category_ids: Collection[int]
) -> dict[str, Any]:
    """The ground-truth annotation dict (read from ``gt`` when it is a path), checked for evaluation.

    Checks the fields the metrics read: unique annotation ids, known image and category ids, ``area``,
    the geometry of each requested IoU type, and ``attribute_ids`` drawn from the file's ``attributes`` list
    on annotations of ``attribute_category_ids``.
    """
    source = str(gt) if isinstance(gt, str | Path) else "ground truth"
    data = _read_json(gt, "ground-truth") if isinstance(gt, str | Path) else gt
    if not isinstance(data, dict):
        raise FashionsegError(f"{source}: expected a COCO annotation object, got {type(data).__name__}")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise FashionsegError(f"{source}: the top-level '{key}' list is missing; is this a COCO file?")
    _check_iou_types(iou_types)
    image_ids = {im["id"] for im in data["images"]}
    category_ids = {c["id"] for c in data["categories"]}
    attribute_ids = {a["id"] for a in data.get("attributes", [])}
    scored = set(attribute_category_ids) & category_ids
    if scored and not attribute_ids:
        raise FashionsegError(
            f"{source} has no 'attributes' list, but categories {sorted(scored)} are scored with attributes; "
            "add the list, or evaluate by IoU alone (attribute_category_ids=() / --attribute-categories none)"
        )
    required = ["area", "iscrowd"] + [{"bbox": "bbox", "segm": "segmentation"}[t] for t in iou_types]
    if "segm" in iou_types:
        for im in data["images"]:
            if not all(isinstance(im.get(k), int) and im[k] > 0 for k in ("height", "width")):
                raise FashionsegError(f"{source}: image id {im['id']} needs positive int height and width")
    seen: set[Any] = set()
    for ann in data["annotations"]:
        ann_id = ann.get("id")
        where = f"{source}: annotation id {ann_id}"
        if ann_id in seen:
            raise FashionsegError(f"{where} appears twice; annotation ids must be unique")
        seen.add(ann_id)
        if ann.get("image_id") not in image_ids:
            raise FashionsegError(f"{where}: image_id {ann.get('image_id')!r} is not in the images list")
        if ann.get("category_id") not in category_ids:
            raise FashionsegError(
                f"{where}: category_id {ann.get('category_id')!r} is not in the categories list"
            )
        for field in required:
            if field not in ann:
                raise FashionsegError(f"{where} has no '{field}' field")
        if ann["category_id"] in scored:
            atts = ann.get("attribute_ids")
            if not isinstance(atts, list):
                raise FashionsegError(f"{where} (category {ann['category_id']}) has no 'attribute_ids' list")
            unknown = sorted(set(atts) - attribute_ids)
            if unknown:
                raise FashionsegError(
                    f"{where}: attribute ids {unknown} are not in the file's attributes list"
                )
    return data


def load_predictions(
    predictions: str | Path | Sequence[dict[str, Any]],
    gt: dict[str, Any],
    iou_types: Sequence[str],
    require_attribute_ids: bool = True,
) -> list[dict[str, Any]]:
    """Checked copies of the predictions (read from ``predictions`` when it is a path), in input order.

    ``require_attribute_ids``: every entry must carry ``attribute_ids`` (a list, possibly empty); off when
    the evaluation scores no category with attributes.
    """
    source = str(predictions) if isinstance(predictions, str | Path) else "predictions"
    entries = _read_json(predictions, "predictions") if isinstance(predictions, str | Path) else predictions
    if not isinstance(entries, Sequence) or isinstance(entries, str | bytes):
        raise FashionsegError(f"{source}: expected a list of COCO results, got {type(entries).__name__}")
    _check_iou_types(iou_types)
    sizes = {im["id"]: [im.get("height"), im.get("width")] for im in gt["images"]}
    known = _Known(sizes, {c["id"] for c in gt["categories"]}, {a["id"] for a in gt.get("attributes", [])})
    checked = _checked_at_once(entries, known, iou_types, require_attribute_ids)
    if checked is None:  # something is wrong: find and name it
        checked = [
            _checked_entry(entry, index, source, known, iou_types, require_attribute_ids)
            for index, entry in enumerate(entries)
        ]
    if "bbox" in iou_types:
        for out, box in zip(checked, _checked_boxes(entries, source), strict=True):
            out["bbox"] = box
    if "segm" in iou_types and checked:
        _check_rle_counts(checked, source)
    return checked


@dataclass(frozen=True)
class _Known:
    """What the ground truth defines: image id -> [height, width], category ids, attribute ids."""

    sizes: dict[Any, list[Any]]
    category_ids: set[Any]
    attribute_ids: set[Any]


def _checked_at_once(
    entries: Sequence[Any], known: _Known, iou_types: Sequence[str], require_attribute_ids: bool
) -> list[dict[str, Any]] | None:
    """The checked entries (boxes aside) when all pass whole-list checks, else None.

    As strict as :func:`_checked_entry` or stricter (a None just costs the entry-by-entry pass).
    """
    if not all(type(e) is dict for e in entries):
        return None
    image_ids = [e.get("image_id") for e in entries]
    category_ids = [e.get("category_id") for e in entries]
    scores = [e.get("score") for e in entries]
    try:
        if not (set(image_ids) <= known.sizes.keys() and set(category_ids) <= known.category_ids):
            return None
    except TypeError:  # an unhashable id
        return None
    if not {type(c) for c in category_ids} <= {int} or not {type(s) for s in scores} <= {int, float}:
        return None
    if scores and not np.isfinite(np.array(scores, dtype=np.float64)).all():
        return None
    columns: dict[str, list[Any]] = {"image_id": image_ids, "category_id": category_ids, "score": scores}
    if require_attribute_ids or any("attribute_ids" in e for e in entries):
        lists = [e.get("attribute_ids") for e in entries]
        flat = [a for atts in lists if type(atts) is list for a in atts]
        if not {type(atts) for atts in lists} <= {list} or not {type(a) for a in flat} <= {int}:
            return None
        if not set(flat) <= known.attribute_ids:
            return None
        columns["attribute_ids"] = lists
    if "segm" in iou_types:
        rles = [e.get("segmentation") for e in entries]
        if not {type(r) for r in rles} <= {dict}:
            return None
        if not {type(r.get("counts")) for r in rles} <= {str}:
            return None
        if [r.get("size") for r in rles] != [known.sizes[i] for i in image_ids]:
            return None
        columns["segmentation"] = [{"size": r["size"], "counts": r["counts"]} for r in rles]
    columns["score"] = [float(s) for s in scores]
    names = list(columns)
    return [dict(zip(names, values, strict=True)) for values in zip(*columns.values(), strict=True)]


def _checked_entry(
    entry: Any, index: int, source: str, known: _Known, iou_types: Sequence[str], require_attribute_ids: bool
) -> dict[str, Any]:
    """One checked entry (boxes aside); raises naming the entry (index, image_id), field and value."""
    image_id = entry.get("image_id") if isinstance(entry, dict) else None
    where = f"{source} entry {index} (image_id {image_id!r})"
    if not isinstance(entry, dict):
        raise FashionsegError(f"{source} entry {index}: expected an object, got {type(entry).__name__}")
    if not _hashable(image_id) or image_id not in known.sizes:
        raise FashionsegError(f"{where}: image_id is not an image of the ground truth")
    category_id = entry.get("category_id")
    if not _hashable(category_id) or category_id not in known.category_ids or isinstance(category_id, bool):
        raise FashionsegError(
            f"{where}: category_id {category_id!r} is not in the ground truth's categories "
            f"({_id_span(known.category_ids)})"
        )
    score = entry.get("score")
    if not _is_number(score) or not math.isfinite(score):
        raise FashionsegError(f"{where}: score {score!r} is not a finite number")
    out: dict[str, Any] = {"image_id": image_id, "category_id": category_id, "score": float(score)}
    if "attribute_ids" in entry or require_attribute_ids:
        out["attribute_ids"] = _checked_attributes(entry.get("attribute_ids"), known.attribute_ids, where)
    if "segm" in iou_types:
        out["segmentation"] = _checked_rle(entry.get("segmentation"), known.sizes[image_id], where)
    return out


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _read_json(path: str | Path, what: str) -> Any:
    path = Path(path)
    if not path.is_file():
        raise FashionsegError(f"{what} file {path} does not exist")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise FashionsegError(f"{what} file {path} is not valid JSON: {exc}") from exc


def _check_iou_types(iou_types: Sequence[str]) -> None:
    unknown = [t for t in iou_types if t not in IOU_TYPES]
    if unknown or not iou_types:
        raise FashionsegError(f"IoU types {list(iou_types)!r}: choose one or both of {', '.join(IOU_TYPES)}")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


def _id_span(ids: Collection[int]) -> str:
    return f"{len(ids)} ids from {min(ids)} to {max(ids)}" if ids else "none"


def _checked_attributes(value: Any, known: set[int], where: str) -> list[int]:
    if not isinstance(value, list):
        raise FashionsegError(
            f"{where}: 'attribute_ids' is {'missing' if value is None else repr(value)}; every prediction "
            "needs a list of attribute ids (possibly empty)"
        )
    unknown = sorted({a for a in value if a not in known or a is True or a is False}, key=str)
    if unknown:
        raise FashionsegError(
            f"{where}: attribute ids {unknown} are not in the ground truth's attributes list"
        )
    return [int(a) for a in value]


def _checked_boxes(entries: Sequence[dict[str, Any]], source: str) -> list[list[float]]:
    """The entries' boxes as lists of four floats; checked at once, then one by one to name a bad one."""
    raw = [entry.get("bbox") for entry in entries]
    try:
        boxes = np.array(raw, dtype=np.float64).reshape(len(raw), -1 if raw else 4)
    except (TypeError, ValueError):
        boxes = np.zeros((len(raw), 0))
    if boxes.shape[1] == 4 and np.isfinite(boxes).all() and (boxes[:, 2:] >= 0).all():
        return boxes.tolist()
    for index, (entry, box) in enumerate(zip(entries, raw, strict=True)):
        _checked_box(box, f"{source} entry {index} (image_id {entry.get('image_id')!r})")
    raise FashionsegError(f"{source}: the boxes are not all [x, y, width, height] lists of finite numbers")


def _checked_box(value: Any, where: str) -> None:
    if value is None:
        raise FashionsegError(f"{where}: no 'bbox'; evaluate masks only with --iou-types segm")
    if not isinstance(value, list | tuple) or len(value) != 4 or not all(_is_number(v) for v in value):
        raise FashionsegError(f"{where}: bbox {value!r} is not [x, y, width, height]")
    if not all(math.isfinite(v) for v in value) or value[2] < 0 or value[3] < 0:
        raise FashionsegError(f"{where}: bbox {value!r} has a non-finite value or a negative size")


def _checked_rle(value: Any, size: Sequence[Any], where: str) -> dict[str, Any]:
    """A compressed RLE dict with ``str`` counts; uncompressed (list) counts are compressed here."""
    if value is None:
        raise FashionsegError(f"{where}: no 'segmentation'; evaluate boxes only with --iou-types bbox")
    if not isinstance(value, dict) or "counts" not in value or "size" not in value:
        raise FashionsegError(
            f"{where}: segmentation must be an RLE {{'size': [h, w], 'counts': ...}}, got {_short(value)}"
        )
    height, width = size
    if list(value["size"]) != [height, width]:
        raise FashionsegError(
            f"{where}: segmentation size {value['size']!r} differs from the image's [height, width] "
            f"[{height}, {width}]"
        )
    counts = value["counts"]
    if isinstance(counts, list):
        if not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in counts) or (
            sum(counts) != height * width
        ):
            raise FashionsegError(
                f"{where}: malformed RLE: uncompressed counts must be non-negative ints summing to "
                f"height*width = {height * width}"
            )
        counts = mask_utils.frPyObjects({"size": [height, width], "counts": counts}, height, width)["counts"]
    if isinstance(counts, bytes):
        counts = counts.decode("ascii", errors="replace")
    if not isinstance(counts, str):
        raise FashionsegError(
            f"{where}: malformed RLE: counts is {type(counts).__name__}, not a string or list"
        )
    return {"size": [height, width], "counts": counts}


def _check_rle_counts(predictions: list[dict[str, Any]], source: str) -> None:
    """Raise for the first prediction whose compressed RLE does not decode to runs covering its image."""
    counts = [p["segmentation"]["counts"].encode("ascii", errors="replace") for p in predictions]
    pixels = np.array([p["segmentation"]["size"][0] * p["segmentation"]["size"][1] for p in predictions])
    bad = np.flatnonzero(malformed_rle_counts(counts, pixels))
    if bad.size:
        entry = predictions[bad[0]]
        raise FashionsegError(
            f"{source} entry {bad[0]} (image_id {entry['image_id']!r}): malformed RLE: counts "
            f"{_short(entry['segmentation']['counts'])} do not decode to runs covering "
            f"{entry['segmentation']['size'][0]}x{entry['segmentation']['size'][1]} pixels"
        )


def malformed_rle_counts(counts: Sequence[bytes], pixels: np.ndarray) -> np.ndarray:
    """bool [n]: which COCO-compressed RLE count strings are malformed.

    ``counts`` [n] byte strings, ``pixels`` [n] the height*width each must cover. A string is well formed
    when pycocotools' ``rleFrString`` decodes it to non-negative runs summing to its pixels. All strings are
    decoded at once: each run is a group of 6-bit characters (offset 48) with a continuation bit 0x20 and a
    sign bit 0x10 in the group's last character, and runs from the fourth on are stored as differences to
    the run two places before.
    """
    n = len(counts)
    lengths = np.fromiter(map(len, counts), np.int64, n)
    string_end = np.cumsum(lengths)
    bad = (lengths == 0) & (pixels != 0)
    chars = np.frombuffer(b"".join(counts), np.uint8) - np.uint8(48)
    if chars.size == 0:
        return bad
    invalid = np.flatnonzero(chars > 63)
    if invalid.size:
        bad[np.searchsorted(string_end, invalid, side="right")] = True
        chars = np.where(chars > 63, 0, chars)
    more = chars >= 32
    nonempty = np.flatnonzero(lengths > 0)
    last_char = string_end[nonempty] - 1
    bad[nonempty[more[last_char]]] = True  # the string stops inside a run
    more[last_char] = False  # so that a truncated run does not spill into the next string
    group_end = np.flatnonzero(~more)
    group_start = np.r_[0, group_end[:-1] + 1]
    group_len = group_end - group_start + 1
    first_group = np.searchsorted(group_end, string_end - lengths)  # [n]; = next string's for empty ones
    overlong = np.flatnonzero(group_len > 7)  # over 35 bits cannot be a run of a real image
    bad[np.searchsorted(first_group, overlong, side="right") - 1] = True
    value = (chars[group_start] & 0x1F).astype(np.int64)
    longer, k = np.flatnonzero(group_len > 1), 1
    while longer.size and k < 7:
        value[longer] += (chars[group_start[longer] + k] & 0x1F).astype(np.int64) << (5 * k)
        k += 1
        longer = longer[group_len[longer] > k]
    negative = np.flatnonzero(chars[group_end] & 0x10)
    value[negative] -= np.int64(1) << (5 * np.minimum(group_len[negative], 7))
    # Run m >= 3 adds run m - 2: along each of the two interleaved classes of positions (stride 2) that is
    # a cumulative sum, restarted at each string's runs 0, 1 and 2.
    restart = np.zeros(value.size, dtype=bool)
    for offset in range(3):
        index = first_group + offset
        restart[index[index < value.size]] = True
    runs = np.empty_like(value)
    for parity in (0, 1):
        part, starts = value[parity::2], restart[parity::2]
        summed = np.cumsum(part)
        before = (summed - part)[np.maximum.accumulate(np.where(starts, np.arange(part.size), 0))]
        runs[parity::2] = summed - before
    bad[np.searchsorted(first_group, np.flatnonzero(runs < 0), side="right") - 1] = True
    totals = np.zeros(n, dtype=np.int64)
    has_runs = first_group < np.r_[first_group[1:], value.size]
    totals[has_runs] = np.add.reduceat(runs, first_group[has_runs]) if runs.size else 0
    return bad | (totals != pixels)


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
