"""A photo collection: a folder of images plus an optional metadata CSV, checked against each other.

The CSV has a header and one row per image; the ``file`` column (any name, see ``file_column``) holds the
image's path relative to the images folder (for a flat folder, its file name), every other column is
metadata to group by (season, date, collection, brand, region, ...). Values are kept as text.

Problems of the CSV itself (ragged rows, a missing ``file`` column, duplicate or empty file names) stop with
an error naming the file and line; mismatches between CSV and folder (rows naming no image, images without a
row) are only reported, since a partial table is normal while a collection is being catalogued.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd
from PIL import Image
from tqdm.auto import tqdm

from fashionseg.data import ontology, synthetic
from fashionseg.data.annotations import load_annotations
from fashionseg.data.ontology import ontology_json
from fashionseg.errors import FashionsegError
from fashionseg.predict import list_images
from fashionseg.trends.inference import detection_records, image_record, predictions_frame


@dataclass(frozen=True)
class Collection:
    """The images of ``root`` (relative POSIX paths, sorted) and their metadata (indexed by file)."""

    root: Path
    files: tuple[str, ...]
    metadata: pd.DataFrame | None
    metadata_path: Path | None
    images_without_metadata: tuple[str, ...]
    rows_without_image: tuple[str, ...]

    def report(self) -> dict[str, object]:
        """The collection's counts and mismatches, as ``report.json`` lists them."""
        return {
            "images_folder": str(self.root),
            "images_found": len(self.files),
            "metadata": str(self.metadata_path) if self.metadata_path else None,
            "metadata_rows": 0 if self.metadata is None else len(self.metadata),
            "images_without_metadata": list(self.images_without_metadata),
            "rows_without_image": list(self.rows_without_image),
        }


def _normalise(name: str) -> str:
    return PurePosixPath(name.strip().replace("\\", "/")).as_posix().removeprefix("./")


def read_metadata(path: str | Path, file_column: str = "file") -> pd.DataFrame:
    """Read and check a metadata CSV; returns its columns as text, indexed by the normalised file path.

    Raises :class:`FashionsegError` naming the file (and line) for an unreadable or malformed CSV.
    """
    path = Path(path)
    if not path.is_file():
        raise FashionsegError(f"metadata file {path} does not exist")
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f, strict=True)
        try:
            rows = list(reader)
        except UnicodeDecodeError as exc:
            raise FashionsegError(f"{path} is not UTF-8 text ({exc}); save the CSV as UTF-8") from None
        except csv.Error as exc:
            raise FashionsegError(
                f"{path} line {reader.line_num}: not valid CSV ({exc}); check the quotes on that line"
            ) from None
    numbered = [(line, row) for line, row in enumerate(rows, start=1) if any(cell.strip() for cell in row)]
    if not numbered:
        raise FashionsegError(f"{path} is empty; a metadata CSV needs a header with a {file_column!r} column")
    (_, header), body = numbered[0], numbered[1:]
    header = [h.strip() for h in header]
    duplicated = sorted({h for h in header if header.count(h) > 1})
    if duplicated:
        raise FashionsegError(f"{path} line 1: column(s) {', '.join(duplicated)} appear more than once")
    if file_column not in header:
        raise FashionsegError(
            f"{path} line 1: no {file_column!r} column (columns: {', '.join(header)}); name the column that "
            f"holds the image file names {file_column!r}, or pass its name as --file-column"
        )
    key = header.index(file_column)
    first_line: dict[str, int] = {}
    for line, row in body:
        if len(row) != len(header):
            raise FashionsegError(
                f"{path} line {line}: {len(row)} fields, but the header has {len(header)} "
                f"({', '.join(header)}); quote values that contain commas"
            )
        name = _normalise(row[key]) if row[key].strip() else ""
        if not name:
            raise FashionsegError(f"{path} line {line}: empty {file_column!r} value")
        if name in first_line:
            raise FashionsegError(
                f"{path} line {line}: {name!r} already has a row (line {first_line[name]}); "
                f"keep one row per image"
            )
        first_line[name] = line
    table = pd.DataFrame([row for _, row in body], columns=header, dtype="string")
    table[file_column] = [_normalise(v) for v in table[file_column]]
    return table.set_index(file_column)


def open_collection(
    images: str | Path, metadata: str | Path | None = None, file_column: str = "file"
) -> Collection:
    """List the images under ``images`` (recursively) and match them with the metadata CSV's rows."""
    root = Path(images)
    if not root.is_dir():
        raise FashionsegError(f"images folder {root} does not exist (or is not a folder)")
    files = tuple(p.relative_to(root).as_posix() for p in list_images([root]))
    if not files:
        raise FashionsegError(f"no images found under {root}")
    if metadata is None:
        return Collection(root, files, None, None, (), ())
    table = read_metadata(metadata, file_column)
    known = set(table.index)
    without_row = tuple(f for f in files if f not in known)
    without_image = tuple(sorted(known - set(files)))
    return Collection(root, files, table, Path(metadata), without_row, without_image)


def ground_truth_predictions(annotations: str | Path) -> pd.DataFrame:
    """A Fashionpedia/COCO annotation file as a predictions table (score 1 for every instance and attribute).

    Statistics computed on it are the oracle: what a perfect model would report for the same images.
    """
    coco = load_annotations(annotations)
    names = {c["id"]: c["name"] for c in coco["categories"]}
    by_image: dict[int, list[dict]] = {}
    for ann in coco["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann)
    records = []
    for image in coco["images"]:
        anns = by_image.get(image["id"], [])
        records.append(image_record(image["file_name"], image["width"], image["height"]))
        boxes = np.array([a["bbox"] for a in anns], dtype=float).reshape(-1, 4)
        boxes[:, 2:] += boxes[:, :2]
        records += detection_records(
            image["file_name"],
            image["width"],
            image["height"],
            boxes,
            np.ones(len(anns)),
            np.array([a["category_id"] for a in anns]),
            [names[a["category_id"]] for a in anns],
            [dict.fromkeys(a.get("attribute_ids", []), 1.0) for a in anns],
        )
    return predictions_frame(records)


SKIRT_CLASSES = ("stripe", "dot", "other", "none")  # the skirts of an image: all striped, all dotted, ...


@dataclass(frozen=True)
class PlantedTrends:
    """The design of the synthetic collection: per season, the share of images with a hat, and the share
    of skirt-wearing images whose skirts are all striped or all dotted. The share of images with a skirt,
    and everything else in the pictures, stays flat."""

    seasons: tuple[str, ...] = ("SS22", "AW22", "SS23", "AW23")
    hat: tuple[float, ...] = (0.15, 0.3, 0.45, 0.6)
    stripe: tuple[float, ...] = (0.15, 0.35, 0.55, 0.75)
    dot: tuple[float, ...] = (0.55, 0.4, 0.25, 0.1)
    skirt: float = 0.5

    @property
    def control(self) -> str:
        """The flat control feature: the share of images with a skirt, which the design holds at
        :attr:`skirt` in every season (the trend statistics' name of the category)."""
        return _category_name(synthetic.SKIRT)

    def table(self) -> pd.DataFrame:
        """The planted shares, long: feature ("hat", "skirt: stripe", "skirt: dot"), group, share."""
        rows = [
            {"feature": feature, "group": season, "share": values[s]}
            for feature, values in zip(
                [_category_name(synthetic.HAT), *_skirt_patterns("stripe", "dot")],
                (self.hat, self.stripe, self.dot),
                strict=True,
            )
            for s, season in enumerate(self.seasons)
        ]
        return pd.DataFrame(rows)

    def change(self) -> pd.DataFrame:
        """The planted first-to-last change per feature (columns feature, change)."""
        table = self.table()
        by_feature = table.groupby("feature", sort=False)["share"]
        return (by_feature.last() - by_feature.first()).rename("change").reset_index()

    def quotas(self, images_per_season: int) -> np.ndarray:
        """Images to draw per (season, hat yes/no, skirt class): int [S, 2, 4], each season summing to n."""
        out = np.zeros((len(self.seasons), 2, len(SKIRT_CLASSES)), dtype=int)
        for s in range(len(self.seasons)):
            skirt = np.array([self.stripe[s], self.dot[s], 1 - self.stripe[s] - self.dot[s], 0]) * self.skirt
            skirt[3] = 1 - self.skirt
            cells = np.outer([self.hat[s], 1 - self.hat[s]], skirt) * images_per_season
            counts = np.floor(cells).astype(int)
            remainder = (cells - counts).ravel()
            for i in np.argsort(-remainder, kind="stable")[: images_per_season - counts.sum()]:
                counts.flat[i] += 1
            out[s] = counts
        return out


def _category_name(category_id: int) -> str:
    return next(c.name for c in ontology.categories() if c.id == category_id)


def _skirt_patterns(*patterns: str) -> list[str]:
    """The trend features of skirts with these patterns (``"skirt: stripe"``; attribute names of
    :data:`fashionseg.data.synthetic.PATTERNS`)."""
    names = {a.id: a.name for a in ontology.attributes()}
    skirt = _category_name(synthetic.SKIRT)
    return [f"{skirt}: {names[synthetic.PATTERNS[p]]}" for p in patterns]


def implied_changes(planted: pd.DataFrame) -> pd.DataFrame:
    """The changes the planted design implies without planting them (columns feature, change).

    The collection's generator gives the skirts that are neither striped nor dotted (plain or check) what
    the two planted patterns leave (:meth:`PlantedTrends.quotas`), so their share changes by minus the sum
    of the two planted changes: a trend there follows from the design and is no false discovery.
    ``planted``: :meth:`PlantedTrends.change`; empty when it lacks either planted pattern.
    """
    change = planted.set_index("feature")["change"]
    planted_patterns = _skirt_patterns("stripe", "dot")
    if not all(f in change.index for f in planted_patterns):
        return pd.DataFrame(columns=["feature", "change"])
    rest = -float(change[planted_patterns].sum())
    others = _skirt_patterns("plain", "check")
    return pd.DataFrame({"feature": others, "change": [rest] * len(others)})


def _cell(instances: list[tuple[int, list[int], np.ndarray]]) -> tuple[int, int] | None:
    """(hat: 0 yes / 1 no, skirt class index) of a rendered image; None when its skirts are mixed."""
    pattern_ids = synthetic.PATTERNS
    patterns = {a for category, attrs, _ in instances if category == synthetic.SKIRT for a in attrs}
    patterns &= set(pattern_ids.values())
    hat = 0 if any(category == synthetic.HAT for category, _, _ in instances) else 1
    if not patterns:
        return hat, SKIRT_CLASSES.index("none")
    if patterns == {pattern_ids["stripe"]}:
        return hat, SKIRT_CLASSES.index("stripe")
    if patterns == {pattern_ids["dot"]}:
        return hat, SKIRT_CLASSES.index("dot")
    if patterns <= {pattern_ids["plain"], pattern_ids["check"]}:
        return hat, SKIRT_CLASSES.index("other")
    return None


def make_synthetic_collection(
    out: str | Path,
    images_per_season: int = 60,
    planted: PlantedTrends = PlantedTrends(),
    size: int = 160,
    seed: int = 0,
    show_progress: bool = True,
) -> Path:
    """Write a collection with known trends under ``out``: ``images/*.png``, ``metadata.csv`` (file,
    season, date, collection) and the ground truth ``annotations.json``; returns ``out``.

    Images are the data module's synthetic figures (:func:`fashionseg.data.synthetic.render_image`, the
    pictures the demo models train on), drawn from a seeded stream and kept when their season still needs
    an image of their kind (:meth:`PlantedTrends.quotas`). ``date`` is a day inside the season (seasons six
    months apart from March 2022); ``collection`` is a flat distractor column.
    """
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    remaining = planted.quotas(images_per_season)
    total = int(remaining.sum())
    kept: list[tuple[int, np.ndarray, list]] = []
    progress = tqdm(total=total, desc="synthetic collection", unit="img", disable=not show_progress)
    for draw in range(200 * total):
        if len(kept) == total:
            break
        pixels, instances = synthetic.render_image(np.random.default_rng([seed, 7919, draw]), size)
        cell = _cell(instances)
        if cell is None or not remaining[:, cell[0], cell[1]].any():
            continue
        season = int(np.argmax(remaining[:, cell[0], cell[1]]))
        remaining[season, cell[0], cell[1]] -= 1
        kept.append((season, pixels, instances))
        progress.update()
    progress.close()
    if len(kept) < total:
        raise FashionsegError(f"could not draw {total} images matching {planted}; lower the planted shares")

    rng = np.random.default_rng([seed, 7920])
    images, annotations, rows = [], [], []
    for index, k in enumerate(rng.permutation(len(kept))):
        season, pixels, instances = kept[k]
        file_name = f"look_{index:05d}.png"
        Image.fromarray(pixels).save(out / "images" / file_name)
        images.append({"id": index + 1, "width": size, "height": size, "file_name": file_name})
        for instance in instances:
            annotations.append(synthetic.annotation_record(len(annotations) + 1, index + 1, *instance))
        day = (
            pd.Timestamp("2022-03-01")
            + pd.DateOffset(months=6 * season)
            + pd.Timedelta(days=int(rng.integers(181)))
        )
        rows.append(
            {
                "file": file_name,
                "season": planted.seasons[season],
                "date": day.date().isoformat(),
                "collection": str(rng.choice(["atelier", "street", "resort"])),
            }
        )
    coco = {
        "info": {"description": f"fashionseg synthetic collection: {planted}"},
        "licenses": [],
        "images": images,
        "annotations": annotations,
        **ontology_json(),
    }
    (out / "annotations.json").write_text(json.dumps(coco))
    pd.DataFrame(rows).to_csv(out / "metadata.csv", index=False)
    return out
