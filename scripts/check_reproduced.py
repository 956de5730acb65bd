"""Did a study reproduce the committed results? ``.ci/run`` runs this after ``make study``.

    python scripts/check_reproduced.py REFERENCE_DIR results/demo [--tolerance 0]

REFERENCE_DIR is a copy of ``results/demo`` taken before the study ran. When both trained on one CPU kind
(``env.json``'s ``cpu``), every logged loss, learning-curve point and ``metrics.json`` number must agree
within ``--tolerance`` (default 0: training and evaluation are deterministic there). On another CPU kind
bit-equality is not defined (see ``fashionseg.reproduction``): the script says so, and checks only the
headline metrics within ``--cross-kind-tolerance`` AP points, or fails with ``--same-kind``. Exit code 1,
with one line per difference, when the check fails.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fashionseg.config import ARCHITECTURES
from fashionseg.reproduction import (
    CROSS_KIND_TOLERANCE,
    HEADLINE_METRICS,
    compare_results,
    cpu_kind_differences,
)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("reference", type=Path, help="the committed results (a copy taken before the study)")
    parser.add_argument("produced", type=Path, help="the results folder the study wrote")
    parser.add_argument("--tolerance", type=float, default=0.0, help="largest allowed |difference|")
    parser.add_argument(
        "--cross-kind-tolerance",
        type=float,
        default=CROSS_KIND_TOLERANCE,
        help=f"largest |difference| of a headline metric across CPU kinds (default {CROSS_KIND_TOLERANCE})",
    )
    parser.add_argument(
        "--same-kind", action="store_true", help="fail when the CPU kinds differ instead of the weaker check"
    )
    parser.add_argument("--archs", default=",".join(ARCHITECTURES), help="comma-separated backbones")
    args = parser.parse_args()
    archs = tuple(a for a in args.archs.split(",") if a)
    other_kind = cpu_kind_differences(args.reference, args.produced, archs)
    if other_kind:
        for line in other_kind:
            print(line)
        print(
            "another CPU kind rounds bfloat16/float32 kernels differently, so bit-equality with the "
            "committed results is not defined here; to reproduce them exactly, run on the CPU kind above"
        )
        if args.same_kind:
            return 1
        print(
            f"checking only the headline metrics ({', '.join(HEADLINE_METRICS)}) within "
            f"{args.cross_kind_tolerance} AP points: a sanity check, not a reproduction"
        )
        tolerance = args.cross_kind_tolerance
    else:
        tolerance = args.tolerance
    headline_only = bool(other_kind)
    problems = compare_results(args.reference, args.produced, archs, tolerance, headline_only=headline_only)
    for line in problems[:50]:
        print(line)
    if problems:
        print(
            f"{len(problems)} difference(s) from the committed results in {args.produced}: a change that "
            "alters the results must commit results/ regenerated with `make study` at that commit"
        )
        return 1
    if other_kind:
        print(f"consistent (other CPU kind): {', '.join(archs)}'s headline metrics are within {tolerance}")
    else:
        print(f"reproduced: {', '.join(archs)} match {args.reference} (tolerance {tolerance})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
