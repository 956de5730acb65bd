"""The field checks both evaluation inputs share (:mod:`~fashionseg.evaluation.ground_truth` and
:mod:`~fashionseg.evaluation.results`): reading JSON, ids and numbers, boxes, RLEs and their count strings.

Errors are :class:`FashionsegError` naming the file, the entry, the field and the value; ``where`` and
``source`` arguments are that name, as the caller words it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
from pycocotools import mask as mask_utils

from fashionseg.errors import FashionsegError

IOU_TYPES = ("bbox", "segm")


def check_iou_types(iou_types: Sequence[str]) -> None:
    """Raise unless ``iou_types`` is one or both of :data:`IOU_TYPES`."""
    unknown = [t for t in iou_types if t not in IOU_TYPES]
    if unknown or not iou_types:
        raise FashionsegError(f"IoU types {list(iou_types)!r}: choose one or both of {', '.join(IOU_TYPES)}")


def read_json(path: str | Path, what: str) -> Any:
    """The JSON file at ``path``; ``what`` names it in errors ("ground-truth", "predictions")."""
    return decode_json(read_bytes(path, what), path, what)


def read_bytes(path: str | Path, what: str) -> bytes:
    """The bytes of the file at ``path``, which must exist."""
    path = Path(path)
    if not path.is_file():
        raise FashionsegError(f"{what} file {path} does not exist")
    return path.read_bytes()


def decode_json(data: bytes, path: str | Path, what: str) -> Any:
    """``data`` decoded as JSON, the file at ``path`` named in the error when it is not."""
    try:
        return msgspec.json.decode(data)  # 2-3x the standard library's speed: the files can be large
    except msgspec.DecodeError:
        pass  # what msgspec refuses (NaN, numbers past 64 bits): the standard library decides, and explains
    try:
        return json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FashionsegError(f"{what} file {path} is not valid JSON: {exc}") from exc


def is_int(value: Any) -> bool:
    """Whether ``value`` is an integer id: an int or numpy integer, not a bool."""
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """Whether ``value`` is an int or float (numpy's too), not a bool."""
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


def finite(value: Any) -> bool:
    """Whether ``value`` is a finite int or float (True and False count as 1 and 0, as in COCO's iscrowd)."""
    try:
        return isinstance(value, int | float) and math.isfinite(value)
    except OverflowError:  # an int past float's range
        return False


def hashable(value: Any) -> bool:
    """Whether ``value`` can be looked up in a set (an id that is a list cannot)."""
    try:
        hash(value)
    except TypeError:
        return False
    return True


def short(value: Any, limit: int = 60) -> str:
    """``repr(value)``, cut to ``limit`` characters for an error message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def checked_boxes(entries: Sequence[dict[str, Any]], source: str) -> np.ndarray:
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
    if not isinstance(value, list | tuple) or len(value) != 4 or not all(is_number(v) for v in value):
        raise FashionsegError(f"{where}: bbox {value!r} is not [x, y, width, height]")
    if not all(math.isfinite(v) for v in value) or value[2] < 0 or value[3] < 0:
        raise FashionsegError(f"{where}: bbox {value!r} has a non-finite value or a negative size")


def checked_rle(value: Any, size: Sequence[Any], where: str) -> dict[str, Any]:
    """A compressed RLE dict with ``str`` counts; uncompressed (list) counts are compressed here."""
    if value is None:
        raise FashionsegError(f"{where}: no 'segmentation'; evaluate boxes only with --iou-types bbox")
    if not isinstance(value, dict) or "counts" not in value or "size" not in value:
        raise FashionsegError(
            f"{where}: segmentation must be an RLE {{'size': [h, w], 'counts': ...}}, got {short(value)}"
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


def malformed_rle_counts(counts: Sequence[bytes], pixels: np.ndarray) -> np.ndarray:
    """bool [n]: which COCO-compressed RLE count strings are malformed.

    ``counts`` [n] byte strings, ``pixels`` [n] the height*width each must cover. A string is well formed
    when pycocotools' ``rleFrString`` decodes it to non-negative runs summing to its pixels. The strings are
    decoded with numpy, chunk by chunk: each run is a group of 6-bit characters (offset 48) with a
    continuation bit 0x20 and a sign bit 0x10 in the group's last character, and runs from the fourth on are
    stored as differences to the run two places before.
    """
    lengths = np.fromiter(map(len, counts), np.int64, len(counts))
    return malformed_with_area(np.frombuffer(b"".join(counts), np.uint8), lengths, np.asarray(pixels))[0]


def malformed_with_area(
    chars: np.ndarray, lengths: np.ndarray, pixels: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
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
    """:func:`malformed_with_area` of one chunk: ``text`` uint8 the strings laid end to end."""
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
