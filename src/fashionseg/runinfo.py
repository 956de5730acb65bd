"""Run bookkeeping: what ran a training run (written as its ``env.json``)."""

from __future__ import annotations

import platform
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fashionseg import precision
from fashionseg.config import RunConfig


def environment(device: torch.device, cfg: RunConfig, world_size: int, training_code: str) -> dict[str, Any]:
    """What ran this: versions, device, CPU kind, seed, host, commit and ``training_code`` (the hash of the
    code that decides the results, :func:`fashionseg.train.training_code_hash`)."""
    import torchvision

    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=Path(__file__).parent
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "host": socket.gethostname(),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor(),
        "cpu": precision.cpu_kind(),
        "cpu_threads": torch.get_num_threads(),
        "world_size": world_size,
        "seed": cfg.seed,
        "git_commit": commit or None,
        "training_code": training_code,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
