"""Attribute-Mask R-CNN in torchvision: detectron2's R50-FPN, R50-C4 and R50-DC5, each with an attribute head.

``build_model(cfg.model, labels, min_size=cfg.data.min_size, max_size=cfg.data.max_size)`` returns a
torchvision ``GeneralizedRCNN``-style model that follows the data contract of ARCHITECTURE.md: images
``list[Tensor[3, H, W]]`` in 0-1; in training it returns torchvision's five losses plus ``loss_attribute``;
in inference each detection also carries ``attribute_scores`` [N, A] and ``attribute_ids``. The
architecture names are :data:`fashionseg.config.ARCHITECTURES`.

- ``backbones``: ResNet 18/34/50/101 with frozen BN / BN / GN, stage freezing, res5 dilation (DC5).
- ``roi_heads``: ``AttributeRoIHeads`` (torchvision's RoIHeads + attributes) and ``Res5RoIHeads`` (C4).
- ``attribute_head``: the attribute predictor and its loss.
- ``weights``: torchvision weight files (offline-safe) and fashionseg checkpoints.
- ``detector``: the three architecture builders and ``build_model``.

What still differs from detectron2, and why, is the book's method chapter (``book/method.md``).
"""

from fashionseg.models.attribute_head import AttributePredictor, attribute_loss
from fashionseg.models.detector import (
    ARCHITECTURE_BUILDERS,
    AttributeMaskRCNN,
    build_model,
    count_parameters,
    resolve_norm,
)
from fashionseg.models.roi_heads import AttributeRoIHeads, Res5RoIHeads

__all__ = [
    "ARCHITECTURE_BUILDERS",
    "AttributeMaskRCNN",
    "AttributePredictor",
    "AttributeRoIHeads",
    "Res5RoIHeads",
    "attribute_loss",
    "build_model",
    "count_parameters",
    "resolve_norm",
]
