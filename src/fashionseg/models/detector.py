"""The three detectron2 architectures (R50-FPN, R50-C4, R50-DC5) assembled from torchvision parts.

:func:`build_model` reads a :class:`~fashionseg.config.ModelConfig`; :data:`ARCHITECTURE_BUILDERS` is the
table of architecture builders, keyed by the names in :data:`fashionseg.config.ARCHITECTURES`. Every model is
an :class:`AttributeMaskRCNN`: torchvision's ``GeneralizedRCNN`` (transform, backbone, RPN, RoI heads) whose
RoI heads also predict attributes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from torch import Tensor, nn
from torchvision.models import ResNet
from torchvision.models.detection import MaskRCNN_ResNet50_FPN_Weights
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.generalized_rcnn import GeneralizedRCNN
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.models.detection.rpn import RegionProposalNetwork, RPNHead
from torchvision.models.detection.transform import GeneralizedRCNNTransform

from fashionseg.config import ARCHITECTURES, ModelConfig
from fashionseg.data.ontology import LabelSpace
from fashionseg.errors import FashionsegError
from fashionseg.models.attribute_head import AttributePredictor
from fashionseg.models.backbones import (
    SingleFeatureBackbone,
    build_resnet,
    dilate_res5,
    group_norm,
    stage_channels,
)
from fashionseg.models.roi_align import MatmulMultiScaleRoIAlign
from fashionseg.models.roi_heads import AttributeRoIHeads, Res5RoIHeads, SingleLevelRoIAlign
from fashionseg.models.trunk import is_trunk, load_into_resnet, load_trunk
from fashionseg.models.weights import load_checkpoint_state, load_matching, load_torchvision_state

FPN_LEVELS = ["0", "1", "2", "3"]
ASPECT_RATIOS = (0.5, 1.0, 2.0)
FPN_CHANNELS = 256
BOX_HEAD_DIM = 1024
MASK_HEAD_DIM = 256
STRIDE16 = 1.0 / 16


class AttributeMaskRCNN(GeneralizedRCNN):
    """Mask R-CNN whose detections also carry attributes.

    ``model(images, targets)``: images are ``list[Tensor[3, H, W]]`` in 0-1 (RGB). Training returns the
    loss dict (torchvision's five losses and ``loss_attribute``); inference returns one dict per image with
    ``boxes``, ``labels``, ``scores``, ``masks`` [N, 1, H, W], ``attribute_scores`` [N, A] and
    ``attribute_ids``: per detection, the dataset ids of the attributes scoring at least
    ``attribute_threshold`` (column j of ``attribute_scores`` is ``attribute_ids_map[j]``).
    """

    def __init__(
        self,
        backbone: nn.Module,
        rpn: RegionProposalNetwork,
        roi_heads: AttributeRoIHeads,
        transform: GeneralizedRCNNTransform,
        attribute_ids_map: Sequence[int],
        attribute_threshold: float,
    ) -> None:
        super().__init__(backbone, rpn, roi_heads, transform)
        self.attribute_ids_map = tuple(attribute_ids_map)
        self.attribute_threshold = attribute_threshold
        # the names of the ResNet's parameters wherever the architecture put them (R50-C4: res5 in the box
        # head); build_model fills it in, the optimizer gives them solver.resnet_lr_factor
        self.resnet_parameter_names: frozenset[str] = frozenset()

    def forward(
        self, images: list[Tensor], targets: list[dict[str, Tensor]] | None = None
    ) -> dict[str, Tensor] | list[dict[str, Any]]:
        output = super().forward(images, targets)
        if self.training:
            return output
        for detection in output:
            above = (detection["attribute_scores"] >= self.attribute_threshold).cpu()
            detection["attribute_ids"] = [
                [self.attribute_ids_map[j] for j in row.nonzero().flatten().tolist()] for row in above
            ]
        return output


def _rpn(cfg: ModelConfig, anchors: AnchorGenerator, in_channels: int) -> RegionProposalNetwork:
    """detectron2's RPN: StandardRPNHead (one 3x3 conv, then objectness and deltas), IoU 0.3/0.7, NMS 0.7."""
    return RegionProposalNetwork(
        anchors,
        RPNHead(in_channels, anchors.num_anchors_per_location()[0]),
        fg_iou_thresh=0.7,
        bg_iou_thresh=0.3,
        batch_size_per_image=cfg.rpn_batch_size_per_image,
        positive_fraction=0.5,
        pre_nms_top_n={"training": cfg.rpn_pre_nms_top_n_train, "testing": cfg.rpn_pre_nms_top_n_test},
        post_nms_top_n={"training": cfg.rpn_post_nms_top_n_train, "testing": cfg.rpn_post_nms_top_n_test},
        nms_thresh=0.7,
    )


def _roi_heads(
    heads: type[AttributeRoIHeads],
    cfg: ModelConfig,
    labels: LabelSpace,
    feature_dim: int,
    **modules: nn.Module,
) -> AttributeRoIHeads:
    """RoI heads with detectron2's sampling and test settings; ``feature_dim`` is the box-feature width."""
    return heads(
        box_predictor=FastRCNNPredictor(feature_dim, labels.num_classes),
        attribute_predictor=AttributePredictor(feature_dim, labels.num_attributes, cfg.attribute_prior),
        labels_with_attributes=labels.labels_with_attributes(),
        attribute_loss_weight=cfg.attribute_loss_weight,
        fg_iou_thresh=0.5,
        bg_iou_thresh=0.5,
        batch_size_per_image=cfg.box_batch_size_per_image,
        positive_fraction=cfg.box_positive_fraction,
        bbox_reg_weights=None,
        score_thresh=cfg.box_score_thresh,
        nms_thresh=0.5,
        detections_per_img=cfg.box_detections_per_img,
        **modules,
    )


def _anchor_sizes(cfg: ModelConfig) -> tuple[int, ...]:
    """``model.anchor_sizes``, checked: five positive sizes (one per FPN level P2-P6; the RPN head's width of
    C4/DC5 is 5 sizes x 3 ratios, as in detectron2)."""
    sizes = tuple(cfg.anchor_sizes)
    if len(sizes) != 5 or any(s <= 0 for s in sizes):
        raise FashionsegError(f"model.anchor_sizes={list(sizes)} must be five positive sizes in pixels")
    return sizes


def _single_level_anchors(cfg: ModelConfig) -> AnchorGenerator:
    """15 anchors per position (5 sizes x 3 ratios) on one stride-16 map (C4, DC5)."""
    return AnchorGenerator((_anchor_sizes(cfg),), (ASPECT_RATIOS,))


def head_norm_layer(cfg: ModelConfig) -> Callable[[int], nn.Module] | None:
    """The normalisation of the FPN and mask-head convolutions: none (detectron2's default) or GroupNorm
    (``model.head_norm=gn``, as its from-scratch GN configs; the box head keeps its two FC layers)."""
    if cfg.head_norm == "none":
        return None
    if cfg.head_norm == "gn":
        return group_norm
    raise FashionsegError(f"model.head_norm={cfg.head_norm!r} is not a head normalisation; valid: none, gn")


def build_fpn(
    resnet: ResNet, cfg: ModelConfig, labels: LabelSpace
) -> tuple[nn.Module, RegionProposalNetwork, AttributeRoIHeads]:
    """R50-FPN, torchvision's maskrcnn_resnet50_fpn: FPN P2-P6, RPN on every level (3 anchors each),
    MultiScaleRoIAlign 7x7 -> 2-FC (1024) box head, 14x14 -> 4 convs -> 28x28 masks (the poolers map levels
    as torchvision's and pool with fashionseg.models.roi_align)."""
    backbone = BackboneWithFPN(
        resnet,
        return_layers={f"layer{i + 1}": name for i, name in enumerate(FPN_LEVELS)},
        in_channels_list=stage_channels(resnet),
        out_channels=FPN_CHANNELS,
        norm_layer=head_norm_layer(cfg),
    )
    anchors = AnchorGenerator(tuple((s,) for s in _anchor_sizes(cfg)), (ASPECT_RATIOS,) * 5)
    roi_heads = _roi_heads(
        AttributeRoIHeads,
        cfg,
        labels,
        BOX_HEAD_DIM,
        box_roi_pool=MatmulMultiScaleRoIAlign(FPN_LEVELS, output_size=7, sampling_ratio=2),
        box_head=TwoMLPHead(FPN_CHANNELS * 7 * 7, BOX_HEAD_DIM),
        mask_roi_pool=MatmulMultiScaleRoIAlign(FPN_LEVELS, output_size=14, sampling_ratio=2),
        mask_head=MaskRCNNHeads(
            FPN_CHANNELS, [MASK_HEAD_DIM] * 4, dilation=1, norm_layer=head_norm_layer(cfg)
        ),
        mask_predictor=MaskRCNNPredictor(MASK_HEAD_DIM, MASK_HEAD_DIM, labels.num_classes),
    )
    return backbone, _rpn(cfg, anchors, FPN_CHANNELS), roi_heads


def build_c4(
    resnet: ResNet, cfg: ModelConfig, labels: LabelSpace
) -> tuple[nn.Module, RegionProposalNetwork, AttributeRoIHeads]:
    """R50-C4: stem..res4 backbone (stride 16), one-level RPN (15 anchors), RoIAlign 14x14 on res4 ->
    res5 as the box head, shared with the mask head (2x deconv -> 14x14 masks)."""
    res4_channels, res5_channels = stage_channels(resnet)[2:]
    backbone = SingleFeatureBackbone(resnet, "layer3", "res4", res4_channels)
    roi_heads = _roi_heads(
        Res5RoIHeads,
        cfg,
        labels,
        res5_channels,
        box_roi_pool=SingleLevelRoIAlign("res4", 14, STRIDE16),
        box_head=resnet.layer4,
        mask_predictor=MaskRCNNPredictor(res5_channels, MASK_HEAD_DIM, labels.num_classes),
    )
    return backbone, _rpn(cfg, _single_level_anchors(cfg), res4_channels), roi_heads


def build_dc5(
    resnet: ResNet, cfg: ModelConfig, labels: LabelSpace
) -> tuple[nn.Module, RegionProposalNetwork, AttributeRoIHeads]:
    """R50-DC5: ResNet with res5 dilated (stride 16), one-level RPN on res5 (15 anchors), RoIAlign 7x7 ->
    2-FC (1024) box head, RoIAlign 14x14 -> 4 convs (256) -> 28x28 masks."""
    dilate_res5(resnet.layer4)
    res5_channels = stage_channels(resnet)[3]
    backbone = SingleFeatureBackbone(resnet, "layer4", "res5", res5_channels)
    roi_heads = _roi_heads(
        AttributeRoIHeads,
        cfg,
        labels,
        BOX_HEAD_DIM,
        box_roi_pool=SingleLevelRoIAlign("res5", 7, STRIDE16),
        box_head=TwoMLPHead(res5_channels * 7 * 7, BOX_HEAD_DIM),
        mask_roi_pool=SingleLevelRoIAlign("res5", 14, STRIDE16),
        mask_head=MaskRCNNHeads(
            res5_channels, [MASK_HEAD_DIM] * 4, dilation=1, norm_layer=head_norm_layer(cfg)
        ),
        mask_predictor=MaskRCNNPredictor(MASK_HEAD_DIM, MASK_HEAD_DIM, labels.num_classes),
    )
    return backbone, _rpn(cfg, _single_level_anchors(cfg), res5_channels), roi_heads


ArchitectureBuilder = Callable[
    [ResNet, ModelConfig, LabelSpace], tuple[nn.Module, RegionProposalNetwork, AttributeRoIHeads]
]
# in the order of config.ARCHITECTURES: the names live there, where no torch import is needed
ARCHITECTURE_BUILDERS: dict[str, ArchitectureBuilder] = dict(
    zip(ARCHITECTURES, (build_fpn, build_c4, build_dc5), strict=True)
)
WEIGHT_NAMES = ("none", "imagenet", "coco")


def resolve_norm(norm: str, pretrained: bool) -> str:
    """``auto`` -> ``frozen_bn`` when starting from pretrained weights, else trainable ``bn``."""
    if norm == "auto":
        return "frozen_bn" if pretrained else "bn"
    return norm


def build_model(cfg: ModelConfig, labels: LabelSpace, *, min_size: int, max_size: int) -> AttributeMaskRCNN:
    """The detector ``cfg.arch`` for ``labels``, initialised from ``cfg.weights``.

    ``cfg.depth`` swaps the ResNet (18/34/50/101) inside the same architecture family: "R50-C4" with
    depth 101 is detectron2's R101-C4. ``cfg.weights``: ``none`` (random init, every stage trainable),
    ``trunk`` (the project's pretrained ResNet, :mod:`fashionseg.models.trunk`; or the path of another
    ``.safetensors`` trunk), ``imagenet`` (torchvision's ResNet weights for the backbone), ``coco``
    (torchvision's COCO Mask R-CNN; R50-FPN, depth 50 only; label-specific predictors re-initialised) or the
    path of a fashionseg checkpoint. With pretrained weights the first ``5 - cfg.trainable_backbone_layers``
    ResNet stages are frozen. ``min_size``/``max_size`` (the run's ``data.min_size``/``data.max_size``) set
    the internal resize (a no-op for images already at that size).
    """
    if cfg.arch not in ARCHITECTURES:
        raise FashionsegError(
            f"model.arch={cfg.arch!r} is not an architecture; valid: {', '.join(ARCHITECTURES)}"
        )
    trunk = is_trunk(cfg.weights)
    # Weight files are read and checked first: a wrong path fails before the (slow) model is built.
    checkpoint_state = None if cfg.weights in WEIGHT_NAMES or trunk else load_checkpoint_state(cfg.weights)
    if cfg.weights == "coco" and (cfg.arch != "R50-FPN" or cfg.depth != 50):
        raise FashionsegError(
            f"weights=coco exists only for R50-FPN with depth 50 (torchvision's maskrcnn_resnet50_fpn), "
            f"not model.arch={cfg.arch} with model.depth={cfg.depth}; use weights=imagenet instead"
        )
    pretrained = cfg.weights != "none"
    norm = "gn" if trunk and cfg.norm == "auto" else resolve_norm(cfg.norm, pretrained)
    trunk_state = load_trunk(cfg.weights, cfg.depth, norm)[0] if trunk else None
    resnet = build_resnet(
        cfg.depth,
        norm,
        imagenet=cfg.weights == "imagenet",
        trainable_layers=cfg.trainable_backbone_layers if pretrained else 5,
    )
    if trunk_state is not None:
        # before the architecture takes the stages apart: R50-C4 moves res5 into its box head, R50-DC5
        # dilates it (same weights, other strides)
        load_into_resnet(resnet, trunk_state, f"model.weights={cfg.weights}")
    backbone, rpn, roi_heads = ARCHITECTURE_BUILDERS[cfg.arch](resnet, cfg, labels)
    transform = GeneralizedRCNNTransform(
        min_size, max_size, image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225]
    )
    model = AttributeMaskRCNN(
        backbone, rpn, roi_heads, transform, labels.attribute_ids, cfg.attribute_threshold
    )
    resnet_ids = {id(p) for p in resnet.parameters()}
    model.resnet_parameter_names = frozenset(n for n, p in model.named_parameters() if id(p) in resnet_ids)
    if cfg.weights == "coco":
        coco = MaskRCNN_ResNet50_FPN_Weights.COCO_V1
        load_matching(model, load_torchvision_state(coco, "weights=coco"), f"torchvision {coco}")
    elif checkpoint_state is not None:
        load_matching(model, checkpoint_state, cfg.weights)
    return model


def count_parameters(model: nn.Module) -> int:
    """All parameters (trainable or frozen; FrozenBatchNorm statistics are buffers, not counted)."""
    return sum(p.numel() for p in model.parameters())
