"""The torch Dataset over a Fashionpedia/COCO annotation file and its image folder.

Each item is ``(image, target)`` per the data contract in ARCHITECTURE.md: ``image`` float32
``[3, H, W]`` in 0-1 (RGB, EXIF applied), ``target`` with ``boxes`` float32 ``[N, 4]`` (xyxy: the tight
extents of the masks, which the JSON ``bbox`` should equal), ``labels`` int64 ``[N]`` (1..K, see
:class:`~fashionseg.data.ontology.LabelSpace`), ``masks`` uint8 ``[N, H, W]``, ``attributes`` float32
``[N, A]`` (multi-hot over ``labels.attribute_ids``, zero for categories without attributes), ``image_id``
int64, ``area`` float32 ``[N]`` (mask pixels), ``iscrowd`` int64 ``[N]``. Crowd annotations and categories
outside the label space are left out; images left with no instance stay, with ``boxes`` ``[0, 4]`` and
``masks`` ``[0, H, W]``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from fashionseg.data.annotations import (
    check_annotations,
    decode_segmentation,
    drop_bad,
    load_annotations,
    subset_annotations,
)
from fashionseg.data.images import ImageReadError, read_image
from fashionseg.data.ontology import LabelSpace
from fashionseg.data.transforms import masks_to_boxes
from fashionseg.errors import FashionsegError

Transform = Callable[[torch.Tensor, dict[str, Any]], tuple[torch.Tensor, dict[str, Any]]]
_MAX_LISTED = 10  # problems named in a warning or error; `fashionseg data check` lists them all


class FashionpediaDataset(Dataset):
    """Images and instance targets of one split.

    ``annotations`` is a JSON path or an already loaded dict. On construction the file is subset
    (``categories`` first, then the first ``max_images`` images) and checked against ``images_dir``
    (image headers only, see :func:`~fashionseg.data.annotations.check_annotations`). With ``skip_bad``
    (training's default) images and annotations with errors are dropped with one warning, and an image
    that turns out corrupt when decoded is skipped with a warning naming the file; otherwise the first
    error raises :class:`FashionsegError` naming the file and ids.

    Attributes: ``labels`` (the :class:`LabelSpace`; default ``LabelSpace.from_coco`` of the file),
    ``coco_json`` (the annotations actually used, for COCO evaluation), ``report`` (the check report).
    """

    def __init__(
        self,
        annotations: str | Path | dict[str, Any],
        images_dir: str | Path,
        labels: LabelSpace | None = None,
        transforms: Transform | None = None,
        skip_bad: bool = True,
        max_images: int | None = None,
        categories: tuple[int, ...] | list[int] | None = None,
    ) -> None:
        source = "annotations" if isinstance(annotations, dict) else str(annotations)
        coco = annotations if isinstance(annotations, dict) else load_annotations(annotations)
        coco = subset_annotations(coco, max_images=max_images, categories=categories, source=source)
        self.images_dir = Path(images_dir)
        # a progress bar only where checking takes noticeable time (Fashionpedia's 45k training images)
        self.report = check_annotations(coco, self.images_dir, show_progress=len(coco["images"]) >= 1000)
        errors = self.report.errors()
        if errors and not skip_bad:
            raise FashionsegError(
                f"{source} has {len(errors)} error(s) (images in {self.images_dir}):\n"
                + "\n".join(f"  {p}" for p in errors[:_MAX_LISTED])
                + f"\nrun `fashionseg data check {source} --images {self.images_dir}` for the full list, "
                "or use skip mode (data.skip_bad=true) to leave them out"
            )
        if errors:
            coco = drop_bad(coco, self.report, source)
            warnings.warn(
                f"{source}: skipping {len(self.report.bad_image_ids)} image(s) and "
                f"{len(self.report.bad_annotation_ids)} annotation(s) with errors, e.g.\n"
                + "\n".join(f"  {p}" for p in errors[:_MAX_LISTED]),
                stacklevel=2,
            )
        self.coco_json = coco
        self.labels = labels if labels is not None else LabelSpace.from_coco(coco)
        self.transforms = transforms
        self.skip_bad = skip_bad
        self._images = list(coco["images"])
        by_image: dict[int, list[dict[str, Any]]] = {im["id"]: [] for im in self._images}
        wanted = set(self.labels.category_ids)
        for ann in coco["annotations"]:
            if not ann.get("iscrowd", 0) and ann["category_id"] in wanted:
                by_image[ann["image_id"]].append(ann)
        self._annotations = by_image
        self._attribute_column = {aid: j for j, aid in enumerate(self.labels.attribute_ids)}
        self._with_attributes = set(self.labels.attribute_category_ids)
        self._corrupt: set[int] = set()

    def __len__(self) -> int:
        return len(self._images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, Any]]:
        for step in range(len(self)):
            i = (index + step) % len(self)
            if i in self._corrupt:
                continue
            try:
                return self._load(i)
            except ImageReadError as exc:
                if not self.skip_bad:
                    raise
                self._corrupt.add(i)
                warnings.warn(f"skipping a corrupt image: {exc}", stacklevel=2)
        raise FashionsegError(f"no readable image left in {self.images_dir}")

    def image_info(self, index: int) -> dict[str, Any]:
        """The JSON ``images`` entry of item ``index``."""
        return self._images[index]

    def _load(self, index: int) -> tuple[torch.Tensor, dict[str, Any]]:
        info = self._images[index]
        width, height = info["width"], info["height"]
        path = self.images_dir / info["file_name"]
        pil = read_image(path)
        if pil.size != (width, height):
            raise ImageReadError(f"{path} is {pil.size[0]}x{pil.size[1]}, the JSON says {width}x{height}")
        image = torch.from_numpy(np.asarray(pil).copy()).permute(2, 0, 1).to(torch.float32) / 255
        target = self._target(info["id"], self._annotations[info["id"]], height, width)
        if self.transforms is not None:
            image, target = self.transforms(image, target)
        return image, target

    def _target(self, image_id: int, anns: list[dict[str, Any]], height: int, width: int) -> dict[str, Any]:
        n = len(anns)
        masks = np.zeros((n, height, width), dtype=np.uint8)
        attributes = np.zeros((n, self.labels.num_attributes), dtype=np.float32)
        labels = np.zeros(n, dtype=np.int64)
        for k, ann in enumerate(anns):
            masks[k] = decode_segmentation(ann["segmentation"], height, width)
            labels[k] = self.labels.label_of(ann["category_id"])
            if ann["category_id"] in self._with_attributes:
                columns = [
                    self._attribute_column[a]
                    for a in ann.get("attribute_ids", ())
                    if a in self._attribute_column
                ]
                attributes[k, columns] = 1.0
        masks_t = torch.from_numpy(masks)
        return {
            "boxes": masks_to_boxes(masks_t),
            "labels": torch.from_numpy(labels),
            "masks": masks_t,
            "attributes": torch.from_numpy(attributes),
            "image_id": torch.tensor(image_id, dtype=torch.int64),
            "area": masks_t.flatten(1).sum(1).to(torch.float32),
            "iscrowd": torch.zeros(n, dtype=torch.int64),
        }


def collate_fn(batch: list[tuple[torch.Tensor, dict[str, Any]]]) -> tuple[list[torch.Tensor], list[dict]]:
    """``(images, targets)`` lists for torchvision detection models (images differ in size)."""
    images, targets = zip(*batch, strict=True)
    return list(images), list(targets)
