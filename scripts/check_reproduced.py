"""Did a study reproduce the committed results? ``.ci/run`` runs this after ``make study``.

    python scripts/check_reproduced.py REFERENCE_DIR results/demo [--tolerance 0]

REFERENCE_DIR is a copy of ``results/demo`` taken before the study ran. Exit code 1, with one line per
difference, when a logged loss, a learning-curve point or a ``metrics.json`` number differs by more than the
tolerance (default 0: training and evaluation are deterministic on one CPU kind; see the README).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fashionseg.config import ARCHITECTURES
from fashionseg.study import compare_results


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("reference", type=Path, help="the committed results (a copy taken before the study)")
    parser.add_argument("produced", type=Path, help="the results folder the study wrote")
    parser.add_argument("--tolerance", type=float, default=0.0, help="largest allowed |difference|")
    parser.add_argument("--archs", default=",".join(ARCHITECTURES), help="comma-separated backbones")
    args = parser.parse_args()
    archs = tuple(a for a in args.archs.split(",") if a)
    problems = compare_results(args.reference, args.produced, archs, args.tolerance)
    for line in problems[:50]:
        print(line)
    if problems:
        print(
            f"{len(problems)} difference(s) from the committed results in {args.produced}: a change that "
            "alters the results must commit results/ regenerated with `make study` at that commit"
        )
        return 1
    print(f"reproduced: {', '.join(archs)} match {args.reference} (tolerance {args.tolerance})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
