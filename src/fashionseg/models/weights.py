"""Initial weights: torchvision's files (offline-safe) and fashionseg checkpoints, loaded by name and shape.

torchvision keeps downloaded weights in ``$TORCH_HOME/hub/checkpoints`` (default ``~/.cache/torch``). On a
machine without internet the file must be copied there beforehand; a missing file is a
:class:`FashionsegError` that names the file and the command that fetches it, never a stack trace.
"""

from __future__ import annotations

import logging
import os
import pickle
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import Tensor, nn
from torchvision.models import WeightsEnum

from fashionseg import checkpoint
from fashionseg.errors import FashionsegError

log = logging.getLogger(__name__)

# Parameters that depend on the label space: re-initialised when a checkpoint's shapes differ from ours
# (COCO's 91 classes, or another subset of Fashionpedia categories/attributes).
LABEL_SPECIFIC = (
    "roi_heads.box_predictor.",
    "roi_heads.mask_predictor.mask_fcn_logits.",
    "roi_heads.attribute_predictor.",
)


def cached_weights_path(weights: WeightsEnum) -> Path:
    """Where torch.hub caches this weights file: ``$TORCH_HOME/hub/checkpoints/<file name of the URL>``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(weights.url).path)


def download_command(weights: WeightsEnum) -> str:
    """The one-line Python command that downloads ``weights`` into the torch.hub cache."""
    enum = type(weights)
    package = enum.__module__.rsplit(".", 1)[0]  # torchvision.models(.detection)
    return (
        f'python -c "from {package} import {enum.__name__}; '
        f'{enum.__name__}.{weights.name}.get_state_dict(progress=True)"'
    )


def load_torchvision_state(weights: WeightsEnum, what: str) -> dict[str, Tensor]:
    """The state dict of torchvision ``weights``, from the torch.hub cache or downloaded (with progress).

    ``what`` names the setting that asked for it (e.g. ``weights=imagenet``) in error messages.
    """
    path = cached_weights_path(weights)
    try:
        return torch.hub.load_state_dict_from_url(
            weights.url, map_location="cpu", progress=True, weights_only=True
        )
    except OSError as exc:  # URLError, HTTPError, timeouts, disk errors
        raise FashionsegError(
            f"{what} needs torchvision's {type(weights).__name__}.{weights.name} file {path}, which is not "
            f"there and could not be downloaded ({exc}). On a machine with internet run\n"
            f"    {download_command(weights)}\n"
            f"then copy ~/.cache/torch/hub/checkpoints/{path.name} into {path.parent}/ here (set TORCH_HOME "
            "to choose another cache folder), or train with weights=none."
        ) from None
    except (RuntimeError, pickle.UnpicklingError, EOFError) as exc:
        raise FashionsegError(
            f"{what}: cannot read {path} ({exc}); the file is damaged. Delete it and download it again:\n"
            f"    {download_command(weights)}"
        ) from None


def load_checkpoint_state(path: str | Path) -> dict[str, Tensor]:
    """The model state dict of a fashionseg ``model_final.pt`` or training checkpoint (key ``model``)."""
    if not Path(path).is_file():
        raise FashionsegError(
            f"weights={path}: no such file. Use none, imagenet, coco or the path of a fashionseg "
            "model_final.pt or checkpoints/last.pt"
        )
    return checkpoint.load(path, required=("model",))["model"]


def load_matching(model: nn.Module, state: Mapping[str, Tensor], source: str) -> list[str]:
    """Load ``state`` into ``model``; returns the label-specific tensors left at their fresh initialisation.

    Label-specific predictors (:data:`LABEL_SPECIFIC`) whose shapes differ, or which ``state`` lacks
    (the attribute head of a COCO model), keep their initialisation. Anything else that is missing,
    unexpected or of another shape raises a :class:`FashionsegError` naming ``source`` and the tensors.
    """
    own = model.state_dict()
    resized = [
        k for k, v in state.items() if k.startswith(LABEL_SPECIFIC) and k in own and own[k].shape != v.shape
    ]
    kept = {k: v for k, v in state.items() if k not in resized}
    try:
        result = model.load_state_dict(kept, strict=False)
    except RuntimeError as exc:
        raise FashionsegError(
            f"{source}: the weights do not fit this model (check model.arch, model.depth and model.norm "
            f"against the run that wrote them): {exc}"
        ) from None
    missing = [k for k in result.missing_keys if not k.startswith(LABEL_SPECIFIC)]
    if missing or result.unexpected_keys:
        raise FashionsegError(
            f"{source}: the weights do not fit this model (check model.arch, model.depth and model.norm): "
            f"missing {_first(missing)}; unexpected {_first(result.unexpected_keys)}"
        )
    fresh = sorted(set(resized) | {k for k in result.missing_keys if k.startswith(LABEL_SPECIFIC)})
    if fresh:
        log.info("%s: re-initialised label-specific tensors %s", source, ", ".join(fresh))
    return fresh


def _first(keys: list[str], n: int = 5) -> str:
    more = f" and {len(keys) - n} more" if len(keys) > n else ""
    return (", ".join(keys[:n]) or "none") + more
