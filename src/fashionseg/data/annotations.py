"""Loading and validating Fashionpedia/COCO annotation files (``fashionseg data check``).

:func:`check_annotations` reports every problem with the image id, annotation id, field and value. Two
severities:

- **error**: the image or annotation cannot be used as it is (unknown category or attribute id, duplicate
  id, annotation of a missing image, bbox with non-positive size or outside the image, segmentation without
  a usable polygon, empty or malformed mask, missing/unreadable image file, width/height that disagree with
  the file or exceed what fashionseg reads). Errors about the file as a whole (duplicate category or
  attribute ids, missing fields of a category or attribute) have neither an image nor an annotation id.
  A polygon part with a point over an image size outside the image is unusable: pycocotools crashes on it.
- **warning**: usable after a fix that loading applies anyway (a bbox a little past the border is clipped, a
  degenerate polygon part is dropped while other parts remain, an ``iscrowd`` other than 0/1).

Skip mode (training's default, ``DataConfig.skip_bad``): :func:`drop_bad` removes every image and
annotation that has an error (:attr:`CheckReport.bad_image_ids`, :attr:`CheckReport.bad_annotation_ids`);
file-level errors cannot be skipped. Strict mode (``skip_bad=False``) raises on any error instead, and
``data check --strict`` also counts warnings as errors.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pycocotools.mask as mask_utils
from tqdm.auto import tqdm

from fashionseg.data.images import MAX_PIXELS, ImageReadError, image_size, read_image
from fashionseg.errors import FashionsegError

REQUIRED_KEYS = ("images", "annotations", "categories")
BBOX_TOLERANCE = 2.0  # pixels a bbox may extend past the image border before it is reported
MAX_SIDE = 65_535  # JPEG's largest side; it also bounds how far out a polygon may reach (_near_image)


def load_annotations(path: str | Path) -> dict[str, Any]:
    """Read a COCO/Fashionpedia JSON file; raise :class:`FashionsegError` naming the file if it is unusable.

    ``attributes`` may be absent (plain COCO files); it then reads as an empty list.
    """
    path = Path(path)
    if not path.is_file():
        raise FashionsegError(
            f"annotation file {path} does not exist; run `fashionseg data synth` or `fashionseg data fetch`"
        )
    try:
        coco = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise FashionsegError(f"{path} is not a text (UTF-8 JSON) file: {exc}") from None
    except json.JSONDecodeError as exc:
        raise FashionsegError(
            f"{path} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    if not isinstance(coco, dict):
        raise FashionsegError(f"{path}: expected a JSON object at the top level, found {type(coco).__name__}")
    missing = [k for k in REQUIRED_KEYS if k not in coco]
    if missing:
        raise FashionsegError(
            f"{path} lacks the top-level key(s) {', '.join(missing)}; a Fashionpedia/COCO annotation file "
            f"has {', '.join(REQUIRED_KEYS)} (and attributes)"
        )
    coco.setdefault("attributes", [])
    for key in (*REQUIRED_KEYS, "attributes"):
        if not isinstance(coco[key], list):
            raise FashionsegError(f"{path}: {key} must be a list, found {type(coco[key]).__name__}")
    return coco


@dataclass(frozen=True)
class Problem:
    """One finding of :func:`check_annotations`."""

    severity: str  # "error" | "warning"
    image_id: int | None
    annotation_id: int | None
    field: str  # e.g. "bbox", "segmentation", "category_id", "file_name", "categories[3].id"
    value: Any
    message: str

    def __str__(self) -> str:
        where = []
        if self.image_id is not None:
            where.append(f"image {self.image_id}")
        if self.annotation_id is not None:
            where.append(f"annotation {self.annotation_id}")
        value = repr(self.value)
        if len(value) > 80:
            value = value[:77] + "..."
        return f"{self.severity:7s} {' '.join(where) or 'file':24s} {self.field}={value}: {self.message}"


@dataclass
class CheckReport:
    """The problems found and the summary counts of an annotation file."""

    problems: list[Problem] = field(default_factory=list)
    num_images: int = 0
    num_instances: int = 0
    instances_per_category: dict[int, int] = field(default_factory=dict)
    attribute_counts: dict[int, int] = field(default_factory=dict)
    category_names: dict[int, str] = field(default_factory=dict)
    attribute_names: dict[int, str] = field(default_factory=dict)

    def errors(self, strict: bool = False) -> list[Problem]:
        """The problems that make the check fail (warnings count too when ``strict``)."""
        return [p for p in self.problems if strict or p.severity == "error"]

    def failed(self, strict: bool = False) -> bool:
        return bool(self.errors(strict))

    @property
    def file_errors(self) -> list[Problem]:
        """Errors about the file as a whole: no image or annotation can be dropped to fix them."""
        return [
            p
            for p in self.problems
            if p.severity == "error" and p.image_id is None and p.annotation_id is None
        ]

    @property
    def bad_image_ids(self) -> set[int]:
        """Images with an image-level error (dropped with all their annotations in skip mode)."""
        return {
            p.image_id
            for p in self.problems
            if p.severity == "error" and p.image_id is not None and p.annotation_id is None
        }

    @property
    def bad_annotation_ids(self) -> set[int]:
        """Annotations with an error (dropped in skip mode)."""
        return {
            p.annotation_id for p in self.problems if p.severity == "error" and p.annotation_id is not None
        }

    def format(self, max_problems: int = 50, strict: bool = False) -> str:
        """The summary and up to ``max_problems`` problem lines, as ``data check`` prints them."""
        n_err = sum(p.severity == "error" for p in self.problems)
        n_warn = len(self.problems) - n_err
        lines = [
            f"images: {self.num_images}",
            f"instances: {self.num_instances}",
            f"categories with instances: {len(self.instances_per_category)}",
        ]
        for cid, n in sorted(self.instances_per_category.items(), key=lambda kv: (-kv[1], kv[0])):
            lines.append(f"  {cid:3d} {self.category_names.get(cid, '?'):40s} {n:8d}")
        lines.append(f"attributes used: {len(self.attribute_counts)}")
        for aid, n in sorted(self.attribute_counts.items(), key=lambda kv: (-kv[1], kv[0])):
            lines.append(f"  {aid:3d} {self.attribute_names.get(aid, '?'):40s} {n:8d}")
        lines.append(f"problems: {n_err} error(s), {n_warn} warning(s)" + (" (strict)" if strict else ""))
        lines += [f"  {p}" for p in self.problems[:max_problems]]
        if len(self.problems) > max_problems:
            lines.append(
                f"  ... and {len(self.problems) - max_problems} more (raise --max-problems to see them)"
            )
        return "\n".join(lines)


def rle_string_counts(counts: str) -> list[int]:
    """The run lengths of a COCO compressed RLE string (pycocotools' ``rleFrString``, in Python).

    Raises ``ValueError`` on a character outside the encoding or a string that ends mid-number. Decoding
    the runs costs a pass over the string, not over the image, so checking stays fast for large images.
    """
    runs: list[int] = []
    pos, n = 0, len(counts)
    while pos < n:
        value, shift, more = 0, 0, True
        while more:
            if pos >= n:
                raise ValueError("the string ends in the middle of a run length")
            c = ord(counts[pos]) - 48
            if not 0 <= c < 64:
                raise ValueError(f"invalid character {counts[pos]!r} at position {pos}")
            value |= (c & 0x1F) << shift
            more = bool(c & 0x20)
            pos += 1
            shift += 5
            if not more and c & 0x10:
                value |= -1 << shift
        if len(runs) > 2:
            value += runs[-2]  # runs after the first two are stored as differences
        runs.append(value)
    return runs


def _polygon_parts(segmentation: list, height: int, width: int) -> tuple[list[list[float]], list[str]]:
    """The usable polygon parts (>= 3 points, even coordinate count, all numbers, near the image) and why
    others are not.

    pycocotools rasterises a polygon edge by edge, pixel step by pixel step: a coordinate far outside the
    image (1e9) makes it allocate without bound or crash the process, so such parts are refused here.
    """
    good, why = [], []
    for k, part in enumerate(segmentation):
        if not isinstance(part, list) or not all(_is_number(v) for v in part):
            why.append(f"part {k} is not a list of numbers")
        elif len(part) % 2:
            why.append(f"part {k} has an odd number of coordinates ({len(part)})")
        elif len(part) < 6:
            why.append(f"part {k} has {len(part) // 2} point(s); a polygon needs at least 3")
        elif not _near_image(part, height, width):
            why.append(f"part {k} has a point more than the image's size outside the {width}x{height} image")
        else:
            good.append([float(v) for v in part])
    return good, why


def _near_image(polygon: list[float], height: int, width: int) -> bool:
    """Whether every point lies within one image size of the image: x in [-width, 2 width], same for y."""
    xs, ys = polygon[0::2], polygon[1::2]
    return -width <= min(xs) and max(xs) <= 2 * width and -height <= min(ys) and max(ys) <= 2 * height


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _rle_problem(rle: dict, height: int, width: int) -> str | None:
    """Why an RLE segmentation is malformed for an image of this size, or None."""
    size = rle.get("size")
    if not (isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) for v in size)):
        return f"RLE size {size!r} is not [height, width]"
    if size != [height, width]:
        return f"RLE size {size} does not match the image's [height, width] = [{height}, {width}]"
    counts = rle.get("counts")
    if isinstance(counts, str):
        try:
            runs = rle_string_counts(counts)
        except ValueError as exc:
            return f"compressed RLE counts are malformed: {exc}"
    elif isinstance(counts, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in counts):
        runs = counts
    else:
        return "RLE counts must be a string (compressed) or a list of integers (uncompressed)"
    if any(r < 0 for r in runs):
        return "RLE counts contain a negative run length"
    if sum(runs) != height * width:
        return f"RLE run lengths sum to {sum(runs)}, not height*width = {height * width}"
    return None


def _to_rle(segmentation: Any, height: int, width: int) -> dict:
    """A pycocotools RLE of a polygon list (usable parts only) or an RLE dict (compressed or not)."""
    if isinstance(segmentation, list):
        parts, _ = _polygon_parts(segmentation, height, width)
        if not parts:
            raise ValueError("no polygon with at least 3 points")
        return mask_utils.merge(mask_utils.frPyObjects(parts, height, width))
    if isinstance(segmentation.get("counts"), list):
        return mask_utils.frPyObjects(segmentation, height, width)
    return {"size": segmentation["size"], "counts": segmentation["counts"].encode("ascii")}


def decode_segmentation(segmentation: Any, height: int, width: int) -> np.ndarray:
    """The mask ``uint8 [height, width]`` (0/1) of a polygon list or an RLE (compressed or uncompressed).

    Degenerate polygon parts (< 3 points) are ignored; raises ``ValueError`` when nothing usable remains or
    an RLE is malformed (:func:`check_annotations` reports these beforehand).
    """
    if isinstance(segmentation, dict):
        problem = _rle_problem(segmentation, height, width)
        if problem:
            raise ValueError(problem)
    elif not isinstance(segmentation, list):
        raise ValueError(
            f"segmentation must be a polygon list or an RLE dict, not {type(segmentation).__name__}"
        )
    return mask_utils.decode(_to_rle(segmentation, height, width))


def _check_segmentation(segmentation: Any, height: int, width: int) -> list[tuple[str, str]]:
    """(severity, message) pairs for one annotation's segmentation, empty when it decodes to pixels."""
    if isinstance(segmentation, dict):
        problem = _rle_problem(segmentation, height, width)
        if problem:
            return [("error", f"malformed RLE: {problem}")]
        found: list[tuple[str, str]] = []
    elif isinstance(segmentation, list):
        if not segmentation:
            return [("error", "segmentation is empty")]
        good, why = _polygon_parts(segmentation, height, width)
        if not good:
            return [("error", "degenerate polygon: " + "; ".join(why))]
        found = [("warning", "degenerate polygon part ignored: " + w) for w in why]
    else:
        return [("error", "segmentation must be a polygon list or an RLE dict")]
    if int(mask_utils.area(_to_rle(segmentation, height, width))) == 0:
        found.append(("error", "empty mask: the segmentation covers no pixel of the image"))
    return found


def _is_id(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _positive_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v > 0


def check_annotations(
    coco: dict[str, Any],
    images_dir: str | Path | None = None,
    *,
    bbox_tolerance: float = BBOX_TOLERANCE,
    decode_images: bool = False,
    show_progress: bool = False,
) -> CheckReport:
    """Validate a loaded annotation dict (see the module docstring for what is checked and how severe).

    With ``images_dir``, every image file is opened: by default only its header (fast: size and EXIF
    orientation), with ``decode_images`` fully, which also finds truncated files.
    """
    report = CheckReport()
    add = report.problems.append

    category_ids: set[int] = set()
    for k, cat in enumerate(coco.get("categories", [])):
        cid = cat.get("id") if isinstance(cat, dict) else None
        if not isinstance(cid, int) or not isinstance(cat.get("name"), str):
            add(
                Problem(
                    "error", None, None, f"categories[{k}]", cat, "a category needs an integer id and a name"
                )
            )
            continue
        if cid in category_ids:
            add(Problem("error", None, None, f"categories[{k}].id", cid, "duplicate category id"))
        category_ids.add(cid)
        report.category_names[cid] = cat["name"]
    attribute_ids: set[int] = set()
    for k, att in enumerate(coco.get("attributes", [])):
        aid = att.get("id") if isinstance(att, dict) else None
        if not isinstance(aid, int) or not isinstance(att.get("name"), str):
            add(
                Problem(
                    "error",
                    None,
                    None,
                    f"attributes[{k}]",
                    att,
                    "an attribute needs an integer id and a name",
                )
            )
            continue
        if aid in attribute_ids:
            add(Problem("error", None, None, f"attributes[{k}].id", aid, "duplicate attribute id"))
        attribute_ids.add(aid)
        report.attribute_names[aid] = str(att.get("name", "?"))

    sizes: dict[int, tuple[int, int]] = {}  # image id -> (width, height) from the JSON
    # ids that are not integers are reported below; counting only integers keeps lists out of the Counter
    id_counts = Counter(
        im.get("id") for im in coco["images"] if isinstance(im, dict) and _is_id(im.get("id"))
    )
    images = tqdm(coco["images"], desc="check images", disable=not show_progress, dynamic_ncols=True)
    for k, im in enumerate(images):
        iid = im.get("id") if isinstance(im, dict) else None
        if not isinstance(iid, int) or isinstance(iid, bool):
            add(Problem("error", None, None, f"images[{k}].id", iid, "an image needs an integer id"))
            continue
        if id_counts[iid] > 1:
            add(Problem("error", iid, None, "id", iid, f"duplicate image id ({id_counts[iid]} images)"))
        width, height, file_name = im.get("width"), im.get("height"), im.get("file_name")
        if not (_positive_int(width) and _positive_int(height)):
            add(Problem("error", iid, None, "width/height", [width, height], "must be positive integers"))
            continue
        if width * height > MAX_PIXELS or max(width, height) > MAX_SIDE:
            message = (
                f"over the limits of every image fashionseg reads ({MAX_PIXELS:,} pixels, {MAX_SIDE} a side)"
            )
            add(Problem("error", iid, None, "width/height", [width, height], message))
            continue
        sizes[iid] = (width, height)
        if not isinstance(file_name, str) or not file_name:
            add(Problem("error", iid, None, "file_name", file_name, "missing file name"))
            continue
        if images_dir is not None:
            _check_image_file(Path(images_dir), file_name, iid, width, height, decode_images, add)
    report.num_images = len(coco["images"])

    ann_counts = Counter(
        a.get("id") for a in coco["annotations"] if isinstance(a, dict) and _is_id(a.get("id"))
    )
    per_category: Counter[int] = Counter()
    per_attribute: Counter[int] = Counter()
    anns = tqdm(coco["annotations"], desc="check annotations", disable=not show_progress, dynamic_ncols=True)
    for k, ann in enumerate(anns):
        aid = ann.get("id") if isinstance(ann, dict) else None
        if not isinstance(aid, int) or isinstance(aid, bool):
            add(
                Problem("error", None, None, f"annotations[{k}].id", aid, "an annotation needs an integer id")
            )
            continue
        iid = ann.get("image_id")
        if not isinstance(iid, int) or isinstance(iid, bool):
            add(Problem("error", None, aid, "image_id", iid, "must be an integer image id"))
            continue
        if ann_counts[aid] > 1:
            add(
                Problem(
                    "error", iid, aid, "id", aid, f"duplicate annotation id ({ann_counts[aid]} annotations)"
                )
            )
        if iid not in sizes:
            known = iid in id_counts
            add(
                Problem(
                    "error",
                    iid,
                    aid,
                    "image_id",
                    iid,
                    "points to an image without a valid width/height"
                    if known
                    else "points to a missing image",
                )
            )
        cid = ann.get("category_id")
        if not isinstance(cid, int) or cid not in category_ids:
            add(Problem("error", iid, aid, "category_id", cid, "unknown category id (not in categories)"))
        else:
            per_category[cid] += 1
        attrs = ann.get("attribute_ids", [])
        if not isinstance(attrs, list) or not all(isinstance(a, int) for a in attrs):
            add(Problem("error", iid, aid, "attribute_ids", attrs, "must be a list of integer attribute ids"))
        else:
            unknown = sorted(set(attrs) - attribute_ids)
            if unknown:
                add(Problem("error", iid, aid, "attribute_ids", unknown, "unknown attribute id(s)"))
            per_attribute.update(a for a in attrs if a in attribute_ids)
        if ann.get("iscrowd", 0) not in (0, 1):
            add(Problem("warning", iid, aid, "iscrowd", ann.get("iscrowd"), "should be 0 or 1"))
        if iid in sizes:
            width, height = sizes[iid]
            _check_bbox(ann.get("bbox"), iid, aid, width, height, bbox_tolerance, add)
            for severity, message in _check_segmentation(ann.get("segmentation"), height, width):
                add(Problem(severity, iid, aid, "segmentation", _short(ann.get("segmentation")), message))
    report.num_instances = len(coco["annotations"])
    report.instances_per_category = dict(sorted(per_category.items()))
    report.attribute_counts = dict(sorted(per_attribute.items()))
    return report


def _short(value: Any) -> Any:
    """A segmentation shortened for a problem line (RLE counts can be megabytes)."""
    if isinstance(value, dict):
        return {"size": value.get("size"), "counts": "..."}
    return value


def _check_image_file(
    images_dir: Path, file_name: str, iid: int, width: int, height: int, decode: bool, add
) -> None:
    path = images_dir / file_name
    try:
        if decode:
            actual = read_image(path).size
        else:
            actual = image_size(path)
    except ImageReadError as exc:
        add(Problem("error", iid, None, "file_name", file_name, f"missing or unreadable image: {exc}"))
        return
    if actual != (width, height):
        add(
            Problem(
                "error",
                iid,
                None,
                "width/height",
                [width, height],
                f"the JSON says {width}x{height} but {path} is {actual[0]}x{actual[1]} "
                "(after EXIF orientation)",
            )
        )


def _check_bbox(bbox: Any, iid: int, aid: int, width: int, height: int, tolerance: float, add) -> None:
    if not (isinstance(bbox, list) and len(bbox) == 4 and all(_is_number(v) for v in bbox)):
        add(Problem("error", iid, aid, "bbox", bbox, "must be [x, y, width, height] of 4 finite numbers"))
        return
    x, y, w, h = bbox
    if w <= 0 or h <= 0:
        add(Problem("error", iid, aid, "bbox", bbox, "non-positive width or height"))
        return
    clipped_w = min(x + w, width) - max(x, 0)
    clipped_h = min(y + h, height) - max(y, 0)
    if clipped_w <= 0 or clipped_h <= 0:
        add(Problem("error", iid, aid, "bbox", bbox, f"lies outside the {width}x{height} image"))
    elif x < -tolerance or y < -tolerance or x + w > width + tolerance or y + h > height + tolerance:
        add(
            Problem(
                "warning",
                iid,
                aid,
                "bbox",
                bbox,
                f"extends more than {tolerance:g} px past the {width}x{height} image (clipped on load)",
            )
        )


def drop_bad(
    coco: dict[str, Any], report: CheckReport, source: str = "the annotation file"
) -> dict[str, Any]:
    """A copy of ``coco`` without the images and annotations that have errors (skip mode).

    Raises :class:`FashionsegError` naming ``source`` when the report has file-level errors, which no
    dropping can fix.
    """
    if report.file_errors:
        raise FashionsegError(
            f"{source} has errors that no image can be skipped to fix:\n"
            + "\n".join(f"  {p}" for p in report.file_errors)
        )
    bad_images, bad_anns = report.bad_image_ids, report.bad_annotation_ids
    images = [im for im in coco["images"] if im.get("id") not in bad_images]
    kept = {im["id"] for im in images}
    annotations = [
        a for a in coco["annotations"] if a.get("id") not in bad_anns and a.get("image_id") in kept
    ]
    return {**coco, "images": images, "annotations": annotations}


def subset_annotations(
    coco: dict[str, Any],
    max_images: int | None = None,
    categories: Iterable[int] | None = None,
    source: str = "the annotation file",
) -> dict[str, Any]:
    """A slice of ``coco``: only ``categories`` (their annotations, and the images holding one), then the
    first ``max_images`` images in file order. The ``categories`` list of the result is filtered too, so a
    :class:`~fashionseg.data.ontology.LabelSpace` built from it has exactly those classes.
    """
    images, annotations, cats = coco["images"], coco["annotations"], coco["categories"]
    # entries that are not objects have no id to select by: they go (check_annotations reports them)
    if categories is not None:
        wanted = set(categories)
        cats = [c for c in cats if isinstance(c, dict)]
        unknown = sorted(wanted - {c.get("id") for c in cats if _is_id(c.get("id"))})
        if unknown:
            raise FashionsegError(
                f"categories {unknown} are not in {source} (its ids: "
                f"{sorted(c['id'] for c in cats if _is_id(c.get('id')))}); fix data.categories"
            )
        annotations = [a for a in annotations if isinstance(a, dict) and _get(a, "category_id") in wanted]
        holding = {_get(a, "image_id") for a in annotations}
        images = [im for im in images if isinstance(im, dict) and _get(im, "id") in holding]
        cats = [c for c in cats if _get(c, "id") in wanted]
    if max_images is not None:
        if max_images <= 0:
            raise FashionsegError(f"{source}: max_images must be a positive number, got {max_images}")
        images = images[:max_images]
        kept = {_get(im, "id") for im in images if isinstance(im, dict)}
        annotations = [a for a in annotations if isinstance(a, dict) and _get(a, "image_id") in kept]
    return {**coco, "images": images, "annotations": annotations, "categories": cats}


def _get(entry: dict[str, Any], key: str) -> Any:
    """``entry[key]`` when it is an integer id, else None (lists and dicts cannot be looked up in a set)."""
    value = entry.get(key)
    return value if _is_id(value) else None
