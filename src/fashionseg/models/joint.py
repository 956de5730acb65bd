"""The joint pretext: several designs' heads trained together on one ResNet (``model.pretext_archs``).

Each design is built as :func:`~fashionseg.models.build_model` builds it, then its ResNet's parameters and
buffers are replaced by one shared set, matched by their torchvision names (``models.trunk``). The modules
stay separate because the designs use the same weights differently: R50-C4 runs res5 as its box head,
R50-DC5 runs it dilated (other strides, same weights). A pilot (#24) found this pretext better for every
design than R50-FPN's alone: fine-tuned from its trunk, mask AP R50-DC5 15.4 -> 25.3, R50-C4 21.6 -> 26.4,
R50-FPN 48.7 -> 50.6.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from torch import Tensor, nn

from fashionseg.config import ModelConfig
from fashionseg.data.ontology import LabelSpace
from fashionseg.errors import FashionsegError
from fashionseg.models.detector import AttributeMaskRCNN, build_model
from fashionseg.models.trunk import torchvision_name, trunk_state

# the joint model's state-dict keys of one design start with this and the design's name
DESIGNS = "designs."


class JointPretextModel(nn.Module):
    """The designs of ``cfg.pretext_archs`` on one shared ResNet.

    ``model(images, targets)`` in training: every design's losses, keyed ``"<arch>/<loss>"``
    (``"R50-C4/loss_mask"``); their sum trains the shared ResNet with every design's gradient, and every
    parameter gets a gradient each step (fused SGD needs that). In eval mode: ``{arch: detections}``.
    """

    def __init__(self, cfg: ModelConfig, labels: LabelSpace, *, min_size: int, max_size: int) -> None:
        super().__init__()
        if not cfg.pretext_archs:
            raise FashionsegError("model.pretext_archs is empty: there are no designs to train jointly")
        self.designs = nn.ModuleDict(
            {
                arch: build_model(
                    dataclasses.replace(cfg, arch=arch), labels, min_size=min_size, max_size=max_size
                )
                for arch in cfg.pretext_archs
            }
        )
        self._tie_resnets()
        self.resnet_parameter_names = frozenset(
            f"{DESIGNS}{arch}.{name}"
            for arch, design in self.named_designs()
            for name in design.resnet_parameter_names
        )

    def named_designs(self) -> list[tuple[str, AttributeMaskRCNN]]:
        """(arch, detector) of each design, in ``pretext_archs`` order."""
        return list(self.designs.items())

    def _tie_resnets(self) -> None:
        """Make every design's ResNet tensors the first design's, by torchvision name; check they all are."""
        shared: dict[str, Tensor] = {}
        tied: dict[str, set[str]] = {}
        for arch, design in self.named_designs():
            tied[arch] = set()
            for module_name, module in design.named_modules():
                owned = [(n, t, module._parameters) for n, t in module.named_parameters(recurse=False)]
                # buffers too: BatchNorm's running statistics must be the one ResNet's, not one per design
                owned += [(n, t, module._buffers) for n, t in module.named_buffers(recurse=False)]
                for name, tensor, table in owned:
                    full = f"{module_name}.{name}" if module_name else name
                    tv_name = torchvision_name(arch, full)
                    if tv_name is None:
                        continue
                    if tv_name in shared:
                        if shared[tv_name].shape != tensor.shape:
                            raise FashionsegError(
                                f"{arch}'s {full} does not fit the shared ResNet's {tv_name}"
                            )
                        table[name] = shared[tv_name]
                    else:
                        shared[tv_name] = tensor
                    tied[arch].add(tv_name)
        for arch, names in tied.items():
            if names != shared.keys():
                raise FashionsegError(f"{arch}'s ResNet lacks {sorted(shared.keys() - names)[:5]}")

    def forward(self, images: list[Tensor], targets: list[dict[str, Tensor]] | None = None) -> dict[str, Any]:
        if not self.training:
            return {arch: design(images) for arch, design in self.named_designs()}
        losses: dict[str, Tensor] = {}
        for arch, design in self.named_designs():
            for key, value in design(images, targets).items():
                losses[f"{arch}/{key}"] = value
        return losses

    def trunk_state(self) -> dict[str, Tensor]:
        """The shared ResNet (stem to res5) under torchvision's names, as ``save_trunk`` takes it."""
        arch, design = self.named_designs()[0]
        return trunk_state(design.state_dict(), arch)


def design_state(joint_state: Mapping[str, Tensor], arch: str) -> dict[str, Tensor]:
    """One design's detector state dict out of a :class:`JointPretextModel`'s (a checkpoint's ``model``)."""
    prefix = f"{DESIGNS}{arch}."
    state = {k[len(prefix) :]: v for k, v in joint_state.items() if k.startswith(prefix)}
    if not state:
        raise FashionsegError(f"the joint model's state has no design {arch}")
    return state


def joint_trunk_state(joint_state: Mapping[str, Tensor], archs: tuple[str, ...]) -> dict[str, Tensor]:
    """The shared ResNet of a joint model's state dict under torchvision's names (any design holds it)."""
    return trunk_state(design_state(joint_state, archs[0]), archs[0])
