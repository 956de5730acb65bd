"""Transforms of an image and its target together, so that boxes and masks stay on the same pixels.

Each transform maps ``(image Tensor[3, H, W], target dict) -> (image, target)`` following the data contract
in ARCHITECTURE.md (``boxes`` float32 [N, 4] xyxy in pixels, ``masks`` uint8 [N, H, W], ``area`` [N]).
Random draws come from torch's global generator, so a seeded run is reproducible.

torchvision's ``GeneralizedRCNNTransform`` resizes again inside the model; the models are built with the
same ``min_size``/``max_size``, which makes that second resize the identity.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

Target = dict[str, Any]


def masks_to_boxes(masks: torch.Tensor) -> torch.Tensor:
    """Tight boxes float32 ``[N, 4]`` (x1, y1, x2, y2) of non-empty masks ``[N, H, W]``.

    Box edges lie on pixel boundaries (x2 is one past the last column), as COCO's ``bbox`` of a mask.
    """
    if masks.shape[0] == 0:
        return torch.zeros((0, 4), dtype=torch.float32)
    rows, cols = masks.any(2), masks.any(1)
    h, w = masks.shape[-2:]
    y1 = rows.to(torch.uint8).argmax(1)
    x1 = cols.to(torch.uint8).argmax(1)
    y2 = h - rows.flip(1).to(torch.uint8).argmax(1)
    x2 = w - cols.flip(1).to(torch.uint8).argmax(1)
    return torch.stack([x1, y1, x2, y2], 1).to(torch.float32)


def resized_shape(height: int, width: int, min_size: int, max_size: int) -> tuple[int, int]:
    """``(new_height, new_width)``: shortest edge to ``min_size`` unless the longest would pass ``max_size``.

    The rule of detectron2's ``ResizeShortestEdge`` (and, up to rounding, torchvision's detection resize).
    """
    scale = min_size / min(height, width)
    new_h, new_w = height * scale, width * scale
    if max(new_h, new_w) > max_size:
        shrink = max_size / max(new_h, new_w)
        new_h, new_w = new_h * shrink, new_w * shrink
    return int(new_h + 0.5), int(new_w + 0.5)


@dataclass(frozen=True)
class Resize:
    """Resize so the shortest edge is ``min_size`` and the longest at most ``max_size``.

    The image is resampled bilinearly (antialiased when shrinking), masks by nearest neighbour. Boxes and
    ``area`` are recomputed from the resized masks, so boxes stay the masks' extents even where a thin part
    loses rows; an instance whose mask vanishes (smaller than a pixel after shrinking) is dropped.
    """

    min_size: int
    max_size: int

    def __call__(self, image: torch.Tensor, target: Target) -> tuple[torch.Tensor, Target]:
        height, width = image.shape[-2:]
        new_h, new_w = resized_shape(height, width, self.min_size, self.max_size)
        if (new_h, new_w) == (height, width):
            return image, target
        image = F.interpolate(
            image[None], size=(new_h, new_w), mode="bilinear", align_corners=False, antialias=True
        )[0].clamp_(0, 1)
        masks = target["masks"]
        if masks.shape[0]:
            masks = F.interpolate(masks[None], size=(new_h, new_w), mode="nearest-exact")[0]
        else:
            masks = masks.new_zeros((0, new_h, new_w))
        keep = masks.flatten(1).bool().any(1)
        n = keep.shape[0]
        target = {
            k: v[keep] if torch.is_tensor(v) and v.ndim and v.shape[0] == n else v for k, v in target.items()
        }
        masks = masks[keep]
        target["masks"] = masks
        target["boxes"] = masks_to_boxes(masks)
        target["area"] = masks.flatten(1).sum(1).to(torch.float32)
        return image, target


@dataclass(frozen=True)
class RandomHorizontalFlip:
    """Mirror left-right with probability ``p``: one draw from torch's global generator per call, none when
    ``p <= 0`` (training flips in its loop with this, and its exact resume counts on these draws).

    ``masks``, where the target has them, are mirrored with the image; the target is a new dict.
    """

    p: float = 0.5

    def __call__(self, image: torch.Tensor, target: Target) -> tuple[torch.Tensor, Target]:
        if self.p <= 0 or torch.rand(()) >= self.p:
            return image, target
        width = image.shape[-1]
        target = dict(target)
        boxes = target["boxes"]
        target["boxes"] = torch.stack([width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]], 1)
        if "masks" in target:
            target["masks"] = target["masks"].flip(-1)
        return image.flip(-1), target


@dataclass(frozen=True)
class Compose:
    """Apply transforms in order."""

    transforms: Sequence[Any]

    def __call__(self, image: torch.Tensor, target: Target) -> tuple[torch.Tensor, Target]:
        for transform in self.transforms:
            image, target = transform(image, target)
        return image, target
