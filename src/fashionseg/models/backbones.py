"""torchvision ResNets as detectron2's backbones: normalisation, stage freezing, res5 dilation.

``depth`` picks the ResNet (18, 34: BasicBlock; 50, 101: Bottleneck). Stage widths follow the block type:
res2..res5 give 256/512/1024/2048 channels with Bottleneck and 64/128/256/512 with BasicBlock, so every
head that reads a stage asks :func:`stage_channels` instead of assuming ResNet-50's numbers.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn
from torchvision.models import (
    ResNet,
    ResNet18_Weights,
    ResNet34_Weights,
    ResNet50_Weights,
    ResNet101_Weights,
    resnet18,
    resnet34,
    resnet50,
    resnet101,
)
from torchvision.models._utils import IntermediateLayerGetter
from torchvision.ops import FrozenBatchNorm2d

from fashionseg.errors import FashionsegError
from fashionseg.models.weights import load_torchvision_state

RESNETS: dict[int, Callable[..., ResNet]] = {18: resnet18, 34: resnet34, 50: resnet50, 101: resnet101}
IMAGENET_WEIGHTS = {
    18: ResNet18_Weights.IMAGENET1K_V1,
    34: ResNet34_Weights.IMAGENET1K_V1,
    50: ResNet50_Weights.IMAGENET1K_V1,
    101: ResNet101_Weights.IMAGENET1K_V1,
}
NORMS = ("frozen_bn", "bn", "gn")
# Stem, res2, res3, res4, res5 in torchvision's attribute names; trainable layers count from the end.
STAGES = ("conv1", "layer1", "layer2", "layer3", "layer4")


def group_norm(num_channels: int) -> nn.GroupNorm:
    """GroupNorm with 32 groups (detectron2's GN)."""
    return nn.GroupNorm(32, num_channels)


def norm_layer(norm: str) -> Callable[[int], nn.Module]:
    """The ResNet normalisation layer for ``frozen_bn``, ``bn`` or ``gn``."""
    layers: dict[str, Callable[[int], nn.Module]] = {
        "frozen_bn": FrozenBatchNorm2d,
        "bn": nn.BatchNorm2d,
        "gn": group_norm,
    }
    if norm not in layers:
        raise FashionsegError(f"model.norm={norm!r} is not a normalisation; valid: auto, {', '.join(NORMS)}")
    return layers[norm]


def stage_channels(resnet: ResNet) -> list[int]:
    """Channels of res2..res5: [256, 512, 1024, 2048] (Bottleneck) or [64, 128, 256, 512] (BasicBlock)."""
    expansion = type(resnet.layer1[0]).expansion
    return [64 * 2**i * expansion for i in range(4)]


def build_resnet(depth: int, norm: str, imagenet: bool, trainable_layers: int) -> ResNet:
    """A torchvision ResNet (with its unused ``fc``), optionally with ImageNet weights, stages frozen.

    ``trainable_layers`` (0-5) counts stages from res5 back to the stem, as torchvision's
    ``trainable_backbone_layers``: 3 trains res3-res5 and freezes the stem and res2 (detectron2's
    ``FREEZE_AT=2``); 5 trains everything.
    """
    if depth not in RESNETS:
        raise FashionsegError(
            f"model.depth={depth} is not a ResNet depth; valid: {', '.join(map(str, RESNETS))}"
        )
    if imagenet and norm == "gn":
        raise FashionsegError(
            "model.norm=gn cannot start from weights=imagenet: torchvision's ImageNet ResNets are trained "
            "with BatchNorm. Use model.norm=frozen_bn (or bn), or weights=none for GroupNorm from scratch."
        )
    _check_trainable_layers(trainable_layers)
    resnet = RESNETS[depth](weights=None, norm_layer=norm_layer(norm))
    if imagenet:
        resnet.load_state_dict(load_torchvision_state(IMAGENET_WEIGHTS[depth], "weights=imagenet"))
    freeze_stages(resnet, trainable_layers)
    return resnet


def freeze_stages(resnet: ResNet, trainable_layers: int) -> None:
    """Freeze all but the last ``trainable_layers`` stages in place.

    Frozen stages stop training, and their BatchNorm becomes FrozenBatchNorm2d so that the running
    statistics of pretrained weights are not overwritten by small training batches (as detectron2 does).
    """
    _check_trainable_layers(trainable_layers)
    for name in STAGES[: len(STAGES) - trainable_layers]:
        names = ("conv1", "bn1") if name == "conv1" else (name,)
        for attr in names:
            module = to_frozen_batchnorm(getattr(resnet, attr))
            module.requires_grad_(False)
            setattr(resnet, attr, module)


def _check_trainable_layers(trainable_layers: int) -> None:
    if not 0 <= trainable_layers <= len(STAGES):
        raise FashionsegError(
            f"model.trainable_backbone_layers={trainable_layers} must lie in 0..{len(STAGES)} "
            "(0 freezes the whole ResNet, 5 trains it all)"
        )


def to_frozen_batchnorm(module: nn.Module) -> nn.Module:
    """``module`` with every BatchNorm2d (itself included) replaced by a FrozenBatchNorm2d of equal state."""
    if isinstance(module, nn.BatchNorm2d):
        frozen = FrozenBatchNorm2d(module.num_features, eps=module.eps)
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(frozen, name).copy_(getattr(module, name).detach())
        return frozen
    for name, child in module.named_children():
        setattr(module, name, to_frozen_batchnorm(child))
    return module


def dilate_res5(res5: nn.Sequential) -> None:
    """Make res5 keep stride 16 in place (the DC5 backbone): no stride, dilation 2 in every 3x3 conv.

    Unlike torchvision's ``replace_stride_with_dilation``, which leaves the first block's 3x3 conv at
    dilation 1, this dilates all res5 blocks, as detectron2's ``RES5_DILATION=2`` does. It also works for
    BasicBlock (R18/R34), which torchvision refuses to dilate; the parameters are unchanged either way.
    """
    for module in res5.modules():
        if isinstance(module, nn.Conv2d):
            module.stride = (1, 1)
            if module.kernel_size == (3, 3):
                module.dilation = (2, 2)
                module.padding = (2, 2)


class SingleFeatureBackbone(nn.Module):
    """The ResNet up to one stage, as a detection backbone with one feature map (C4 and DC5).

    ``forward(images [B, 3, H, W]) -> {name: [B, out_channels, H/16, W/16]}``.
    """

    def __init__(self, resnet: ResNet, last_stage: str, name: str, out_channels: int) -> None:
        super().__init__()
        self.body = IntermediateLayerGetter(resnet, return_layers={last_stage: name})
        self.out_channels = out_channels

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        return self.body(x)
