"""The synthetic dataset: determinism, schema, real ids and names, visible-only masks, ensure_synthetic."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pycocotools.mask as mask_utils
import pytest

from fashionseg.config import DataConfig
from fashionseg.data import synthetic
from fashionseg.data.annotations import check_annotations, load_annotations
from fashionseg.data.ontology import attribute, categories, category, ontology_json
from fashionseg.data.synthetic import ensure_synthetic, generate_split

IMAGE_FIELDS = {
    "id",
    "width",
    "height",
    "file_name",
    "license",
    "time_captured",
    "original_url",
    "isstatic",
    "kaggle_id",
}
ANNOTATION_FIELDS = {
    "id",
    "image_id",
    "category_id",
    "attribute_ids",
    "segmentation",
    "bbox",
    "area",
    "iscrowd",
}


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _write(root: Path, seed: int, n: int = 3) -> dict[str, bytes]:
    generate_split(root / "images", root / "a.json", "train", n, 96, seed, show_progress=False)
    return _files(root)


def test_same_seed_gives_identical_bytes(tmp_path: Path) -> None:
    first, second = _write(tmp_path / "a", 5), _write(tmp_path / "b", 5)
    assert len(first) == 4 and first == second


def test_different_seed_gives_different_data(tmp_path: Path) -> None:
    first, other = _write(tmp_path / "a", 5), _write(tmp_path / "b", 6)
    assert first.keys() == other.keys()
    assert all(first[name] != other[name] for name in first)


def test_image_i_does_not_depend_on_the_split_length(tmp_path: Path) -> None:
    short, long = _write(tmp_path / "a", 1, n=2), _write(tmp_path / "b", 1, n=4)
    assert short["images/synth_train_000001.png"] == long["images/synth_train_000001.png"]


def test_data_check_passes_on_the_synthetic_dataset(synthetic_root: Path) -> None:
    for split in ("train", "val"):
        coco = load_annotations(synthetic_root / "annotations" / f"instances_attributes_{split}.json")
        report = check_annotations(coco, synthetic_root / "images" / split, decode_images=True)
        assert report.problems == []
        assert report.num_images == {"train": 16, "val": 8}[split]


def test_fashionpedia_schema(synthetic_root: Path) -> None:
    coco = json.loads((synthetic_root / "annotations" / "instances_attributes_train.json").read_text())
    assert {"info", "licenses", "images", "annotations", "categories", "attributes"} <= coco.keys()
    assert coco["categories"] == ontology_json()["categories"] and len(coco["categories"]) == 46
    assert coco["attributes"] == ontology_json()["attributes"] and len(coco["attributes"]) == 294
    assert all(set(im) == IMAGE_FIELDS for im in coco["images"])
    assert all(set(a) == ANNOTATION_FIELDS for a in coco["annotations"])
    assert all(isinstance(a["segmentation"]["counts"], str) for a in coco["annotations"])
    licenses = {lic["id"] for lic in coco["licenses"]}
    assert all(im["license"] in licenses for im in coco["images"])
    assert coco["info"]["fashionseg_synthetic"] == {
        "version": synthetic.GENERATOR_VERSION,
        "split": "train",
        "num_images": 16,
        "size": 128,
        "seed": 0,
    }
    for ann in coco["annotations"]:
        rle = {"size": ann["segmentation"]["size"], "counts": ann["segmentation"]["counts"]}
        assert ann["area"] == int(mask_utils.area(rle)) > 0
        assert ann["bbox"] == mask_utils.toBbox(rle).tolist()


def test_attribute_and_category_constants_name_real_fashionpedia_entries() -> None:
    assert [
        category(c).name for c in (synthetic.TOP, synthetic.SKIRT, synthetic.SLEEVE, synthetic.NECKLINE)
    ] == [
        "top, t-shirt, sweatshirt",
        "skirt",
        "sleeve",
        "neckline",
    ]
    assert {name: attribute(a).name for name, a in synthetic.PATTERNS.items()} == {
        "plain": "plain (pattern)",
        "stripe": "stripe",
        "dot": "dot",
        "check": "check",
    }
    assert [attribute(a).name for a in synthetic.LENGTHS.values()] == [
        "mini (length)",
        "knee (length)",
        "maxi (length)",
    ]
    expected = ["sleeveless", "short (length)", "wrist-length", "a-line", "pencil", "straight", "wide leg"]
    ids = (synthetic.SLEEVELESS, synthetic.SHORT_SLEEVE, synthetic.WRIST_LENGTH)
    ids += (synthetic.A_LINE, synthetic.PENCIL, synthetic.STRAIGHT, synthetic.WIDE_LEG)
    assert [attribute(a).name for a in ids] == expected
    assert [attribute(a).name for a in (synthetic.ROUND_NECK, synthetic.V_NECK)] == ["round (neck)", "v-neck"]


def test_categories_and_attributes_used(tmp_path: Path) -> None:
    coco = generate_split(tmp_path / "im", tmp_path / "a.json", "train", 40, 96, 0, show_progress=False)
    onto = {c.id: c for c in categories()}
    used = {a["category_id"] for a in coco["annotations"]}
    assert used == set(synthetic.CATEGORY_IDS)
    assert sum(onto[c].eval_supercategory != "part" for c in used) >= 6
    assert sum(onto[c].eval_supercategory == "part" for c in used) >= 2
    patterns = set(synthetic.PATTERNS.values())
    seen_patterns = set()
    for ann in coco["annotations"]:
        if not onto[ann["category_id"]].has_attributes:
            assert ann["attribute_ids"] == []
        elif ann["category_id"] not in (synthetic.SLEEVE, synthetic.NECKLINE):
            assert len(patterns & set(ann["attribute_ids"])) == 1  # every garment shows one pattern
            seen_patterns |= patterns & set(ann["attribute_ids"])
    assert seen_patterns == patterns


def test_masks_are_visible_pixels_only(synthetic_root: Path) -> None:
    """Garments and accessories never share a pixel; each part lies inside one garment of its image."""
    coco = json.loads((synthetic_root / "annotations" / "instances_attributes_train.json").read_text())
    parts = {synthetic.SLEEVE, synthetic.NECKLINE}
    for image in coco["images"]:
        anns = [a for a in coco["annotations"] if a["image_id"] == image["id"]]
        masks = [(a["category_id"], mask_utils.decode(a["segmentation"]).astype(bool)) for a in anns]
        wholes = [m for c, m in masks if c not in parts]
        assert np.sum(wholes, axis=0).max() == 1
        for c, m in masks:
            if c in parts:
                assert any((m & ~w).sum() == 0 for w in wholes)


def _box(mask: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    return xs.min(), ys.min(), xs.max() + 1, ys.max() + 1


def test_a_jacket_hides_the_top_under_it() -> None:
    """A top inside a jacket's outline keeps only the pixels the jacket leaves open."""
    pairs = 0
    for index in range(16):
        _, instances = synthetic.render_image(np.random.default_rng([0, 0, index]), 128)
        jackets = [m for c, _, m in instances if c == synthetic.JACKET]
        tops = [m for c, _, m in instances if c == synthetic.TOP]
        for jacket in jackets:
            jx1, jy1, jx2, jy2 = _box(jacket)
            for top in tops:
                tx1, ty1, tx2, ty2 = _box(top)
                inside = jx1 <= tx1 and tx2 <= jx2 and jy1 <= ty1 and ty2 <= jy2
                if inside:
                    pairs += 1
                    assert not (top & jacket).any()
                    assert top.sum() < 0.5 * (jacket.sum() + top.sum())
    assert pairs >= 1


def test_ensure_synthetic_is_idempotent_and_regenerates_on_new_parameters(tmp_path: Path) -> None:
    cfg = DataConfig(root=str(tmp_path / "d"), synth_train=3, synth_val=2, synth_size=80, synth_seed=1)
    ensure_synthetic(cfg, show_progress=False)
    train_json = tmp_path / "d" / "annotations" / "instances_attributes_train.json"
    stamp = train_json.stat().st_mtime_ns
    ensure_synthetic(cfg, show_progress=False)
    assert train_json.stat().st_mtime_ns == stamp
    assert len(list((tmp_path / "d" / "images" / "val").glob("*.png"))) == 2

    smaller = DataConfig(root=cfg.root, synth_train=2, synth_val=2, synth_size=80, synth_seed=1)
    ensure_synthetic(smaller, show_progress=False)
    assert len(json.loads(train_json.read_text())["images"]) == 2
    assert len(list((tmp_path / "d" / "images" / "train").glob("*.png"))) == 2  # no stale files left

    (tmp_path / "d" / "images" / "val" / "synth_val_000001.png").unlink()
    ensure_synthetic(smaller, show_progress=False)
    assert (tmp_path / "d" / "images" / "val" / "synth_val_000001.png").is_file()


def test_rejects_tiny_images(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="size >= 64"):
        generate_split(tmp_path / "im", tmp_path / "a.json", "train", 1, 32, 0, show_progress=False)
