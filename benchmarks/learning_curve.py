"""Validation AP along one training run: how far the demo preset's schedule is from a trained model.

Trains one arch on the demo preset (or ``--preset``) up to the last of ``--at`` iterations with the preset's
schedule stretched to that length (its LR steps scaled by the same factor), stopping at each point of
``--at`` to evaluate on the val split, then resuming. Resuming is exact (tested), so every point is the state
of one uninterrupted run. Prints box/mask AP, AP50 and the mask AP per category at each point.

    python benchmarks/learning_curve.py                          # R50-FPN at 150, 300 and 450 iterations
    python benchmarks/learning_curve.py --arch R50-C4 --at 100 200 -p data.min_size=160
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from fashionseg.config import ARCHITECTURES, add_override_argument, load_config, parse_override
from fashionseg.evaluation.runs import evaluate_run
from fashionseg.train import train


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--arch", default="R50-FPN", choices=ARCHITECTURES)
    parser.add_argument("--preset", default="demo")
    parser.add_argument("--at", type=int, nargs="+", default=[150, 300, 450], help="iterations to evaluate")
    parser.add_argument("--output-dir", type=Path, help="keep the run here (default: a temporary folder)")
    add_override_argument(parser)
    args = parser.parse_args()
    points = sorted(set(args.at))

    preset = load_config(args.preset, {"model.arch": args.arch})
    scale = points[-1] / preset.solver.max_iter
    steps = [round(step * scale) for step in preset.solver.steps]
    with tempfile.TemporaryDirectory(prefix="learning_curve_") as tmp:
        output_dir = args.output_dir or Path(tmp)
        rows = []
        for point in points:
            values = {
                "model.arch": args.arch,
                "name": args.arch,
                "output_dir": str(output_dir),
                "solver.max_iter": point,
                "solver.steps": steps,
                **dict(map(parse_override, args.overrides)),
            }
            cfg = load_config(args.preset, values)
            tic = time.perf_counter()
            run_dir = train(cfg, resume=True)
            seconds = time.perf_counter() - tic
            metrics = evaluate_run(run_dir, show_progress=False)
            (run_dir / f"metrics_{point}.json").write_text(json.dumps(metrics, indent=1))
            per_category = {
                name: round(v["segm_AP"], 1)
                for name, v in metrics["per_category"].items()
                if v.get("segm_AP") is not None
            }
            rows.append((point, seconds, metrics["bbox"]["coco"], metrics["segm"]["coco"], per_category))
            print(f"iteration {point}: mask AP {metrics['segm']['coco']['AP']:.1f}", flush=True)

    print(f"\n{args.arch}, preset {args.preset} stretched to {points[-1]} iterations (LR steps at {steps})")
    print(f"{'iteration':>9} {'train s':>8} {'box AP':>7} {'box AP50':>9} {'mask AP':>8} {'mask AP50':>10}")
    for point, seconds, box, mask, _ in rows:
        print(
            f"{point:9d} {seconds:8.0f} {box['AP']:7.1f} {box['AP50']:9.1f} {mask['AP']:8.1f} "
            f"{mask['AP50']:10.1f}"
        )
    print("\nmask AP per category at the last point:", rows[-1][4])


if __name__ == "__main__":
    main()
