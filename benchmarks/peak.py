"""What the speed benchmarks compare a model's GFLOP/s with: this machine's matmul peak, measured in the
same run, and the CPU it ran on. Imported by ``train_speed.py`` and ``inference_speed.py``.

The peak is ``torch.mm`` of two 2048 x 2048 matrices in float32 and in bfloat16, at the thread count the
models run with, the median of several calls after a warm-up: 2 * 2048^3 floating-point operations over the
median time. It is what oneDNN/MKL reach on the densest kernel there is, so a model's share of it says how
much of the machine its convolutions and matmuls use. A model's FLOPs come from
``torch.utils.flop_counter.FlopCounterMode``, which counts matmuls and convolutions (forward and backward),
not elementwise ops, normalisation, RoIAlign or NMS: the share is that of the dense work only.

    python benchmarks/peak.py                  # the CPU line and the peak, alone
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from fashionseg.precision import autocast_dtype, cpu_kind

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The peak's options, the same in every benchmark that reports a share of it."""
    parser.add_argument("--peak-size", type=int, default=2048, help="matmul side for the peak (N x N)")
    parser.add_argument("--peak-reps", type=int, default=10, help="timed matmuls per dtype (median)")
    parser.add_argument("--peak-warmup", type=int, default=3, help="untimed matmuls before them")


def machine() -> dict[str, Any]:
    """The CPU kind (model, capability, rounding flags, native bf16) and torch's threads and version."""
    return {"cpu": cpu_kind(), "threads": torch.get_num_threads(), "torch": torch.__version__}


def machine_text(record: dict[str, Any]) -> str:
    """One line for the top of a benchmark's output, from :func:`machine`."""
    cpu = record["cpu"]
    flags = " ".join(cpu["flags"]) or "none of the rounding flags"
    native = "yes" if cpu["native_bf16"] else "no (bf16 autocast is off: the bf16 rows run in fp32)"
    return (
        f"CPU: {cpu['model']}; capability {cpu['capability']}; flags {flags}; native bf16: {native}; "
        f"{record['threads']} torch threads; torch {record['torch']}"
    )


def matmul_gflops(dtype: torch.dtype, size: int, reps: int, warmup: int) -> float:
    """GFLOP/s of ``torch.mm`` on two ``size`` x ``size`` matrices of ``dtype``: the median of ``reps`` calls
    after ``warmup`` (oneDNN picks and caches its kernel on the first)."""
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=generator).to(dtype)
    b = torch.randn(size, size, generator=generator).to(dtype)
    for _ in range(warmup):
        torch.mm(a, b)
    seconds = []
    for _ in range(reps):
        tic = time.perf_counter()
        torch.mm(a, b)
        seconds.append(time.perf_counter() - tic)
    return 2 * size**3 / statistics.median(seconds) / 1e9


def measure_peak(args: argparse.Namespace) -> dict[str, Any]:
    """The fp32 and bf16 matmul peaks with how they were measured (options of :func:`add_arguments`)."""
    gflops = {
        name: matmul_gflops(dtype, args.peak_size, args.peak_reps, args.peak_warmup)
        for name, dtype in DTYPES.items()
    }
    return {
        "method": f"torch.mm {args.peak_size}x{args.peak_size}",
        "reps": args.peak_reps,
        "warmup": args.peak_warmup,
        "threads": torch.get_num_threads(),
        "gflops": gflops,
    }


def peak_text(peak: dict[str, Any]) -> str:
    """One line: the peak of each dtype and how it was measured."""
    values = ", ".join(f"{name} {value:.1f} GFLOP/s" for name, value in peak["gflops"].items())
    return (
        f"peak ({peak['method']}, median of {peak['reps']} after {peak['warmup']} warm-up, "
        f"{peak['threads']} threads): {values}"
    )


def precision_name(amp: bool) -> str:
    """The dtype a CPU run with ``solver.amp=amp`` computes in (bf16 only where the CPU has it natively):
    the key of the peak its GFLOP/s are compared with."""
    return "bf16" if autocast_dtype(torch.device("cpu"), amp) == torch.bfloat16 else "fp32"


def count_flops(run: Callable[[], object]) -> int:
    """FLOPs of the matmuls and convolutions (forward and backward) that ``run()`` executes."""
    with FlopCounterMode(display=False) as counter:
        run()
    return counter.get_total_flops()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_arguments(parser)
    args = parser.parse_args()
    print(machine_text(machine()))
    print(peak_text(measure_peak(args)))


if __name__ == "__main__":
    main()
