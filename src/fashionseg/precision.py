"""Mixed precision: which autocast dtype a device gets for ``solver.amp``.

On CUDA, float16 with loss scaling (detectron2's AMP). On a CPU with native bfloat16 arithmetic (Intel AMX
or AVX-512 BF16, as oneDNN reports it), bfloat16: the convolutions run about 1.5x faster and, with bf16's
float32 exponent range, need no loss scaling. Elsewhere float32, said once in the log.
"""

from __future__ import annotations

import functools
import platform
from pathlib import Path
from typing import Any

import torch

# The CPU features that decide how a float32 or bfloat16 result rounds: oneDNN and MKL pick their kernels
# (and so their summation orders) by these.
ROUNDING_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")


@functools.cache
def cpu_has_bf16() -> bool:
    """Whether oneDNN runs bfloat16 natively on this CPU (emulated bf16 would be slower than fp32)."""
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def cpu_kind(cpuinfo: Path = Path("/proc/cpuinfo")) -> dict[str, Any]:
    """The CPU kind a run's numbers belong to (written into ``env.json`` as ``cpu``).

    Training is bit-for-bit repeatable on one kind, but not across kinds: an AMX CPU and an AVX-512 BF16
    one run different oneDNN kernels, whose roundings differ from the first step and grow over a run.
    """
    model, flags = "", set()
    try:
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and not model:
                model = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
    except OSError:
        pass
    return {
        "model": model or platform.processor(),
        "capability": torch.backends.cpu.get_cpu_capability(),
        "native_bf16": cpu_has_bf16(),
        "flags": [f for f in ROUNDING_FLAGS if f in flags],
    }


def autocast_dtype(device: torch.device, amp: bool) -> torch.dtype | None:
    """The dtype ``torch.autocast`` runs at on ``device`` for ``solver.amp=amp``; None for plain float32."""
    if not amp:
        return None
    if device.type == "cuda":
        return torch.float16
    if device.type == "cpu" and cpu_has_bf16():
        return torch.bfloat16
    return None


def describe(device: torch.device, amp: bool) -> str:
    """One log line saying which precision a run uses, and why when amp was asked for but is off."""
    dtype = autocast_dtype(device, amp)
    if dtype is not None:
        return f"precision: {str(dtype).removeprefix('torch.')} autocast on {device.type} (solver.amp=true)"
    if amp:
        return (
            f"precision: float32 on {device.type}: this {device.type} has no native bfloat16 "
            "(solver.amp=true is ignored here)"
        )
    return "precision: float32 (solver.amp=false)"


def autocast(device: torch.device, amp: bool) -> torch.autocast:
    """``torch.autocast`` for ``device``, enabled only where :func:`autocast_dtype` names a dtype."""
    dtype = autocast_dtype(device, amp)
    return torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)
