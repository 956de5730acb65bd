"""The pretrained ResNet trunk: the embedded study's own "ImageNet" weights, saved once and shipped.

detectron2's R50-FPN, C4 and DC5 configs (and so the seed study) fine-tune an ImageNet-pretrained ResNet-50.
ImageNet weights cannot be fetched here, and a synthetic study needs features of its own domain anyway, so
``fashionseg pretrain`` trains a detector on a separate synthetic split and keeps its ResNet: the stem and
res2..res5, no FPN or head weights. This module owns that file: where it lives, how it is written (a
safetensors file plus a JSON manifest with its SHA-256), and how any of the three designs loads it
(``model.weights=trunk``): R50-C4 takes res5 into its box head, R50-DC5 dilates the pretrained res5.

The file holds float16 tensors: the float32 trunk is 94 MB and the repository keeps every version of it;
float16 keeps 11 significant bits, far finer than the fine-tune's first SGD step moves the weights.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from fashionseg.config import project_root
from fashionseg.errors import FashionsegError

# the value of model.weights that names the shipped trunk, and the file it names (relative to the project)
TRUNK_NAME = "trunk"
TRUNK_FILE = Path("weights") / "r50-gn-trunk.safetensors"
# make pretrain's first stage (preset pretrain), which the shipped trunk continues (preset pretrain_joint)
FIRST_STAGE_FILE = Path("weights") / "r50-gn-fpn-trunk.safetensors"
STORAGE_DTYPE = torch.float16
# a ResNet's stages in torchvision's attribute names; "fc" (ImageNet's classifier) is not part of a trunk
TRUNK_PREFIXES = ("conv1.", "bn1.", "layer1.", "layer2.", "layer3.", "layer4.")
# where each architecture keeps those stages in the full detector's state dict (R50-C4's res5 is its box head)
_STAGE_LOCATIONS: dict[str, dict[str, str]] = {
    "R50-FPN": {"backbone.body.": ""},
    "R50-C4": {"backbone.body.": "", "roi_heads.box_head.": "layer4."},
    "R50-DC5": {"backbone.body.": ""},
}
REMAKE = "make pretrain (fashionseg pretrain)"


class TrunkError(FashionsegError):
    """The trunk file is missing, damaged, does not match its manifest, or does not fit the model."""


def resolve_trunk_path(weights: str) -> Path:
    """The trunk file that ``model.weights`` names: the shipped one for ``trunk``, else the path given."""
    if weights == TRUNK_NAME:
        return project_root() / TRUNK_FILE
    return Path(weights)


def is_trunk(weights: str) -> bool:
    """Whether ``model.weights`` names a trunk file (``trunk`` or a ``.safetensors`` path)."""
    return weights == TRUNK_NAME or weights.endswith(".safetensors")


def manifest_path(trunk_path: str | Path) -> Path:
    """The manifest beside a trunk file: ``r50-gn-trunk.safetensors`` -> ``r50-gn-trunk.json``."""
    return Path(trunk_path).with_suffix(".json")


def _stage_locations(arch: str) -> dict[str, str]:
    locations = _STAGE_LOCATIONS.get(arch)
    if locations is None:
        raise TrunkError(f"no trunk layout for architecture {arch!r}; valid: {', '.join(_STAGE_LOCATIONS)}")
    return locations


def torchvision_name(arch: str, key: str) -> str | None:
    """The torchvision ResNet name of a detector's state-dict ``key`` (None: not part of the ResNet)."""
    for prefix, renamed in _stage_locations(arch).items():
        if key.startswith(prefix):
            return renamed + key[len(prefix) :]
    return None


def trunk_state(model_state: Mapping[str, Tensor], arch: str) -> dict[str, Tensor]:
    """The ResNet of a detector's state dict (stem to res5) under torchvision's ResNet names, no heads."""
    state: dict[str, Tensor] = {}
    _stage_locations(arch)
    for key, value in model_state.items():
        name = torchvision_name(arch, key)
        if name is not None:
            state[name] = value.detach()
    missing = [p for p in TRUNK_PREFIXES if not any(k.startswith(p) for k in state)]
    if missing:
        raise TrunkError(f"the {arch} model has no {', '.join(missing)} weights to export as a trunk")
    return state


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_trunk(state: Mapping[str, Tensor], path: str | Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """Write ``state`` as float16 safetensors at ``path`` and ``manifest`` (plus the file's SHA-256, size,
    dtype and tensor count) beside it; return the manifest as written. Both files appear whole or not at
    all: each is written to a temporary name and renamed, the manifest last."""
    from safetensors.torch import save_file

    from fashionseg.checkpoint import write_text_atomic

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    stored = {}
    for key, value in state.items():
        if value.is_floating_point():
            value = value.float()
            if not torch.isfinite(value).all() or value.abs().max() >= torch.finfo(STORAGE_DTYPE).max:
                raise TrunkError(f"trunk tensor {key} has values that float16 cannot hold")
            value = value.to(STORAGE_DTYPE)
        stored[key] = value.contiguous().cpu()
    tmp = path.with_name(f".{path.name}.tmp")
    # one metadata key: safetensors writes a map's keys in no fixed order, and the file's bytes must be a
    # function of the weights (the manifest's SHA-256; a resumed pretraining rewrites the same file)
    save_file(stored, str(tmp), metadata={"format": "pt"})
    tmp.replace(path)
    written = {
        **manifest,
        "file": path.name,
        "sha256": sha256_file(path),
        "bytes": path.stat().st_size,
        "dtype": str(STORAGE_DTYPE).removeprefix("torch."),
        "tensors": len(stored),
    }
    write_text_atomic(manifest_path(path), json.dumps(written, indent=1) + "\n")
    return written


def read_manifest(trunk_path: str | Path) -> dict[str, Any]:
    """The manifest of a trunk file; missing or unreadable: a :class:`TrunkError` saying what to do."""
    path = manifest_path(trunk_path)
    if not path.is_file():
        raise TrunkError(
            f"trunk manifest {path} is missing (it records the trunk's SHA-256 and recipe). Remake both "
            f"files with `{REMAKE}`, or restore them from the repository (git checkout -- {path.parent})"
        )
    try:
        manifest = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise TrunkError(
            f"trunk manifest {path} is not readable JSON ({exc}); remake it with `{REMAKE}`"
        ) from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("sha256"), str):
        raise TrunkError(f"trunk manifest {path} has no 'sha256' field; remake it with `{REMAKE}`")
    return manifest


def load_trunk(weights: str, depth: int, norm: str) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """The trunk named by ``model.weights`` (float32) and its manifest, checked.

    Checks, each with an error naming the file, the manifest and ``make pretrain``: the file exists, its
    SHA-256 equals the manifest's, and the manifest's depth and normalisation equal the model's (a GroupNorm
    trunk cannot fill a BatchNorm ResNet).
    """
    path = resolve_trunk_path(weights)
    if not path.is_file():
        raise TrunkError(
            f"model.weights={weights}: trunk file {path} does not exist. Make it with `{REMAKE}` "
            f"(about two hours on two CPU cores), restore it with `git checkout -- {TRUNK_FILE}`, or train "
            "from scratch with -p model.weights=none (the scratch preset)"
        )
    manifest = read_manifest(path)
    actual = sha256_file(path)
    if actual != manifest["sha256"]:
        raise TrunkError(
            f"trunk file {path} is corrupt or not the one its manifest {manifest_path(path)} describes: "
            f"SHA-256 {actual[:16]}... against {manifest['sha256'][:16]}...; restore both with "
            f"`git checkout -- {path.parent}` or remake them with `{REMAKE}`"
        )
    want = {"depth": depth, "norm": norm}
    have = {"depth": manifest.get("depth"), "norm": manifest.get("norm")}
    if have != want:
        raise TrunkError(
            f"trunk {path} was pretrained as a ResNet with depth {have['depth']} and norm {have['norm']} "
            f"(manifest {manifest_path(path)}), but this model asks for model.depth={depth}, "
            f"model.norm={norm}; set those to the trunk's, or pretrain a matching trunk with `{REMAKE}` "
            "and -p model.depth/model.norm"
        )
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        state = load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise TrunkError(f"cannot read trunk {path} ({exc}); remake it with `{REMAKE}`") from None
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}, manifest


def load_into_resnet(resnet: nn.Module, state: Mapping[str, Tensor], source: str) -> None:
    """Copy a trunk into a torchvision ResNet (all of stem..res5; ``fc`` stays as it is, unused)."""
    try:
        result = resnet.load_state_dict(dict(state), strict=False)
    except RuntimeError as exc:
        raise TrunkError(f"{source}: the trunk does not fit this ResNet: {exc}") from None
    missing = [k for k in result.missing_keys if not k.startswith("fc.")]
    if missing or result.unexpected_keys:
        raise TrunkError(
            f"{source}: the trunk does not fit this ResNet: missing {missing[:5]}, "
            f"unexpected {result.unexpected_keys[:5]}; remake it with `{REMAKE}`"
        )
