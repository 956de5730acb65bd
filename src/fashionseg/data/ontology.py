"""The Fashionpedia ontology and the label space a model is trained on.

The ontology (46 categories, 294 attributes, attribute groups, the 18 categories the official evaluation
scores with attributes) ships as ``fashionpedia_ontology.json`` beside this module.

A :class:`LabelSpace` is what a model is built for: the category and attribute ids of one annotation file
(or a subset of them), in a fixed order. torchvision's contract puts background at label 0, so the model's
label ``k`` (1-based) is ``category_ids[k - 1]``; attribute column ``j`` is ``attribute_ids[j]``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

EVAL_SUPERCATEGORIES = ("outerwear", "accessory", "part")


@dataclass(frozen=True)
class Category:
    id: int
    name: str
    supercategory: str  # body region or part group, as in the annotation JSON
    eval_supercategory: str  # outerwear | accessory | part (the official evaluation's grouping)
    has_attributes: bool


@dataclass(frozen=True)
class Attribute:
    id: int
    name: str
    supercategory: str  # the attribute group: nickname, silhouette, length, textile pattern, ...
    level: int = 1


@cache
def _ontology() -> dict[str, Any]:
    text = resources.files("fashionseg.data").joinpath("fashionpedia_ontology.json").read_text()
    return json.loads(text)


@cache
def categories() -> tuple[Category, ...]:
    """The 46 Fashionpedia categories, ordered by id."""
    return tuple(
        Category(c["id"], c["name"], c["supercategory"], c["eval_supercategory"], c["has_attributes"])
        for c in _ontology()["categories"]
    )


@cache
def attributes() -> tuple[Attribute, ...]:
    """The 294 Fashionpedia attributes, ordered by id (ids run 0-340 with gaps)."""
    return tuple(
        Attribute(a["id"], a["name"], a["supercategory"], a["level"]) for a in _ontology()["attributes"]
    )


def category(category_id: int) -> Category:
    for c in categories():
        if c.id == category_id:
            return c
    raise KeyError(f"category id {category_id} is not a Fashionpedia category (valid ids: 0-45)")


def attribute(attribute_id: int) -> Attribute:
    for a in attributes():
        if a.id == attribute_id:
            return a
    raise KeyError(f"attribute id {attribute_id} is not a Fashionpedia attribute")


def category_by_name(name: str) -> Category:
    for c in categories():
        if c.name == name:
            return c
    raise KeyError(f"no Fashionpedia category named {name!r}")


def attribute_by_name(name: str) -> Attribute:
    for a in attributes():
        if a.name == name:
            return a
    raise KeyError(f"no Fashionpedia attribute named {name!r}")


def attribute_groups() -> dict[str, tuple[Attribute, ...]]:
    """Attributes grouped by their supercategory (nickname, silhouette, length, ...)."""
    groups: dict[str, list[Attribute]] = {}
    for a in attributes():
        groups.setdefault(a.supercategory, []).append(a)
    return {k: tuple(v) for k, v in groups.items()}


def attribute_category_ids() -> tuple[int, ...]:
    """The 18 category ids the official evaluation scores with attributes: 0-12, 28, 29, 31, 32, 33."""
    return tuple(c.id for c in categories() if c.has_attributes)


def ontology_json() -> dict[str, Any]:
    """``categories`` and ``attributes`` lists in the Fashionpedia annotation schema."""
    onto = _ontology()
    cats = [
        {k: c[k] for k in ("id", "name", "supercategory", "level", "taxonomy_id")} for c in onto["categories"]
    ]
    atts = [
        {k: a[k] for k in ("id", "name", "supercategory", "level", "taxonomy_id")} for a in onto["attributes"]
    ]
    return {"categories": cats, "attributes": atts}


@dataclass(frozen=True)
class LabelSpace:
    """The categories and attributes a model predicts, in model order.

    ``attribute_category_ids`` lists the categories whose instances train and are scored on attributes
    (Fashionpedia's 18 by default; a dataset with other ids declares its own).
    """

    category_ids: tuple[int, ...]
    category_names: tuple[str, ...]
    attribute_ids: tuple[int, ...]
    attribute_names: tuple[str, ...]
    attribute_category_ids: tuple[int, ...]

    @property
    def num_classes(self) -> int:
        """Number of model classes, background included."""
        return len(self.category_ids) + 1

    @property
    def num_attributes(self) -> int:
        return len(self.attribute_ids)

    def label_of(self, category_id: int) -> int:
        return self.category_ids.index(category_id) + 1

    def category_of(self, label: int) -> int:
        return self.category_ids[label - 1]

    def name_of(self, label: int) -> str:
        return self.category_names[label - 1]

    def labels_with_attributes(self) -> list[bool]:
        """Per model label (background first): does this class carry attributes?"""
        keep = set(self.attribute_category_ids)
        return [False] + [c in keep for c in self.category_ids]

    def to_dict(self) -> dict[str, list]:
        return {
            "category_ids": list(self.category_ids),
            "category_names": list(self.category_names),
            "attribute_ids": list(self.attribute_ids),
            "attribute_names": list(self.attribute_names),
            "attribute_category_ids": list(self.attribute_category_ids),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Sequence]) -> LabelSpace:
        return cls(
            tuple(int(x) for x in d["category_ids"]),
            tuple(str(x) for x in d["category_names"]),
            tuple(int(x) for x in d["attribute_ids"]),
            tuple(str(x) for x in d["attribute_names"]),
            tuple(int(x) for x in d["attribute_category_ids"]),
        )

    @classmethod
    def from_coco(
        cls,
        coco_json: dict[str, Any],
        category_ids: Iterable[int] | None = None,
        attribute_category_ids: Iterable[int] | None = None,
    ) -> LabelSpace:
        """The label space of an annotation file's ``categories`` and ``attributes`` lists.

        ``category_ids`` keeps a subset; ``attribute_category_ids`` defaults to Fashionpedia's 18.
        """
        cats = sorted(coco_json.get("categories", []), key=lambda c: c["id"])
        if category_ids is not None:
            wanted = set(category_ids)
            known = {c["id"] for c in cats}
            missing = sorted(wanted - known)
            if missing:
                raise ValueError(f"categories {missing} are not in the annotation file's categories list")
            cats = [c for c in cats if c["id"] in wanted]
        atts = sorted(coco_json.get("attributes", []), key=lambda a: a["id"])
        if attribute_category_ids is None:
            attribute_category_ids = _default_attribute_categories()
        keep = tuple(sorted(set(attribute_category_ids)))
        return cls(
            tuple(c["id"] for c in cats),
            tuple(c["name"] for c in cats),
            tuple(a["id"] for a in atts),
            tuple(a["name"] for a in atts),
            keep,
        )


def _default_attribute_categories() -> tuple[int, ...]:
    return attribute_category_ids()
