"""Did a study reproduce committed results? The comparison ``scripts/check_reproduced.py`` (and CI) runs.

Training and evaluation are deterministic on one CPU kind: there every logged loss, learning-curve point and
``metrics.json`` number must be equal. Across CPU kinds (``env.json``'s ``cpu``: an AMX CPU against an
AVX-512 BF16 one, say) oneDNN runs other kernels that round differently from the first step, and 300
iterations from scratch grow that into what amounts to another run. There bit-equality is not defined, and
the honest check is weaker: the headline metrics (Table I's box and mask AP, AP50, AP75) within a stated
tolerance, which catches a study that broke but is not a reproduction, and is reported as such.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fashionseg.config import ARCHITECTURES
from fashionseg.rundir import CURVE_FILE, LOG_FILE, METRICS_FILE, RunDir

# keys of the run files that measure the machine, not the result: left out of reproduction checks
TIMING_KEYS = frozenset({"time", "train_seconds", "eval_seconds", "speed"})

# Table I's numbers: what is compared across CPU kinds
HEADLINE_METRICS = tuple(f"{t}.coco.{k}" for t in ("bbox", "segm") for k in ("AP", "AP50", "AP75"))

# The largest |difference| in AP points allowed for a headline metric across CPU kinds. Measured: the same
# commit's demo study on an AMX CPU and on an AVX-512 BF16 one differed by up to 2.4 points (R50-C4 box
# AP50 4.3 against 6.7). A study that stopped learning still fails: R50-FPN's AP50 (about 17) would drop by
# more than this.
CROSS_KIND_TOLERANCE = 5.0


def _numbers(tree: Any, prefix: str = "") -> dict[str, float]:
    """Every number in a JSON tree by its dotted path, timing keys left out."""
    if isinstance(tree, dict):
        out: dict[str, float] = {}
        for k, v in tree.items():
            if k not in TIMING_KEYS:
                out.update(_numbers(v, f"{prefix}{k}."))
        return out
    if isinstance(tree, list):
        out = {}
        for i, v in enumerate(tree):
            out.update(_numbers(v, f"{prefix}{i}."))
        return out
    if isinstance(tree, bool) or not isinstance(tree, int | float):
        return {}
    return {prefix.rstrip("."): float(tree)}


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def _read_json_lines(path: Path) -> list[Any]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# the run files compared, each with its reader
RUN_FILES: dict[str, Callable[[Path], Any]] = {
    METRICS_FILE: _read_json,
    LOG_FILE: _read_json_lines,
    CURVE_FILE: _read_json_lines,
}


def compare_results(
    reference: Path,
    produced: Path,
    archs: tuple[str, ...] = ARCHITECTURES,
    tolerance: float = 0.0,
    headline_only: bool = False,
) -> list[str]:
    """How ``produced`` (a results folder a study just wrote) differs from ``reference`` (the committed
    one): one line per file missing on either side or number apart by more than ``tolerance``.

    Compared per backbone: the logged training losses and learning rates (``metrics.jsonl``), the learning
    curve and every number of ``metrics.json``; timings are the machine's and are left out. With
    ``headline_only``, only :data:`HEADLINE_METRICS` of ``metrics.json`` (the check across CPU kinds).
    """
    problems: list[str] = []
    for arch in archs:
        for name, read in RUN_FILES.items():
            if headline_only and name != METRICS_FILE:
                continue
            ref_path, new_path = reference / arch / name, produced / arch / name
            if not ref_path.is_file():
                if name == METRICS_FILE:
                    problems.append(f"{ref_path}: missing from the reference results")
                continue
            if not new_path.is_file():
                problems.append(f"{new_path}: not written by the study")
                continue
            ref, new = _numbers(read(ref_path)), _numbers(read(new_path))
            keys = HEADLINE_METRICS if headline_only else sorted(ref.keys() | new.keys())
            for key in keys:
                a, b = ref.get(key), new.get(key)
                if a is None and b is None:
                    problems.append(f"{arch}/{name}: {key} in neither")
                elif a is None or b is None:
                    side = "produced" if a is None else "reference"
                    problems.append(f"{arch}/{name}: {key} only in {side}")
                elif not (a == b or abs(a - b) <= tolerance or (a != a and b != b)):
                    problems.append(
                        f"{arch}/{name}: {key} = {b!r}, reference {a!r} (|diff| {abs(a - b):.3g})"
                    )
    return problems


def cpu_kind_of(run_dir: Path) -> dict[str, Any] | None:
    """The CPU kind a run trained on (``env.json``'s ``cpu``), None where the run does not say."""
    try:
        cpu = RunDir(run_dir).env().get("cpu")
    except (OSError, ValueError):
        return None
    return cpu if isinstance(cpu, dict) else None


def _describe(cpu: dict[str, Any] | None) -> str:
    if cpu is None:
        return "an unrecorded CPU kind"
    flags = ", ".join(cpu.get("flags", [])) or "no AVX2"
    return f"{cpu.get('model') or 'unnamed CPU'} ({flags})"


def cpu_kind_differences(
    reference: Path, produced: Path, archs: tuple[str, ...] = ARCHITECTURES
) -> list[str]:
    """One line per backbone whose reference and produced runs did not train on the same CPU kind (or
    whose kind is not recorded): where these lines exist, bit-equality is not defined."""
    lines = []
    for arch in archs:
        ref, new = cpu_kind_of(reference / arch), cpu_kind_of(produced / arch)
        if ref is None or new is None or ref != new:
            lines.append(f"{arch}: the reference trained on {_describe(ref)}, this study on {_describe(new)}")
    return lines
