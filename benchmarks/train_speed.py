"""The training step of each architecture at the demo preset on this machine's CPU: its FLOPs, its time in
float32 and in bfloat16 autocast (``solver.amp``), the GFLOP/s it reaches against the matmul peak measured
in the same run (``peak.py``), and where a step's time goes.

The step is fashionseg's own: the demo preset's dataset (``build_train_dataset``), loader
(``build_train_loader``), model (``build_model``), fused SGD (``build_optimizer``) and
``fashionseg.train._train_step``, with the model and the loss scaler handed to it behind thin wrappers that
only note the time of their calls (the forward, the backward between ``scale`` and the next scaler call, the
optimizer after it). Each (arch, precision) runs in a fresh process, so that its peak RSS is its own; the
warm-up iterations (allocator, oneDNN kernels) are left out of the medians. The FLOPs of one step (forward
and backward, in float32, ``FlopCounterMode``: matmuls and convolutions only) and the profile of a few bf16
steps are taken after the timed iterations and after the peak RSS is read. Initial weights do not change
the arithmetic, only which stages are frozen (no weight gradients there), so ``model.weights`` is ``none``
unless the preset's weight file is there or ``--weights`` says otherwise.

    python benchmarks/train_speed.py                        # the three archs, 3 warm-up + 10 timed each
    python benchmarks/train_speed.py --arch R50-FPN --iterations 20 -p solver.ims_per_batch=4
    python benchmarks/train_speed.py --json results/demo/train_speed.json   # also all numbers as JSON

It prints: the CPU (model, rounding flags, native bf16) and torch's thread count; the weights used; the
fp32 and bf16 matmul peak; a row per (arch, precision) with GFLOP per step, the median s/step, images/s,
GFLOP/s, their share of the same precision's peak, the data-loading time and the peak RSS; the bf16 speed-up;
the median split of a step into forward, backward, optimizer (clipping, fused SGD, scheduler) and the rest
(flip, loss sum, zero_grad); the top operators by self CPU time over a few bf16 steps; then
``model_forward.py``'s R50-FPN against stock torchvision (``--no-forward`` skips it).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import peak
import torch
from torch import Tensor, nn

from fashionseg.allocator import keep_freed_memory
from fashionseg.config import (
    ARCHITECTURES,
    RunConfig,
    SolverConfig,
    add_override_argument,
    load_config,
    parse_override,
    project_root,
)
from fashionseg.data.synthetic import ensure_synthetic
from fashionseg.data.transforms import RandomHorizontalFlip
from fashionseg.distributed import DistInfo
from fashionseg.models import build_model
from fashionseg.models.trunk import is_trunk, resolve_trunk_path
from fashionseg.train import (
    _train_step,
    build_optimizer,
    build_train_dataset,
    build_train_loader,
    use_deterministic_algorithms,
)

PRECISIONS = {"fp32": False, "bf16": True}  # solver.amp of each (bf16 only where the CPU has it natively)
PHASES = ("forward", "backward", "optimizer")
CPU = torch.device("cpu")


class TimedForward(nn.Module):
    """The model as ``_train_step`` calls it (its ``train_model``), noting when each call starts and ends."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.start = self.end = 0.0

    def forward(self, images: list[Tensor], targets: list[dict[str, Any]]) -> dict[str, Tensor]:
        self.start = time.perf_counter()
        losses = self.model(images, targets)
        self.end = time.perf_counter()
        return losses


class TimedScaler:
    """``_train_step``'s GradScaler, noting when ``scale`` is called (just before ``backward()``) and when
    the first call after it comes (``unscale_`` or ``step``, just after): the gap is the backward pass."""

    def __init__(self, scaler: torch.amp.GradScaler):
        self.scaler = scaler
        self.scaled = self.backward_done = 0.0

    def scale(self, loss: Tensor) -> Tensor:
        self.scaled, self.backward_done = time.perf_counter(), 0.0
        return self.scaler.scale(loss)

    def _backward_done(self) -> None:
        self.backward_done = self.backward_done or time.perf_counter()

    def unscale_(self, optimizer: torch.optim.Optimizer) -> None:
        self._backward_done()
        self.scaler.unscale_(optimizer)

    def step(self, optimizer: torch.optim.Optimizer) -> Any:
        self._backward_done()
        return self.scaler.step(optimizer)

    def update(self) -> None:
        self.scaler.update()


class Training:
    """The demo preset's training state for one arch and precision, set up as ``fashionseg.train`` does,
    stepped by its ``_train_step``."""

    def __init__(self, cfg: RunConfig):
        if cfg.data.synthetic:
            ensure_synthetic(cfg.data)
        torch.manual_seed(cfg.seed)
        if cfg.deterministic:
            use_deterministic_algorithms()
        self.cfg = cfg
        data = build_train_dataset(cfg)
        sizes = {"min_size": cfg.data.min_size, "max_size": cfg.data.max_size}
        self.model = build_model(cfg.model, data.labels, **sizes)
        self.model.train()
        self.optimizer, self.scheduler, scaler = build_optimizer(self.model, cfg.solver, CPU)
        self.forward, self.scaler = TimedForward(self.model), TimedScaler(scaler)
        self.batches: Iterator = iter(build_train_loader(data, cfg, 0, DistInfo(), CPU))
        self.flip = RandomHorizontalFlip(cfg.data.hflip_prob)
        self.iteration = 0

    def step(self, solver: SolverConfig | None = None) -> dict[str, float]:
        """One iteration (the next batch, then ``_train_step``): seconds of the data, the step and its
        phases. ``solver`` replaces the run's (the FLOP count steps in float32)."""
        tic = time.perf_counter()
        images, targets = next(self.batches)
        start = time.perf_counter()
        _train_step(
            self.forward,
            self.model,
            images,
            targets,
            self.flip,
            solver or self.cfg.solver,
            CPU,
            self.optimizer,
            self.scheduler,
            self.scaler,
            self.iteration,
        )
        end = time.perf_counter()
        self.iteration += 1
        forward, scaler = self.forward, self.scaler
        return {
            "data": start - tic,
            "step": end - start,
            "forward": forward.end - forward.start,
            "backward": scaler.backward_done - scaler.scaled,
            "optimizer": end - scaler.backward_done,
        }

    def top_operators(self, steps: int, top: int) -> list[dict[str, Any]]:
        """The ``top`` operators by self CPU time over ``steps`` steps (data loading included, as in
        training), per step, with their share of the profiled self CPU time."""
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
            for _ in range(steps):
                self.step()
        events = profile.key_averages()
        total = sum(e.self_cpu_time_total for e in events)
        ranked = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:top]
        return [
            {
                "op": e.key,
                "self_ms_per_step": e.self_cpu_time_total / 1000 / steps,
                "share": e.self_cpu_time_total / total,
                "calls_per_step": e.count / steps,
            }
            for e in ranked
        ]


def measure(arch: str, precision: str, args: argparse.Namespace) -> dict[str, Any]:
    """Time ``args.iterations`` steps of ``arch`` after ``args.warmup``; then, when asked, profile bf16
    steps and count the FLOPs of one float32 step. Medians in seconds."""
    keep_freed_memory()  # as fashionseg.train.train does
    values = dict(map(parse_override, args.overrides))
    values.update({"model.arch": arch, "solver.amp": PRECISIONS[precision], "device": "cpu"})
    cfg = load_config("demo", values)
    training = Training(cfg)
    for _ in range(args.warmup):
        training.step()
    timings = [training.step() for _ in range(args.iterations)]
    medians = {key: statistics.median(t[key] for t in timings) for key in timings[0]}
    record: dict[str, Any] = {
        "arch": arch,
        "precision": precision,
        "dtype": peak.precision_name(cfg.solver.amp),
        "weights": cfg.model.weights,
        "batch": cfg.solver.ims_per_batch,
        "image_size": f"{cfg.data.min_size}-{cfg.data.max_size}",
        "threads": torch.get_num_threads(),
        "warmup": args.warmup,
        "iterations": args.iterations,
        "median_seconds": medians,
        "step_seconds": [t["step"] for t in timings],
        # read before the profile and the FLOP count, which are not training
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    if args.profile_steps and cfg.solver.amp:
        record["profile_steps"] = args.profile_steps
        record["top_operators"] = training.top_operators(args.profile_steps, args.top)
    if args.count_flops:
        fp32 = dataclasses.replace(cfg.solver, amp=False)
        record["flops"] = peak.count_flops(lambda: training.step(fp32))
    return record


def default_weights(preset_weights: str) -> tuple[str, str]:
    """The weights to build with unless ``--weights`` says: the preset's when they name a file that is
    there (the shipped trunk, a path), else ``none``; and why, in words."""
    if preset_weights == "none":
        return "none", "the preset's"
    path = resolve_trunk_path(preset_weights) if is_trunk(preset_weights) else Path(preset_weights)
    root = project_root()
    shown = path.resolve().relative_to(root) if path.resolve().is_relative_to(root) else path
    if path.is_file():
        return preset_weights, f"the preset's, {shown}"
    return "none", f"the preset's {preset_weights} is not a file here ({shown})"


def run_arch(arch: str, precision: str, count_flops: bool, args: argparse.Namespace) -> dict[str, Any]:
    """:func:`measure` in a fresh process (its own peak RSS, no state from the other runs)."""
    command = [sys.executable, __file__, "--one", arch, "--precision", precision]
    command += ["--iterations", str(args.iterations), "--warmup", str(args.warmup)]
    command += ["--profile-steps", str(args.profile_steps), "--top", str(args.top)]
    command += [f"-p={o}" for o in args.overrides] + ["--count-flops"] * count_flops
    # kineto's level 5 keeps the profiler from logging a GPU-count error on CPU-only machines
    env = {"KINETO_LOG_LEVEL": "5", **os.environ}
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True, env=env)
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line.removeprefix("RESULT "))


def add_rates(record: dict[str, Any], flops: int, peaks: dict[str, float]) -> None:
    """GFLOP per step, images/s, GFLOP/s and the share of the peak of the dtype the step ran in."""
    seconds = record["median_seconds"]["step"]
    record["gflop_per_step"] = flops / 1e9
    record["images_per_second"] = record["batch"] / seconds
    record["gflops"] = flops / 1e9 / seconds
    record["share_of_peak"] = record["gflops"] / peaks[record["dtype"]]


def print_results(results: list[dict[str, Any]], args: argparse.Namespace) -> None:
    """The tables: rates, the bf16 speed-up, the phases of a step and the top operators."""
    first = results[0]
    print(
        f"\ntraining step at the demo preset, batch {first['batch']}, {first['image_size']} px, median of "
        f"{args.iterations} iterations after {args.warmup} warm-up; GFLOP counted in fp32 (matmuls and "
        "convolutions, forward + backward); share: of the peak of the dtype the step ran in"
    )
    header = ("GFLOP/step", "s/step", "images/s", "GFLOP/s", "of peak", "data s", "RSS MiB")
    print("{:8} {:10} {:>10} {:>7} {:>8} {:>8} {:>7} {:>7} {:>8}".format("arch", "precision", *header))
    for r in results:
        label = r["precision"] if r["precision"] == r["dtype"] else f"{r['precision']}>{r['dtype']}"
        print(
            f"{r['arch']:8} {label:10} {r['gflop_per_step']:10.1f} {r['median_seconds']['step']:7.3f} "
            f"{r['images_per_second']:8.2f} {r['gflops']:8.1f} {r['share_of_peak']:7.1%} "
            f"{r['median_seconds']['data']:7.3f} {r['peak_rss_mib']:8.0f}"
        )
    by_key = {(r["arch"], r["precision"]): r for r in results}
    for arch in args.arch:
        if (arch, "fp32") in by_key and (arch, "bf16") in by_key:
            fp32, bf16 = (by_key[arch, p]["median_seconds"]["step"] for p in ("fp32", "bf16"))
            print(f"{arch}: bf16 step {fp32 / bf16:.2f}x the fp32 step")
    print("goal (issue 12): R50-FPN's bf16 training step at least 2x its fp32 step")

    print("\nwhere a step goes (median seconds of each phase; other: flip, loss sum, zero_grad)")
    print("{:8} {:10} {:>8} {:>8} {:>9} {:>7} {:>7}".format("arch", "precision", *PHASES, "other", "step"))
    for r in results:
        m = r["median_seconds"]
        other = m["step"] - sum(m[p] for p in PHASES)
        print(
            f"{r['arch']:8} {r['precision']:10} {m['forward']:8.3f} {m['backward']:8.3f} "
            f"{m['optimizer']:9.3f} {other:7.3f} {m['step']:7.3f}"
        )

    for r in results:
        if "top_operators" not in r:
            continue
        steps = r["profile_steps"]
        print(f"\n{r['arch']}: top {args.top} operators by self CPU time over {steps} bf16 steps")
        print(f"{'operator':44} {'self ms/step':>12} {'share':>6} {'calls/step':>10}")
        for op in r["top_operators"]:
            print(
                f"{op['op'][:44]:44} {op['self_ms_per_step']:12.1f} {op['share']:6.1%} "
                f"{op['calls_per_step']:10.1f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--arch", nargs="+", default=list(ARCHITECTURES), choices=ARCHITECTURES)
    parser.add_argument("--iterations", type=int, default=10, help="timed iterations per arch and precision")
    parser.add_argument("--warmup", type=int, default=3, help="untimed iterations before them")
    add_override_argument(parser)
    parser.add_argument("--precision", choices=["both", *PRECISIONS], default="both")
    parser.add_argument(
        "--weights",
        help="model.weights to build with (default: the preset's if its file is there, else none)",
    )
    parser.add_argument("--profile-steps", type=int, default=3, help="bf16 steps profiled (0: none)")
    parser.add_argument("--top", type=int, default=12, help="operators listed from the profile")
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write every number to this file")
    parser.add_argument("--no-forward", action="store_true", help="skip the stock-torchvision comparison")
    peak.add_arguments(parser)
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure one arch, print JSON
    parser.add_argument("--count-flops", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.iterations < 1:
        parser.error("--iterations must be at least 1")

    if args.one:
        print("RESULT " + json.dumps(measure(args.one, args.precision, args)))
        return

    preset_weights = load_config("demo", args.overrides).model.weights
    weights, why = (args.weights, "--weights") if args.weights else default_weights(preset_weights)
    args.overrides = [*args.overrides, f"model.weights={weights}"]
    machine = peak.machine()
    print(peak.machine_text(machine))
    print(f"weights: {weights} ({why}; weights change no arithmetic, only which stages are frozen)")
    peaks = peak.measure_peak(args)
    print(peak.peak_text(peaks), flush=True)

    results = []
    precisions = [p for p in PRECISIONS if args.precision in (p, "both")]
    for arch in args.arch:
        runs = [run_arch(arch, p, p == precisions[0], args) for p in precisions]
        for record in runs:
            add_rates(record, runs[0]["flops"], peaks["gflops"])
        results += runs
    print_results(results, args)

    if args.json:
        record = {
            "machine": machine,
            "peak": peaks,
            "weights": weights,
            "weights_reason": why,
            "date": time.strftime("%Y-%m-%d"),
            "results": results,
        }
        args.json.write_text(json.dumps(record, indent=1) + "\n")
        print(f"written: {args.json}")

    if not args.no_forward and "R50-FPN" in args.arch:
        forward = Path(__file__).with_name("model_forward.py")
        subprocess.run([sys.executable, str(forward), "--arch", "R50-FPN"], check=True)


if __name__ == "__main__":
    main()
