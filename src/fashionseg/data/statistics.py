"""Statistics of an annotation file (COCO / Fashionpedia JSON as a dict): split sizes, category and
attribute frequencies, the annotations of each image, and the constant attribute predictor of a split.

Plain data in, tables out: no model, no evaluation; :mod:`fashionseg.report` and the notebooks build on it.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pandas as pd


def split_summary(splits: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """Per split (name -> annotation file): images, instances, categories used, attributes used."""
    return pd.DataFrame(
        {
            name: {
                "images": len(coco["images"]),
                "instances": len(coco["annotations"]),
                "categories": len({a["category_id"] for a in coco["annotations"]}),
                "attributes": len({i for a in coco["annotations"] for i in a.get("attribute_ids", [])}),
            }
            for name, coco in splits.items()
        }
    ).T


def annotations_by_image(coco: dict[str, Any]) -> dict[int, list[dict[str, Any]]]:
    """The annotation dicts of each image id (images without annotations are absent)."""
    grouped: dict[int, list[dict[str, Any]]] = {}
    for ann in coco["annotations"]:
        grouped.setdefault(ann["image_id"], []).append(ann)
    return grouped


def category_frequencies(coco: dict[str, Any]) -> pd.DataFrame:
    """Per category of an annotation file: supercategory, instances, and images containing it (sorted)."""
    instances = Counter(a["category_id"] for a in coco["annotations"])
    images = Counter(c for c, _ in {(a["category_id"], a["image_id"]) for a in coco["annotations"]})
    table = pd.DataFrame(
        [
            {
                "category": c["name"],
                "supercategory": c.get("supercategory", ""),
                "instances": instances[c["id"]],
                "images": images[c["id"]],
            }
            for c in coco["categories"]
            if instances[c["id"]]
        ]
    )
    return table.sort_values("instances", ascending=False, ignore_index=True)


def attribute_frequencies(coco: dict[str, Any], top: int = 25) -> pd.DataFrame:
    """The ``top`` most frequent attributes of an annotation file: name, group, instances carrying it."""
    counts = Counter(a_id for a in coco["annotations"] for a_id in a.get("attribute_ids", []))
    meta = {a["id"]: a for a in coco.get("attributes", [])}
    return pd.DataFrame(
        [
            {
                "attribute": meta.get(a_id, {}).get("name", str(a_id)),
                "group": meta.get(a_id, {}).get("supercategory", ""),
                "instances": n,
            }
            for a_id, n in counts.most_common(top)
        ],
        columns=["attribute", "group", "instances"],
    )


def constant_attributes(train: dict[str, Any]) -> dict[int, list[int]]:
    """The constant attribute predictor of the training split: for each category, the most frequent
    attribute of every attribute group (Fashionpedia's attribute supercategory) its garments carry.

    The baseline an attribute head must beat: it knows each category's attribute statistics and nothing
    about the garment in front of it.
    """
    group = {a["id"]: a["supercategory"] for a in train["attributes"]}
    counts: dict[int, Counter] = {}
    for ann in train["annotations"]:
        counts.setdefault(ann["category_id"], Counter()).update(ann.get("attribute_ids", []))
    constant: dict[int, list[int]] = {}
    for category, counter in counts.items():
        best: dict[str, tuple[int, int]] = {}
        for attribute, n in counter.items():
            g = group.get(attribute, "")
            if g not in best or (n, -attribute) > (best[g][1], -best[g][0]):
                best[g] = (attribute, n)
        constant[category] = sorted(a for a, _ in best.values())
    return constant
