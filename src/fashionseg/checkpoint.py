"""Checkpoints: written atomically, read back with ``weights_only=True``.

A training checkpoint (``checkpoints/last.pt``) holds everything needed to continue a run exactly: model,
optimizer, scheduler, AMP scaler, the next iteration, and every random-number state the loop draws from.
The final model (``model_final.pt``) holds the weights, the label space and the run configuration, which
is all that prediction needs.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from fashionseg.errors import FashionsegError


class CheckpointError(FashionsegError):
    """A checkpoint file is missing, unreadable or lacks a required entry."""


def save_atomic(obj: dict[str, Any], path: str | Path) -> None:
    """``torch.save`` to a temporary file in the same folder, then rename: never half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write a text file through a temporary file and a rename, so readers never see half of it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load(path: str | Path, required: tuple[str, ...] = ("model",)) -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True`` (no arbitrary code) and check its entries."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is reported the same way
        raise CheckpointError(
            f"cannot read checkpoint {path}: {exc}. It must be a file written by fashionseg (or a plain "
            "state dict); files that need arbitrary code to load are refused."
        ) from None
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"checkpoint {path} holds a {type(ckpt).__name__}, expected a dict")
    missing = [k for k in required if k not in ckpt]
    if missing:
        raise CheckpointError(
            f"checkpoint {path} lacks {', '.join(missing)}; found {', '.join(sorted(ckpt))}"
        )
    return ckpt


def rng_state() -> dict[str, Any]:
    """The random-number states the training loop draws from (torch's: the loop uses no other)."""
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
