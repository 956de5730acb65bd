"""Load and check the two inputs of an evaluation: a ground-truth annotation file and a predictions list.

Predictions are COCO results (one dict per detection) with Fashionpedia's ``attribute_ids``::

    {"image_id": 7, "category_id": 31, "score": 0.93, "bbox": [x, y, w, h],
     "segmentation": {"size": [h, w], "counts": "..."}, "attribute_ids": [160, 204]}

Every problem raises :class:`FashionsegError` naming the file, the entry (index and image_id), the field and
the value. Checked predictions (:class:`Predictions`) are columns of the fields the evaluation reads:
``score`` floats, ``bbox`` four floats each, ``segmentation`` compressed RLEs with ``str`` counts,
``attribute_ids`` lists of ints; :func:`load_predictions` gives them as one fresh dict per prediction.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from itertools import chain, repeat
from operator import attrgetter, itemgetter
from pathlib import Path
from typing import Any, TypedDict

import msgspec
import numpy as np
from pycocotools import mask as mask_utils

from fashionseg.errors import FashionsegError

IOU_TYPES = ("bbox", "segm")


def load_ground_truth(
    gt: str | Path | dict[str, Any], iou_types: Sequence[str], attribute_category_ids: Collection[int]
) -> dict[str, Any]:
    """The ground-truth annotation dict (read from ``gt`` when it is a path), checked for evaluation.

    Checks the fields the metrics read: unique annotation ids, known image and category ids, ``area``,
    the geometry of each requested IoU type, and (:func:`check_ground_truth_attributes`) ``attribute_ids``
    drawn from the file's ``attributes`` list on annotations of ``attribute_category_ids``.
    """
    source = ground_truth_source(gt)
    data = _read_json(gt, "ground-truth") if isinstance(gt, str | Path) else gt
    if not isinstance(data, dict):
        raise FashionsegError(f"{source}: expected a COCO annotation object, got {type(data).__name__}")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise FashionsegError(f"{source}: the top-level '{key}' list is missing; is this a COCO file?")
    _check_iou_types(iou_types)
    if not isinstance(data.get("attributes", []), list):
        raise FashionsegError(f"{source}: 'attributes' must be a list")
    for key in ("images", "categories", "attributes"):
        for k, entry in enumerate(data.get(key, [])):
            # ids are numbered in sorted order (sorted_ranks): integers, as COCO's are
            if not isinstance(entry, dict) or not _is_int(entry.get("id")):
                raise FashionsegError(
                    f"{source}: {key}[{k}] is not an object with an integer id: {_short(entry)}"
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
        if not isinstance(ann, dict) or not _is_int(ann.get("id")):
            raise FashionsegError(
                f"{source}: annotations[{k}] is not an object with an integer id: {_short(ann)}"
            )
        ann_id = ann.get("id")
        where = f"{source}: annotation id {ann_id}"
        if ann_id in seen:
            raise FashionsegError(f"{where} appears twice; annotation ids must be unique")
        seen.add(ann_id)
        if not _hashable(ann.get("image_id")) or ann.get("image_id") not in image_ids:
            raise FashionsegError(f"{where}: image_id {ann.get('image_id')!r} is not in the images list")
        if not _hashable(ann.get("category_id")) or ann.get("category_id") not in category_ids:
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
        if not all(map(_finite, values)):
            bad = next(ann for ann, v in zip(annotations, values, strict=True) if not _finite(v))
            raise FashionsegError(
                f"{source}: annotation id {bad['id']}: {field} {_short(bad[field])} is not a number"
            )
    if "bbox" in iou_types:
        _checked_boxes(annotations, f"{source} annotations")
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
            _checked_rle(segmentation, list(size), where)
            counts = segmentation["counts"]
            if (
                isinstance(counts, str)
                and malformed_rle_counts([counts.encode("ascii", "replace")], [size[0] * size[1]])[0]
            ):
                raise FashionsegError(
                    f"{where}: malformed RLE: counts {_short(counts)} do not cover the image"
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
                f"{{'size': [h, w], 'counts': ...}}, got {_short(segmentation)}"
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
            if not all(_finite(v) for part in ann["segmentation"] for v in part)
        )
        problem = "has a coordinate that is not a finite number"
    raise FashionsegError(f"{source}: annotation id {annotations[first]['id']}: the polygon {problem}")


def _finite(value: Any) -> bool:
    """Whether ``value`` is a finite int or float (True and False count as 1 and 0, as in COCO's iscrowd)."""
    try:
        return isinstance(value, int | float) and math.isfinite(value)
    except OverflowError:  # an int past float's range
        return False


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
        if not isinstance(atts, list) or not all(_hashable(a) for a in atts):
            raise FashionsegError(f"{where} (category {ann['category_id']}) has no 'attribute_ids' list")
        unknown = _sorted_ids(set(atts) - attribute_ids)
        if unknown:
            raise FashionsegError(f"{where}: attribute ids {unknown} are not in the file's attributes list")


def sorted_ranks(ids: Iterable[Any]) -> dict[Any, int]:
    """Each id's place among ``ids`` sorted: how the evaluation numbers images, categories, attributes."""
    return {value: rank for rank, value in enumerate(sorted(ids))}


@dataclass(frozen=True)
class PredictionIndex:
    """Checked predictions' ids numbered as the evaluation numbers them (:func:`sorted_ranks` of the ground
    truth's ids), for the ground truth they were checked against.

    Looking the ids up checks them; keeping the numbers spares the evaluation looking them up again.
    """

    image: np.ndarray  # int64 [n] rank of the image id among the ground truth's image ids
    category: np.ndarray  # int64 [n] rank of the category id among its category ids
    attribute_count: np.ndarray  # int64 [n] attribute ids of each prediction
    attribute_column: np.ndarray  # int64 [m] their ranks among the file's attribute ids, laid end to end


@dataclass(frozen=True)
class Predictions:
    """Checked predictions as columns, in input order [n]: the evaluation reads columns, not dicts.

    ``score`` float64 [n]; ``attribute_ids``: lists of ints, None where an entry has none (allowed when they
    are not required); ``bbox`` float64 [n, 4] when boxes are evaluated; ``segmentation``: compressed RLEs
    (``size``, ``str`` ``counts``) when masks are, and ``segmentation_area`` float64 [n] their areas when
    checked. The columns may share the input's lists and RLE dicts; nothing modifies them. ``index``: the
    ids as the evaluation numbers them, when the check found them (a predictions file).
    """

    image_id: list[Any]
    category_id: list[int]
    score: np.ndarray
    attribute_ids: list[list[int] | None]
    bbox: np.ndarray | None
    segmentation: list[dict[str, Any]] | None
    segmentation_area: np.ndarray | None = None
    index: PredictionIndex | None = None

    def __len__(self) -> int:
        return len(self.score)

    def to_dicts(self) -> list[dict[str, Any]]:
        """One fresh dict per prediction, with the fields above (the form pycocotools' ``loadRes`` takes)."""
        out = [
            {"image_id": i, "category_id": c, "score": s}
            for i, c, s in zip(self.image_id, self.category_id, self.score.tolist(), strict=True)
        ]
        for entry, atts in zip(out, self.attribute_ids, strict=True):
            if atts is not None:
                entry["attribute_ids"] = list(atts)
        if self.bbox is not None:
            for entry, box in zip(out, self.bbox.tolist(), strict=True):
                entry["bbox"] = box
        if self.segmentation is not None:
            for entry, rle in zip(out, self.segmentation, strict=True):
                entry["segmentation"] = {"size": list(rle["size"]), "counts": rle["counts"]}
        return out

    @classmethod
    def from_dicts(cls, entries: Sequence[dict[str, Any]], iou_types: Sequence[str]) -> Predictions:
        """The columns of checked prediction dicts (as :func:`load_predictions` returns them)."""
        return cls(
            [e["image_id"] for e in entries],
            [e["category_id"] for e in entries],
            np.array([float(e["score"]) for e in entries], dtype=np.float64),
            [e.get("attribute_ids") for e in entries],
            np.array([e["bbox"] for e in entries], dtype=np.float64).reshape(-1, 4)
            if "bbox" in iou_types
            else None,
            [e["segmentation"] for e in entries] if "segm" in iou_types else None,
        )


def load_predictions(
    predictions: str | Path | Sequence[dict[str, Any]],
    gt: dict[str, Any],
    iou_types: Sequence[str],
    require_attribute_ids: bool = True,
) -> list[dict[str, Any]]:
    """Checked copies of the predictions (read from ``predictions`` when it is a path), in input order.

    :func:`check_predictions` as one fresh dict per prediction.
    """
    return check_predictions(predictions, gt, iou_types, require_attribute_ids).to_dicts()


def check_predictions(
    predictions: str | Path | Sequence[dict[str, Any]],
    gt: dict[str, Any],
    iou_types: Sequence[str],
    require_attribute_ids: bool | None = True,
) -> Predictions:
    """The checked predictions (read from ``predictions`` when it is a path) as :class:`Predictions`.

    ``require_attribute_ids``: True: every entry must carry ``attribute_ids`` (a list, possibly empty);
    None: every entry or none (plain COCO results), a file mixing the two is refused naming the first
    entry of each kind; False: any entry may go without (no category is scored with attributes).
    """
    source = str(predictions) if isinstance(predictions, str | Path) else "predictions"
    _check_iou_types(iou_types)
    sizes = {im["id"]: [im.get("height"), im.get("width")] for im in gt["images"]}
    known = _Known(sizes, {c["id"] for c in gt["categories"]}, {a["id"] for a in gt.get("attributes", [])})
    required = bool(require_attribute_ids)
    checked, entries = None, predictions
    if isinstance(predictions, str | Path):
        data = _read_bytes(predictions, "predictions")
        checked = _checked_typed(data, source, gt, known, iou_types, required)
        if checked is None:  # not a plain file of valid entries: decoded to dicts and checked as a list
            entries = _decode_json(data, predictions, "predictions")
    if checked is None:
        checked = _checked_entries(entries, source, known, iou_types, required)
    if require_attribute_ids is None:
        _check_all_or_none(checked, source)
    return checked


def carries_attributes(predictions: Predictions) -> bool:
    """Whether checked predictions carry ``attribute_ids`` (all of them do, or none: plain COCO results).

    No predictions at all count as carrying them: there is nothing to leave out of the attribute metrics.
    """
    return len(predictions) == 0 or predictions.attribute_ids[0] is not None


def _check_all_or_none(predictions: Predictions, source: str) -> None:
    """Raise when some entries carry ``attribute_ids`` and others do not, naming the first of each."""
    lists = predictions.attribute_ids
    missing = lists.count(None)
    if 0 < missing < len(lists):
        without = lists.index(None)
        with_ = next(i for i, atts in enumerate(lists) if atts is not None)
        raise FashionsegError(
            f"{source} entry {without} (image_id {predictions.image_id[without]!r}): 'attribute_ids' is "
            f"missing, but entry {with_} (image_id {predictions.image_id[with_]!r}) has them: the file mixes "
            "entries with and without attribute_ids. Give every entry a list (possibly empty) to score "
            "attributes, or none for COCO AP alone"
        )


def _checked_entries(
    entries: Any, source: str, known: _Known, iou_types: Sequence[str], require_attribute_ids: bool
) -> Predictions:
    """:func:`check_predictions` of a list of entries: whole-list checks first, and entry by entry to name
    the first bad one when they fail."""
    if not isinstance(entries, Sequence) or isinstance(entries, str | bytes):
        raise FashionsegError(f"{source}: expected a list of COCO results, got {type(entries).__name__}")
    checked = _checked_at_once(entries, known, iou_types, require_attribute_ids)
    if checked is None:  # something is wrong: find and name it
        dicts = [
            _checked_entry(entry, index, source, known, iou_types, require_attribute_ids)
            for index, entry in enumerate(entries)
        ]
        checked = Predictions.from_dicts(dicts, [t for t in iou_types if t != "bbox"])
    if "bbox" in iou_types:
        checked = replace(checked, bbox=_checked_boxes(entries, source))
    if "segm" in iou_types:
        pixels = _image_pixels(known, checked.image_id)
        checked = replace(checked, segmentation_area=_check_rle_counts(checked, pixels, source))
    return checked


@dataclass(frozen=True)
class _Known:
    """What the ground truth defines: image id -> [height, width], category ids, attribute ids."""

    sizes: dict[Any, list[Any]]
    category_ids: set[Any]
    attribute_ids: set[Any]


def _checked_at_once(
    entries: Sequence[Any], known: _Known, iou_types: Sequence[str], require_attribute_ids: bool
) -> Predictions | None:
    """The checked entries (boxes aside) when all pass whole-list checks, else None.

    As strict as :func:`_checked_entry` or stricter (a None just costs the entry-by-entry pass). The passes
    are ``map`` over C functions (``dict.get``, ``type``), several times faster than comprehensions.
    """
    if not set(map(type, entries)) <= {dict}:
        return None
    image_ids = list(map(dict.get, entries, repeat("image_id")))
    category_ids = list(map(dict.get, entries, repeat("category_id")))
    scores = list(map(dict.get, entries, repeat("score")))
    if not set(map(type, category_ids)) <= {int} or not set(map(type, scores)) <= {int, float}:
        return None
    lists: list[Any] = list(map(dict.get, entries, repeat("attribute_ids")))
    with_lists = require_attribute_ids or any(atts is not None for atts in lists)
    if with_lists and not set(map(type, lists)) <= {list}:
        return None
    if with_lists and not set(map(type, chain.from_iterable(lists))) <= {int}:
        return None
    rles = None
    if "segm" in iou_types:
        rles = list(map(dict.get, entries, repeat("segmentation")))
        if not set(map(type, rles)) <= {dict}:
            return None
        if not set(map(type, map(dict.get, rles, repeat("counts")))) <= {str}:
            return None
    try:
        if not set(image_ids) <= known.sizes.keys():
            return None
    except TypeError:  # an unhashable id
        return None
    if rles is not None and list(map(dict.get, rles, repeat("size"))) != list(
        map(known.sizes.__getitem__, image_ids)
    ):
        return None
    scores_array = np.fromiter(map(float, scores), np.float64, len(scores))
    checked = Predictions(image_ids, category_ids, scores_array, lists, None, rles)
    return checked if _refers_to_known(checked, known, with_lists) else None


def _refers_to_known(predictions: Predictions, known: _Known, with_lists: bool) -> bool:
    """Whether columns of the right types name only categories and (``with_lists``) attributes the ground
    truth defines, and the scores are finite (image ids and mask sizes are each caller's)."""
    try:
        if not set(predictions.category_id) <= known.category_ids:
            return False
    except TypeError:  # an unhashable id
        return False
    if not np.isfinite(predictions.score).all():
        return False
    return not with_lists or known.attribute_ids.issuperset(chain.from_iterable(predictions.attribute_ids))


class _Rle(TypedDict):
    """A compressed RLE as a predictions file gives it; msgspec drops any other key."""

    size: tuple[int, int]
    counts: str


@functools.cache
def _entries_decoder(iou_types: tuple[str, ...]) -> msgspec.json.Decoder:
    """A msgspec decoder from a predictions file to typed entries: the fields the evaluation reads.

    msgspec checks the types as it parses, skips the other fields (``attribute_scores``) and makes no dict
    per entry: with 100 detections an image, half the time of decoding to dicts and checking those, and a
    third of the time to free them.
    """
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = [("image_id", int), ("category_id", int)]
    fields.append(("score", float))
    if "bbox" in iou_types:
        fields.append(("bbox", tuple[float, float, float, float]))
    if "segm" in iou_types:
        fields.append(("segmentation", _Rle))
    fields.append(("attribute_ids", list[int] | None, None))
    return msgspec.json.Decoder(list[msgspec.defstruct("_Entry", fields, gc=False)])  # type: ignore[misc]


def _checked_typed(
    data: bytes,
    source: str,
    gt: dict[str, Any],
    known: _Known,
    iou_types: Sequence[str],
    require_attribute_ids: bool,
) -> Predictions | None:
    """The checked predictions of a file whose entries all have the plain types (int ids, numbers, lists
    of ints, string RLE counts) and pass the whole-list checks, else None; raises for a malformed RLE.

    As strict as :func:`_checked_entries` or stricter: a None costs a decoding to dicts and that check,
    which then names the bad entry (or accepts what is unusual but valid, such as uncompressed RLEs).
    Each column is one pass over the entries; ids are checked by numbering them (:class:`PredictionIndex`),
    mask sizes compared as arrays.
    """
    try:
        entries = _entries_decoder(tuple(iou_types)).decode(data)
        image_rank = sorted_ranks(im["id"] for im in gt["images"])
        category_rank = sorted_ranks(c["id"] for c in gt["categories"])
        attribute_rank = sorted_ranks(known.attribute_ids)
    except (msgspec.DecodeError, TypeError):  # ValidationError included; TypeError: unorderable ids
        return None
    fields = ("image_id", "category_id", "attribute_ids")
    image_ids, category_ids, lists = (list(map(attrgetter(f), entries)) for f in fields)
    n = len(entries)
    scores = np.fromiter(map(attrgetter("score"), entries), np.float64, n)
    missing = lists.count(None)
    with_lists = require_attribute_ids or missing < n
    if with_lists and missing:
        return None
    try:
        image = np.fromiter(map(image_rank.__getitem__, image_ids), np.int64, n)
        category = np.fromiter(map(category_rank.__getitem__, category_ids), np.int64, n)
        counts = np.fromiter(map(len, lists), np.int64, n) if with_lists else np.zeros(n, dtype=np.int64)
        flat = chain.from_iterable(lists) if with_lists else ()
        columns = np.fromiter(map(attribute_rank.__getitem__, flat), np.int64, int(counts.sum()))
    except KeyError:  # an id the ground truth does not define
        return None
    if not np.isfinite(scores).all():
        return None
    boxes = None
    if "bbox" in iou_types:
        corners = chain.from_iterable(map(attrgetter("bbox"), entries))
        boxes = np.fromiter(corners, np.float64, 4 * n).reshape(-1, 4)
        if not (np.isfinite(boxes).all() and (boxes[:, 2:] >= 0).all()):
            return None
    index = PredictionIndex(image, category, counts, columns)
    if "segm" not in iou_types:
        return Predictions(image_ids, category_ids, scores, lists, boxes, None, index=index)
    rles = list(map(attrgetter("segmentation"), entries))
    image_size = np.full((len(gt["images"]), 2), -1, dtype=np.int64)  # by rank; -1: not ints
    for image_id, rank in image_rank.items():
        if all(isinstance(v, int) for v in known.sizes[image_id]):
            image_size[rank] = known.sizes[image_id]
    expected = image_size[image]
    sizes = np.fromiter(chain.from_iterable(map(itemgetter("size"), rles)), np.int64, 2 * n)
    if not ((sizes.reshape(-1, 2) == expected).all() and (expected >= 0).all()):
        return None
    checked = Predictions(image_ids, category_ids, scores, lists, boxes, rles, index=index)
    pixels = expected[:, 0] * expected[:, 1]
    return replace(checked, segmentation_area=_check_rle_counts(checked, pixels, source))


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
    return _decode_json(_read_bytes(path, what), path, what)


def _read_bytes(path: str | Path, what: str) -> bytes:
    path = Path(path)
    if not path.is_file():
        raise FashionsegError(f"{what} file {path} does not exist")
    return path.read_bytes()


def _decode_json(data: bytes, path: str | Path, what: str) -> Any:
    try:
        return msgspec.json.decode(data)  # 2-3x the standard library's speed: the files can be large
    except msgspec.DecodeError:
        pass  # what msgspec refuses (NaN, numbers past 64 bits): the standard library decides, and explains
    try:
        return json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FashionsegError(f"{what} file {path} is not valid JSON: {exc}") from exc


def _check_iou_types(iou_types: Sequence[str]) -> None:
    unknown = [t for t in iou_types if t not in IOU_TYPES]
    if unknown or not iou_types:
        raise FashionsegError(f"IoU types {list(iou_types)!r}: choose one or both of {', '.join(IOU_TYPES)}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


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
    strange = [a for a in value if not _is_int(a)]
    if strange:
        raise FashionsegError(
            f"{where}: attribute_ids holds {_short(strange[0])}, not an attribute id (an integer)"
        )
    unknown = sorted({a for a in value if a not in known}, key=str)
    if unknown:
        raise FashionsegError(
            f"{where}: attribute ids {unknown} are not in the ground truth's attributes list"
        )
    return [int(a) for a in value]


def _checked_boxes(entries: Sequence[dict[str, Any]], source: str) -> np.ndarray:
    """The entries' boxes as float64 [n, 4]; checked at once, then one by one to name a bad one."""
    raw = [entry.get("bbox") for entry in entries]
    try:
        boxes = np.array(raw, dtype=np.float64).reshape(len(raw), -1 if raw else 4)
    except (TypeError, ValueError):
        boxes = np.zeros((len(raw), 0))
    if boxes.shape[1] == 4 and np.isfinite(boxes).all() and (boxes[:, 2:] >= 0).all():
        return boxes
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
    if not isinstance(value["size"], list | tuple) or list(value["size"]) != [height, width]:
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


def _image_pixels(known: _Known, image_ids: Sequence[Any]) -> np.ndarray:
    """int64 [n]: the pixels of each checked prediction's image (height * width; -1 where not ints)."""
    pixels = {
        image_id: h * w if isinstance(h, int) and isinstance(w, int) else -1
        for image_id, (h, w) in known.sizes.items()
    }
    return np.fromiter(map(pixels.__getitem__, image_ids), np.int64, len(image_ids))


def _check_rle_counts(predictions: Predictions, pixels: np.ndarray, source: str) -> np.ndarray:
    """Raise for the first prediction whose compressed RLE does not decode to runs covering its image.

    ``pixels`` [n]: the pixels of each prediction's image (its RLE's size, checked). Returns the masks'
    areas, float64 [n] (decoding found them).
    """
    rles = predictions.segmentation or []
    counts = list(map(dict.get, rles, repeat("counts")))
    lengths = np.fromiter(map(len, counts), np.int64, len(counts))
    # Non-ASCII characters become one "?" each, which is malformed, as the string's own encoding would be.
    chars = np.frombuffer("".join(counts).encode("ascii", errors="replace"), np.uint8)
    malformed, area = _malformed(chars, lengths, pixels)
    bad = np.flatnonzero(malformed)
    if bad.size:
        rle = rles[bad[0]]
        raise FashionsegError(
            f"{source} entry {bad[0]} (image_id {predictions.image_id[bad[0]]!r}): malformed RLE: counts "
            f"{_short(rle['counts'])} do not decode to runs covering {rle['size'][0]}x{rle['size'][1]} pixels"
        )
    return area.astype(np.float64)


def malformed_rle_counts(counts: Sequence[bytes], pixels: np.ndarray) -> np.ndarray:
    """bool [n]: which COCO-compressed RLE count strings are malformed.

    ``counts`` [n] byte strings, ``pixels`` [n] the height*width each must cover. A string is well formed
    when pycocotools' ``rleFrString`` decodes it to non-negative runs summing to its pixels. The strings are
    decoded with numpy, chunk by chunk: each run is a group of 6-bit characters (offset 48) with a
    continuation bit 0x20 and a sign bit 0x10 in the group's last character, and runs from the fourth on are
    stored as differences to the run two places before.
    """
    lengths = np.fromiter(map(len, counts), np.int64, len(counts))
    return _malformed(np.frombuffer(b"".join(counts), np.uint8), lengths, np.asarray(pixels))[0]


def _malformed(chars: np.ndarray, lengths: np.ndarray, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(malformed bool [n], mask areas int64 [n], 0 where malformed) of the strings laid end to end in
    ``chars`` (uint8), ``lengths`` [n] long: :func:`malformed_rle_counts`, and pycocotools' ``area``."""
    n = lengths.size
    bad = np.zeros(n, dtype=bool)
    area = np.zeros(n, dtype=np.int64)
    # Chunks of about 256k characters keep the working arrays in cache: 3x faster than all strings at once.
    string_end = np.cumsum(lengths)
    cuts = np.searchsorted(string_end, np.arange(_RLE_CHUNK, string_end[-1] if n else 0, _RLE_CHUNK)) + 1
    bounds = np.unique(np.r_[0, np.minimum(cuts, n), n])
    offsets = np.r_[0, string_end]
    for start, end in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        text = chars[offsets[start] : offsets[end]]
        bad[start:end], area[start:end] = _malformed_chunk(text, pixels[start:end], lengths[start:end])
    return bad, area


_RLE_CHUNK = 1 << 18


def _malformed_chunk(
    text: np.ndarray, pixels: np.ndarray, lengths: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_malformed` of one chunk: ``text`` uint8 the strings laid end to end."""
    n = lengths.size
    string_end = np.cumsum(lengths)
    string_start = string_end - lengths
    bad = (lengths == 0) & (pixels != 0)
    chars = text - np.uint8(48)
    if chars.size == 0:
        return bad, np.zeros(n, dtype=np.int64)
    invalid = chars > 63
    if invalid.any():
        bad[np.searchsorted(string_end, np.flatnonzero(invalid), side="right")] = True
        chars[invalid] = 0
    nonempty = np.flatnonzero(lengths > 0)
    last_char = string_end[nonempty] - 1
    bad[nonempty[chars[last_char] >= 32]] = True  # the string stops inside a run
    chars[last_char] &= np.uint8(0x1F)  # so that a truncated run does not spill into the next string
    # A run ends at each character without the continuation bit 0x20: in real masks nearly every character
    # is a run of its own, so the runs are read off the characters at once and the longer ones patched in.
    ends = chars < 32
    continued = np.flatnonzero(~ends)  # characters a run goes on after
    first_run = string_start - np.searchsorted(continued, string_start)  # [n]; = next string's for empty ones
    num_runs = chars.size - continued.size
    last = chars[ends]  # each run's last character: a 5-bit two's complement number, 0x10 the sign
    last ^= 0x10
    value = last.view(np.int8).astype(np.int64)
    value -= 16
    if continued.size:  # several characters: 5 bits each, the first one lowest, the sign bit in the last
        run = continued - np.arange(continued.size)  # the run each continued character belongs to
        head = np.flatnonzero(np.diff(run, prepend=-1))  # its first character, among the continued ones
        more = np.diff(head, append=continued.size)  # characters before the run's last one
        place = np.arange(continued.size) - np.repeat(head, more)
        low = (chars[continued] & 0x1F).astype(np.int64)
        low[place >= 7] = 0  # over 35 bits cannot be a run of a real image: malformed, value immaterial
        low <<= 5 * np.minimum(place, 6)
        overlong = more >= 7
        if overlong.any():
            bad[np.searchsorted(string_end, continued[head[overlong]], side="right")] = True
        final = chars[continued[head] + more].astype(np.int64)
        total = np.add.reduceat(low, head)
        total += np.where(overlong, 0, (final & 0x1F) << (5 * np.minimum(more, 6)))
        sign = (final & 0x10) != 0
        total[sign] -= np.int64(1) << (5 * np.minimum(more[sign] + 1, 7))
        value[run[head]] = total
    # Run m >= 3 is the value read plus run m - 2. Along each of the two interleaved classes of positions
    # (stride 2), a run is the cumulative sum of the values from the start of its stretch, the stretches
    # starting at each string's runs 0, 1 and 2. One running sum over the class serves all its stretches:
    # a stretch's runs are the sum minus its value before the stretch, so their total and minimum are
    # reduceat's less that base.
    restart = first_run[:, None] + np.arange(3)  # [n, 3]
    exists = restart < np.r_[first_run[1:], num_runs][:, None]
    stretch_sum = np.zeros((n, 3), dtype=np.int64)
    stretch_min = np.zeros((n, 3), dtype=np.int64)
    for parity in (0, 1):
        mine = exists & (restart % 2 == parity)
        starts = restart[mine] // 2  # increasing; the class begins with a stretch
        if not starts.size:
            continue
        sums = np.cumsum(value[parity::2])
        base = sums[starts - 1]
        base[starts == 0] = 0
        stretch_sum[mine] = np.add.reduceat(sums, starts) - np.diff(starts, append=sums.size) * base
        stretch_min[mine] = np.minimum.reduceat(sums, starts) - base
    bad |= (stretch_min < 0).any(axis=1) | (stretch_sum.sum(axis=1) != pixels)
    # The mask's area: the runs of ones, every second run from the string's second one (run 1's stretch).
    return bad, np.where(bad, 0, stretch_sum[:, 1])


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
