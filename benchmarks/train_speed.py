"""Training speed and memory of each architecture at the demo preset on this machine's CPU, in float32 and
in bfloat16 autocast (``solver.amp``) side by side.

Each (arch, precision) trains for a few iterations of the demo preset (synthetic data, its batch size,
image size and normalisation) in a fresh process, so that the peak RSS printed is that run's alone. The
first iterations (allocator and oneDNN warm-up) are left out of the mean. Then ``model_forward.py`` times
R50-FPN's forward pass next to torchvision's stock ``maskrcnn_resnet50_fpn`` on the same input in the same
process (goal: the attribute head and our RoI-head code add at most 10%).

    python benchmarks/train_speed.py                       # the three archs, 12 iterations each
    python benchmarks/train_speed.py --arch R50-FPN --iterations 20 -p solver.ims_per_batch=4
    python benchmarks/train_speed.py --precision bf16      # one precision only
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

from fashionseg.config import ARCHITECTURES, add_override_argument, load_config, parse_override

WARMUP_ITERATIONS = 2
PRECISIONS = {"fp32": "false", "bf16": "true"}  # the solver.amp value of each (bf16 where the CPU has it)


def one_arch(arch: str, iterations: int, overrides: list[str], output_dir: str) -> dict[str, float]:
    """Train ``arch`` for ``iterations`` at the demo preset; s/iteration, peak RSS (this process)."""
    from fashionseg.train import train  # imported here: the parent process stays small

    values = dict(map(parse_override, overrides))
    values.update(
        {
            "model.arch": arch,
            "name": arch,
            "output_dir": output_dir,
            "solver.max_iter": iterations,
            "solver.checkpoint_period": 10**9,  # the final save only: time the loop, not the disk
        }
    )
    cfg = load_config("demo", values)
    run_dir = train(cfg, show_progress=True)
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    # metrics.jsonl logs every iteration at this length: drop the warm-up ones
    timed = [r["time"] for r in records if r["iteration"] > WARMUP_ITERATIONS]
    seconds = sum(timed) / len(timed)
    return {
        "seconds_per_iteration": seconds,
        "images_per_second": cfg.solver.ims_per_batch / seconds,
        "batch": cfg.solver.ims_per_batch,
        "image_size": f"{cfg.data.min_size}-{cfg.data.max_size}",
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--arch", nargs="+", default=list(ARCHITECTURES), choices=ARCHITECTURES)
    parser.add_argument("--iterations", type=int, default=12, help="training iterations per arch")
    add_override_argument(parser)
    parser.add_argument("--precision", choices=["both", *PRECISIONS], default="both")
    parser.add_argument("--no-forward", action="store_true", help="skip the stock-torchvision comparison")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one arch, print JSON
    parser.add_argument("--output-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.iterations <= WARMUP_ITERATIONS:
        parser.error(f"--iterations must be more than the {WARMUP_ITERATIONS} warm-up iterations")

    if args.one:
        print("RESULT " + json.dumps(one_arch(args.one, args.iterations, args.overrides, args.output_dir)))
        return

    results = {}
    precisions = [p for p in PRECISIONS if args.precision in (p, "both")]
    with tempfile.TemporaryDirectory(prefix="train_speed_") as tmp:
        for arch in args.arch:
            for name in precisions:
                command = [sys.executable, __file__, "--one", arch, "--iterations", str(args.iterations)]
                command += ["--output-dir", f"{tmp}/{name}", f"-p=solver.amp={PRECISIONS[name]}"]
                command += [f"-p={o}" for o in args.overrides]
                done = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=True)
                line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
                results[arch, name] = json.loads(line.removeprefix("RESULT "))

    print(f"\ntraining at the demo preset, mean of iterations {WARMUP_ITERATIONS + 1}-{args.iterations}")
    header = ("arch", "precision", "batch", "size", "s/iter", "images/s", "peak RSS MiB")
    print("{:8} {:9} {:>5} {:>8} {:>7} {:>9} {:>13}".format(*header))
    for (arch, name), r in results.items():
        print(
            f"{arch:8} {name:9} {r['batch']:5d} {r['image_size']:>8} {r['seconds_per_iteration']:7.2f} "
            f"{r['images_per_second']:9.2f} {r['peak_rss_mib']:13.0f}"
        )
    for arch in args.arch:
        if (arch, "fp32") in results and (arch, "bf16") in results:
            speedup = (
                results[arch, "fp32"]["seconds_per_iteration"]
                / results[arch, "bf16"]["seconds_per_iteration"]
            )
            print(f"{arch}: bf16 step {speedup:.2f}x the fp32 step")
    print("goal (issue 12): R50-FPN's bf16 training step at least 2x its fp32 step")

    if not args.no_forward and "R50-FPN" in args.arch:
        forward = Path(__file__).with_name("model_forward.py")
        subprocess.run([sys.executable, str(forward), "--arch", "R50-FPN"], check=True)


if __name__ == "__main__":
    main()
