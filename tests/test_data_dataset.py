"""FashionpediaDataset and the transforms: the data contract, round trips against the JSON, bad inputs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pycocotools.mask as mask_utils
import pytest
import torch
from PIL import Image

from fashionseg.data.annotations import load_annotations
from fashionseg.data.dataset import FashionpediaDataset, collate_fn
from fashionseg.data.images import ImageReadError
from fashionseg.data.ontology import LabelSpace
from fashionseg.data.transforms import Compose, RandomHorizontalFlip, Resize, resized_shape
from fashionseg.errors import FashionsegError


def _split(root: Path, split: str = "train") -> tuple[Path, Path]:
    return root / "annotations" / f"instances_attributes_{split}.json", root / "images" / split


def _mask_extents(mask: torch.Tensor) -> list[float]:
    ys, xs = torch.nonzero(mask, as_tuple=True)
    return [xs.min().item(), ys.min().item(), xs.max().item() + 1, ys.max().item() + 1]


def test_items_follow_the_data_contract(synthetic_root: Path) -> None:
    dataset = FashionpediaDataset(*_split(synthetic_root))
    image, target = dataset[0]
    n = len(target["labels"])
    assert n > 0
    assert image.dtype == torch.float32 and image.shape == (3, 128, 128)
    assert 0.0 <= image.min() and image.max() <= 1.0
    assert target["boxes"].dtype == torch.float32 and target["boxes"].shape == (n, 4)
    assert target["labels"].dtype == torch.int64 and target["labels"].min() >= 1
    assert target["masks"].dtype == torch.uint8 and target["masks"].shape == (n, 128, 128)
    assert target["attributes"].dtype == torch.float32
    assert target["attributes"].shape == (n, dataset.labels.num_attributes)
    assert target["image_id"].dtype == torch.int64 and target["image_id"].ndim == 0
    assert target["area"].dtype == torch.float32 and target["iscrowd"].dtype == torch.int64
    assert dataset.labels.num_classes == 47  # all 46 Fashionpedia categories are in the file


def test_round_trip_synth_json_to_targets(synthetic_root: Path) -> None:
    annotations, images_dir = _split(synthetic_root)
    coco = json.loads(annotations.read_text())
    dataset = FashionpediaDataset(annotations, images_dir)
    labels = dataset.labels
    by_image: dict[int, list[dict]] = {}
    for ann in coco["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann)
    assert len(dataset) == len(coco["images"])
    for index in range(len(dataset)):
        image, target = dataset[index]
        anns = by_image[int(target["image_id"])]
        assert [labels.category_of(int(k)) for k in target["labels"]] == [a["category_id"] for a in anns]
        for k, ann in enumerate(anns):
            expected = mask_utils.decode(
                {"size": ann["segmentation"]["size"], "counts": ann["segmentation"]["counts"]}
            )
            assert torch.equal(target["masks"][k], torch.from_numpy(expected))
            x, y, w, h = ann["bbox"]
            assert target["boxes"][k].tolist() == [x, y, x + w, y + h]
            assert target["boxes"][k].tolist() == _mask_extents(target["masks"][k])
            assert target["area"][k] == ann["area"]
            on = {labels.attribute_ids[j] for j in torch.nonzero(target["attributes"][k]).flatten().tolist()}
            assert on == set(ann["attribute_ids"])
        pixels = np.array(Image.open(images_dir / dataset.image_info(index)["file_name"]))
        assert torch.equal((image * 255).round().to(torch.uint8).permute(1, 2, 0), torch.from_numpy(pixels))


def _tiny(tmp_path: Path, width: int = 40, height: int = 30) -> tuple[dict, Path]:
    """One image with a polygon, a compressed RLE, an uncompressed RLE (same square), a crowd and a hat."""
    images_dir = tmp_path / "images"
    images_dir.mkdir()
    Image.new("RGB", (width, height), (10, 20, 30)).save(images_dir / "a.png")
    mask = np.zeros((height, width), dtype=np.uint8)
    mask[5:15, 10:20] = 1
    rle = mask_utils.encode(np.asfortranarray(mask))
    flat = mask.flatten(order="F")
    bounds = np.concatenate([[0], np.flatnonzero(np.diff(flat)) + 1, [flat.size]])
    square = {"bbox": [10.0, 5.0, 10.0, 10.0], "area": 100, "iscrowd": 0, "image_id": 1}
    coco = {
        "categories": [{"id": 1, "name": "top"}, {"id": 14, "name": "hat"}, {"id": 31, "name": "sleeve"}],
        "attributes": [{"id": 317, "name": "plain (pattern)"}, {"id": 328, "name": "stripe"}],
        "images": [{"id": 1, "width": width, "height": height, "file_name": "a.png"}],
        "annotations": [
            {
                "id": 1,
                "category_id": 1,
                "attribute_ids": [328],
                "segmentation": [[10, 5, 20, 5, 20, 15, 10, 15]],
            },
            {
                "id": 2,
                "category_id": 31,
                "attribute_ids": [317],
                "segmentation": {"size": [height, width], "counts": rle["counts"].decode()},
            },
            {
                "id": 3,
                "category_id": 1,
                "attribute_ids": [],
                "segmentation": {"size": [height, width], "counts": np.diff(bounds).tolist()},
            },
            {
                "id": 4,
                "category_id": 1,
                "attribute_ids": [328],
                "segmentation": [[10, 5, 20, 5, 20, 15, 10, 15]],
                "iscrowd": 1,
            },
            {
                "id": 5,
                "category_id": 14,
                "attribute_ids": [317],
                "segmentation": [[0, 0, 5, 0, 5, 5, 0, 5]],
                "bbox": [0.0, 0.0, 5.0, 5.0],
            },
        ],
    }
    for ann in coco["annotations"]:
        for key, value in square.items():
            ann.setdefault(key, value)
    return coco, images_dir


def test_polygon_and_both_rle_forms_decode_alike_and_crowds_are_dropped(tmp_path: Path) -> None:
    coco, images_dir = _tiny(tmp_path)
    dataset = FashionpediaDataset(coco, images_dir)
    _, target = dataset[0]
    assert [dataset.labels.category_of(int(k)) for k in target["labels"]] == [1, 31, 1, 14]  # no crowd
    masks = target["masks"]
    assert masks[0].sum() == 100 and torch.equal(masks[0], masks[1]) and torch.equal(masks[0], masks[2])
    columns = dict(zip(dataset.labels.attribute_ids, target["attributes"].T, strict=True))
    assert columns[328].tolist() == [1.0, 0.0, 0.0, 0.0]
    assert columns[317].tolist() == [0.0, 1.0, 0.0, 0.0]  # the hat's attribute is ignored: hats carry none


def test_label_space_subset_drops_other_categories(tmp_path: Path) -> None:
    coco, images_dir = _tiny(tmp_path)
    labels = LabelSpace.from_coco(coco, category_ids=[14])
    _, target = FashionpediaDataset(coco, images_dir, labels=labels)[0]
    assert target["labels"].tolist() == [1] and target["boxes"].tolist() == [[0.0, 0.0, 5.0, 5.0]]


def test_categories_and_max_images_subset(synthetic_root: Path) -> None:
    dataset = FashionpediaDataset(*_split(synthetic_root), max_images=3, categories=(10, 24))
    assert len(dataset) <= 3
    assert dataset.labels.category_ids == (10, 24)
    assert {c["id"] for c in dataset.coco_json["categories"]} == {10, 24}
    for index in range(len(dataset)):
        _, target = dataset[index]
        assert len(target["labels"]) >= 1 and set(target["labels"].tolist()) <= {1, 2}


def test_image_without_instances_has_empty_shaped_targets(tmp_path: Path) -> None:
    coco, images_dir = _tiny(tmp_path)
    coco["annotations"] = []
    dataset = FashionpediaDataset(coco, images_dir, transforms=Resize(60, 100))
    image, target = dataset[0]
    assert image.shape == (3, 60, 80)
    assert target["boxes"].shape == (0, 4) and target["masks"].shape == (0, 60, 80)
    assert target["labels"].shape == (0,) and target["attributes"].shape == (0, 2)


def test_exif_rotated_image_lines_up_with_its_annotation(tmp_path: Path) -> None:
    images_dir = tmp_path / "images"
    images_dir.mkdir()
    stored = np.zeros((20, 40, 3), dtype=np.uint8)  # 40 wide, 20 high; displayed 20 wide, 40 high
    stored[:, :20] = 255  # left half white -> top half after the EXIF rotation
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(stored).save(images_dir / "r.jpg", quality=95, exif=exif)
    top_half = [[0, 0, 20, 0, 20, 20, 0, 20]]
    coco = {
        "categories": [{"id": 1, "name": "top"}],
        "attributes": [],
        "images": [{"id": 1, "width": 20, "height": 40, "file_name": "r.jpg"}],
        "annotations": [
            {
                "id": 1,
                "image_id": 1,
                "category_id": 1,
                "segmentation": top_half,
                "bbox": [0, 0, 20, 20],
                "iscrowd": 0,
            }
        ],
    }
    image, target = FashionpediaDataset(coco, images_dir)[0]
    assert image.shape == (3, 40, 20)
    mask = target["masks"][0].bool()
    assert image[:, mask].mean() > 0.9 and image[:, ~mask].mean() < 0.1


def test_skip_mode_drops_unreadable_files_at_construction(tmp_path: Path, synthetic_root: Path) -> None:
    root = tmp_path / "copy"
    shutil.copytree(synthetic_root, root)
    annotations, images_dir = _split(root)
    coco = load_annotations(annotations)
    (images_dir / coco["images"][1]["file_name"]).write_text("not an image")
    with pytest.warns(UserWarning, match=r"(?s)skipping 1 image\(s\).*synth_train_000001.png"):
        dataset = FashionpediaDataset(annotations, images_dir)
    assert len(dataset) == len(coco["images"]) - 1
    assert 2 not in {im["id"] for im in dataset.coco_json["images"]}
    with pytest.raises(FashionsegError, match="synth_train_000001.png"):
        FashionpediaDataset(annotations, images_dir, skip_bad=False)


def test_corrupt_image_is_skipped_with_a_warning_or_raises_in_strict_mode(tmp_path: Path) -> None:
    coco, images_dir = _tiny(tmp_path)
    noise = np.random.default_rng(0).integers(0, 255, (30, 40, 3), dtype=np.uint8)
    Image.fromarray(noise).save(images_dir / "b.png")
    data = (images_dir / "b.png").read_bytes()
    (images_dir / "b.png").write_bytes(data[: len(data) // 2])  # truncated: only a full decode finds it
    coco["images"].insert(0, {"id": 2, "width": 40, "height": 30, "file_name": "b.png"})
    dataset = FashionpediaDataset(coco, images_dir)
    with pytest.warns(UserWarning, match="b.png is truncated"):
        _, target = dataset[0]
    assert int(target["image_id"]) == 1
    with pytest.raises(ImageReadError, match="b.png"):
        FashionpediaDataset(coco, images_dir, skip_bad=False)[0]


def test_collate_fn_keeps_lists() -> None:
    batch = [(torch.zeros(3, 4, 5), {"a": 1}), (torch.zeros(3, 6, 7), {"a": 2})]
    images, targets = collate_fn(batch)
    assert [im.shape[1:] for im in images] == [(4, 5), (6, 7)] and targets == [{"a": 1}, {"a": 2}]


# --- transforms ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shape", "sizes", "expected"),
    [
        ((480, 640), (800, 1333), (800, 1067)),  # shortest edge to 800
        ((100, 1000), (800, 1333), (133, 1333)),  # longest edge capped
        ((640, 480), (160, 192), (192, 144)),
        ((128, 128), (128, 128), (128, 128)),
    ],
)
def test_resized_shape_follows_detectron2(shape: tuple, sizes: tuple, expected: tuple) -> None:
    assert resized_shape(*shape, *sizes) == expected


def test_resize_and_flip_keep_boxes_on_the_masks(synthetic_root: Path) -> None:
    torch.manual_seed(0)
    transform = Compose([Resize(96, 120), RandomHorizontalFlip(0.5)])
    dataset = FashionpediaDataset(*_split(synthetic_root), transforms=transform)
    for index in range(6):
        image, target = dataset[index]
        assert image.shape == (3, 96, 96) and target["masks"].shape[1:] == (96, 96)
        assert len(target["labels"]) == len(target["masks"]) == len(target["attributes"]) > 0
        for box, mask, area in zip(target["boxes"], target["masks"], target["area"], strict=True):
            assert box.tolist() == _mask_extents(mask)
            assert area == mask.sum()


def test_flip_mirrors_image_masks_and_boxes(tmp_path: Path) -> None:
    coco, images_dir = _tiny(tmp_path)
    dataset = FashionpediaDataset(coco, images_dir)
    image, target = dataset[0]
    flipped, ftarget = RandomHorizontalFlip(1.0)(image, target)
    assert torch.equal(flipped, image.flip(-1)) and torch.equal(ftarget["masks"], target["masks"].flip(-1))
    assert ftarget["boxes"][0].tolist() == [20.0, 5.0, 30.0, 15.0]
    assert ftarget["boxes"][0].tolist() == _mask_extents(ftarget["masks"][0])
    same, starget = RandomHorizontalFlip(0.0)(image, target)
    assert same is image and starget is target


def test_flip_is_deterministic_given_the_seed(tmp_path: Path) -> None:
    coco, images_dir = _tiny(tmp_path)
    image, target = FashionpediaDataset(coco, images_dir)[0]
    flip = RandomHorizontalFlip(0.5)

    def draws(seed: int) -> list[bool]:
        torch.manual_seed(seed)
        return [not torch.equal(flip(image, target)[1]["masks"], target["masks"]) for _ in range(16)]

    assert draws(3) == draws(3)
    assert 0 < sum(draws(3)) < 16
