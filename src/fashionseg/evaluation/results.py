"""Load and check the predictions of an evaluation against its checked ground truth
(:mod:`~fashionseg.evaluation.ground_truth`).

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
import math
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from itertools import chain, repeat
from operator import attrgetter, itemgetter
from pathlib import Path
from typing import Any, TypedDict

import msgspec
import numpy as np

from fashionseg.errors import FashionsegError
from fashionseg.evaluation.fields import (
    check_iou_types,
    checked_boxes,
    checked_rle,
    decode_json,
    hashable,
    is_int,
    is_number,
    malformed_with_area,
    read_bytes,
    short,
)

__all__ = [
    "PredictionIndex",
    "Predictions",
    "carries_attributes",
    "check_predictions",
    "load_predictions",
    "sorted_ranks",
]


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
    check_iou_types(iou_types)
    sizes = {im["id"]: [im.get("height"), im.get("width")] for im in gt["images"]}
    known = _Known(sizes, {c["id"] for c in gt["categories"]}, {a["id"] for a in gt.get("attributes", [])})
    required = bool(require_attribute_ids)
    checked, entries = None, predictions
    if isinstance(predictions, str | Path):
        data = read_bytes(predictions, "predictions")
        checked = _checked_typed(data, source, gt, known, iou_types, required)
        if checked is None:  # not a plain file of valid entries: decoded to dicts and checked as a list
            entries = decode_json(data, predictions, "predictions")
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
        checked = replace(checked, bbox=checked_boxes(entries, source))
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
    if not hashable(image_id) or image_id not in known.sizes:
        raise FashionsegError(f"{where}: image_id is not an image of the ground truth")
    category_id = entry.get("category_id")
    if not hashable(category_id) or category_id not in known.category_ids or isinstance(category_id, bool):
        raise FashionsegError(
            f"{where}: category_id {category_id!r} is not in the ground truth's categories "
            f"({_id_span(known.category_ids)})"
        )
    score = entry.get("score")
    if not is_number(score) or not math.isfinite(score):
        raise FashionsegError(f"{where}: score {score!r} is not a finite number")
    out: dict[str, Any] = {"image_id": image_id, "category_id": category_id, "score": float(score)}
    if "attribute_ids" in entry or require_attribute_ids:
        out["attribute_ids"] = _checked_attributes(entry.get("attribute_ids"), known.attribute_ids, where)
    if "segm" in iou_types:
        out["segmentation"] = checked_rle(entry.get("segmentation"), known.sizes[image_id], where)
    return out


def _id_span(ids: Collection[int]) -> str:
    return f"{len(ids)} ids from {min(ids)} to {max(ids)}" if ids else "none"


def _checked_attributes(value: Any, known: set[int], where: str) -> list[int]:
    if not isinstance(value, list):
        raise FashionsegError(
            f"{where}: 'attribute_ids' is {'missing' if value is None else repr(value)}; every prediction "
            "needs a list of attribute ids (possibly empty)"
        )
    strange = [a for a in value if not is_int(a)]
    if strange:
        raise FashionsegError(
            f"{where}: attribute_ids holds {short(strange[0])}, not an attribute id (an integer)"
        )
    unknown = sorted({a for a in value if a not in known}, key=str)
    if unknown:
        raise FashionsegError(
            f"{where}: attribute ids {unknown} are not in the ground truth's attributes list"
        )
    return [int(a) for a in value]


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
    malformed, area = malformed_with_area(chars, lengths, pixels)
    bad = np.flatnonzero(malformed)
    if bad.size:
        rle = rles[bad[0]]
        raise FashionsegError(
            f"{source} entry {bad[0]} (image_id {predictions.image_id[bad[0]]!r}): malformed RLE: counts "
            f"{short(rle['counts'])} do not decode to runs covering {rle['size'][0]}x{rle['size'][1]} pixels"
        )
    return area.astype(np.float64)
