"""The Attribute-Mask R-CNN attribute head: a multi-label classifier on the box-head features of RoIs.

Each RoI's box-head feature vector (the 1024-d TwoMLPHead output for FPN/DC5, the 2048-d pooled res5 map
for C4) goes through one linear layer to one logit per attribute; attributes are independent (sigmoid),
since a garment carries several at once. Only foreground RoIs whose matched ground truth belongs to a
category with attributes are trained: for the others "no attribute" is unknown, not negative.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class AttributePredictor(nn.Module):
    """Linear ``[R, in_features] -> [R, num_attributes]`` logits with a low initial bias.

    The bias starts at ``-log((1 - prior) / prior)`` so that every attribute's initial probability is
    ``prior``: most attributes are rare, and a 0.5 start would swamp the loss with easy negatives (the focal
    loss paper's prior initialisation).
    """

    def __init__(self, in_features: int, num_attributes: int, prior: float = 0.01) -> None:
        super().__init__()
        if not 0.0 < prior < 1.0:
            raise ValueError(f"attribute prior must lie in (0, 1), got {prior}")
        self.attribute_score = nn.Linear(in_features, num_attributes)
        nn.init.normal_(self.attribute_score.weight, std=0.01)
        nn.init.constant_(self.attribute_score.bias, -math.log((1.0 - prior) / prior))

    def forward(self, features: Tensor) -> Tensor:
        """``features`` [R, D] (or [R, D, 1, 1]) -> attribute logits [R, A]."""
        return self.attribute_score(features.flatten(start_dim=1))


def attribute_loss(logits: Tensor, targets: Tensor, valid: Tensor) -> Tensor:
    """Sigmoid cross-entropy summed over the attributes and averaged over the valid RoIs.

    Summed, not averaged, over the attributes: a garment carries two or three of the 294, and a mean over
    all of them divides each present attribute's gradient by 294 (measured: the head then never scored an
    attribute above 0.5 in 600 iterations, and AP^IoU+F1 stayed 0).

    Args:
        logits: [R, A] attribute logits of the sampled RoIs.
        targets: [R, A] multi-hot attributes of each RoI's matched ground truth (0/1 floats).
        valid: [R] bool, RoIs that train attributes (foreground, category with attributes).

    Returns:
        A scalar: ``sum(BCE(logits[valid], targets[valid])) / valid.sum()``; ``0 * logits.sum()`` when no
        RoI is valid,
        so the head stays in the autograd graph (DistributedDataParallel needs every parameter used).
    """
    if not bool(valid.any()):
        return logits.sum() * 0.0
    bce = F.binary_cross_entropy_with_logits(logits[valid].float(), targets[valid].float(), reduction="sum")
    return bce / valid.sum()


def attribute_targets(matched_idxs: list[Tensor], gt_attributes: list[Tensor], num_attributes: int) -> Tensor:
    """The multi-hot attributes [R, A] of each sampled RoI's matched ground truth, images concatenated.

    ``matched_idxs[i]`` [R_i] indexes image i's ground truths; an image without ground truth (all RoIs
    background, matched index 0 by torchvision's convention) gets zeros.
    """
    rows = []
    for idxs, attrs in zip(matched_idxs, gt_attributes, strict=True):
        if attrs.shape[0] == 0:
            rows.append(attrs.new_zeros((idxs.shape[0], num_attributes)))
        else:
            rows.append(attrs[idxs])
    return torch.cat(rows, dim=0)
