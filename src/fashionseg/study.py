"""The reproducible study: papermill executes the notebooks into ``results/<preset>/``, Jupyter Book builds
the report from them.

``fashionseg study`` runs ``01_data`` once, ``02_train_backbone`` once per backbone (each into
``results/<preset>/<arch>/`` beside its run folder), then ``03_compare``, ``04_qualitative`` and (when the
notebook is there) ``05_trends`` with the R50-FPN run's weights; then, for every other seed of ``--seeds``,
``02_train_backbone`` again per backbone into ``results/<preset>/seed-<k>/<arch>/``, and ``06_seeds`` over
all the seeds' runs (with one seed it reports the intervals over images and says that no seed spread was
measured); then the book. A backbone whose run is
finished (its ``metrics.json`` and ``model_final.pt`` exist and its stored parameters and resolved
configuration match) is reused
unless ``--force``. A failing notebook is reported with the path of its
executed copy (which holds the traceback); the other stages go on and the command exits non-zero.

``fashionseg book`` builds the book alone (:mod:`fashionseg.book`), from the executed notebooks already in
``results/``.

The notebooks' parameters map onto the run configuration in :func:`run_config`, the one place that
translates them, so a notebook executed by hand with papermill trains exactly what the study would.
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fashionseg.book import BOOK_PRESET, build_book
from fashionseg.config import (
    ARCHITECTURES,
    RunConfig,
    add_override_argument,
    list_presets,
    load_config,
    parse_override,
)
from fashionseg.errors import FashionsegError
from fashionseg.rundir import CONFIG_FILE, ENV_FILE, METRICS_FILE, MODEL_FILE, RunDir, seed_folder

DATA_NOTEBOOK = "01_data.ipynb"
TRAIN_NOTEBOOK = "02_train_backbone.ipynb"
COMPARE_NOTEBOOK = "03_compare.ipynb"
QUALITATIVE_NOTEBOOK = "04_qualitative.ipynb"
TRENDS_NOTEBOOK = "05_trends.ipynb"  # the application chapter; run when present
SEEDS_NOTEBOOK = "06_seeds.ipynb"  # the runs of every seed side by side; run when present
HIDDEN_CELL_TAGS = ("parameters", "injected-parameters")  # shown as a configuration table instead

Executor = Callable[[Path, Path, dict[str, Any]], None]


def run_config(
    preset: str = "demo",
    arch: str = "R50-FPN",
    data_root: str | None = None,
    iterations: int | None = None,
    batch_size: int | None = None,
    learning_rate: float | None = None,
    image_size: int | None = None,
    device: str | None = None,
    seed: int | None = None,
    weights: str | None = None,
    output_dir: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> RunConfig:
    """The run configuration the training notebook's parameters describe (``None`` keeps the preset's value).

    ``arch`` sets ``model.arch`` and the run name; ``iterations``, ``batch_size`` and ``learning_rate`` set
    ``solver.max_iter``, ``solver.ims_per_batch`` and ``solver.base_lr`` (the rate for the preset's
    reference batch, scaled linearly to ``batch_size`` as detectron2 does); ``image_size`` sets the shortest
    edge and keeps the preset's longest-to-shortest ratio; ``overrides`` holds any other dotted config keys.
    """
    named = {
        "solver.max_iter": iterations,
        "solver.ims_per_batch": batch_size,
        "solver.base_lr": learning_rate,
        "data.root": data_root,
        "device": device,
        "seed": seed,
        "model.weights": weights,
        "output_dir": output_dir,
    }
    values = {**(overrides or {}), **{k: v for k, v in named.items() if v is not None}}
    values.update({"model.arch": arch, "name": arch})
    cfg = load_config(preset, values)
    if image_size is None:
        return cfg
    ratio = cfg.data.max_size / cfg.data.min_size
    return load_config(
        preset, {**values, "data.min_size": image_size, "data.max_size": round(image_size * ratio)}
    )


CONFIG_PARAMETERS = tuple(inspect.signature(run_config).parameters)
# the training notebook's parameters a user may set with -p (arch, preset and output_dir are the study's)
TRAIN_PARAMETERS = tuple(
    p for p in CONFIG_PARAMETERS if p not in ("preset", "arch", "output_dir", "overrides")
)


@dataclass(frozen=True)
class StudyPlan:
    """What one ``fashionseg study`` run executes, and where (all paths relative to the working folder)."""

    preset: str
    archs: tuple[str, ...]
    results: Path  # results/<preset name>
    notebooks: Path
    parameters: dict[str, Any]  # the training notebook's -p values by name
    overrides: dict[str, Any]  # dotted config keys from -p
    force: bool = False
    trends: dict[str, Any] = field(default_factory=dict)  # other 05_trends parameters (collection, sizes)
    seeds: tuple[int, ...] = ()  # every seed trained, the runs' own first; () = the runs' seed alone

    def main_seed(self) -> int:
        """The seed of the runs in ``results/<preset>/<arch>/``: -p seed, else the preset's."""
        named = {k: v for k, v in self.parameters.items() if k in CONFIG_PARAMETERS}
        return run_config(self.preset, overrides=self.overrides, **named).seed

    def extra_seeds(self) -> tuple[int, ...]:
        """The seeds trained besides the main one, each into ``results/<preset>/seed-<k>/``."""
        main = self.main_seed()
        return tuple(s for s in self.seeds if s != main)

    def seed_results(self, seed: int) -> Path:
        """The results folder of one seed's runs: the study's own for the main seed."""
        return self.results if seed == self.main_seed() else seed_folder(self.results, seed)

    def data_parameters(self) -> dict[str, Any]:
        """Papermill parameters of ``01_data``."""
        root = {"data_root": self.parameters["data_root"]} if "data_root" in self.parameters else {}
        return {"preset": self.preset, **root, "overrides": self.overrides, "results_dir": str(self.results)}

    def train_parameters(self, arch: str) -> dict[str, Any]:
        """Papermill parameters of ``02_train_backbone`` for one backbone (run folder: results/<arch>)."""
        return {
            "arch": arch,
            "preset": self.preset,
            "output_dir": str(self.results),
            **self.parameters,
            "overrides": self.overrides,
            # the study owns its results folder: a run it does not reuse (stale, or --force) is retrained
            # in place, also when the preset's configuration changed since (train() refuses that by default)
            "overwrite": True,
        }

    def seed_train_parameters(self, arch: str, seed: int) -> dict[str, Any]:
        """Papermill parameters of ``02_train_backbone`` for one backbone and one of the other seeds."""
        return {
            **self.train_parameters(arch),
            "seed": seed,
            "output_dir": str(self.seed_results(seed)),
        }

    def seeds_parameters(self) -> dict[str, Any]:
        """Papermill parameters of ``06_seeds``: every seed trained, the main one first."""
        return {**self.compare_parameters(), "seeds": [self.main_seed(), *self.extra_seeds()]}

    def compare_parameters(self) -> dict[str, Any]:
        """Papermill parameters of ``03_compare``."""
        return {"results_dir": str(self.results), "archs": list(self.archs)}

    def qualitative_parameters(self) -> dict[str, Any]:
        """Papermill parameters of ``04_qualitative`` (the device too, when -p set one)."""
        return {**self.compare_parameters(), **self._device()}

    def trends_parameters(self) -> dict[str, Any]:
        """Papermill parameters of ``05_trends``: R50-FPN's run (or the first backbone's) as the model."""
        arch = "R50-FPN" if "R50-FPN" in self.archs else self.archs[0]
        return {"results_dir": str(self.results), "arch": arch, **self._device(), **self.trends}

    def _device(self) -> dict[str, Any]:
        return {"device": self.parameters["device"]} if "device" in self.parameters else {}


@dataclass(frozen=True)
class StageResult:
    """How one notebook of the study went: ``ran``, ``reused`` or ``failed`` (with the error's last line)."""

    stage: str
    notebook: Path
    status: str
    seconds: float = 0.0
    error: str = ""


def preset_name(preset: str) -> str:
    """The results folder name of a preset: the name itself, or a YAML file's stem."""
    return Path(preset).stem if Path(preset).suffix in (".yaml", ".yml") else preset


def results_name(preset: str, parameters: dict[str, Any], overrides: dict[str, Any]) -> str:
    """The results folder name of a study: the preset's name, followed by its ``-p`` values when there are
    any (``demo-iterations=200-image_size=128``), so that a variation never overwrites the preset's own
    results (``results/demo`` is the committed demo). Characters other than letters, digits and ``.=,_-``
    become ``_``; a name longer than 80 characters keeps 60 and a hash of the rest."""
    values = {**parameters, **overrides}
    name = preset_name(preset)
    if values:
        name += "-" + "-".join(f"{k}={_plain(v)}" for k, v in sorted(values.items()))
    name = re.sub(r"[^A-Za-z0-9.=,_-]", "_", name)
    if len(name) > 80:
        name = f"{name[:60]}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"
    return name


def _plain(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ",".join(map(str, value))
    return str(value)


def split_overrides(pairs: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``-p`` values as (training-notebook parameters by name, dotted config keys).

    ``-p iterations=50`` sets the notebook parameter; ``-p solver.warmup_iters=10`` any config key.
    """
    named: dict[str, Any] = {}
    dotted: dict[str, Any] = {}
    for text in pairs:
        key, value = parse_override(text)
        if "." in key:
            dotted[key] = value
        elif key in TRAIN_PARAMETERS:
            named[key] = value
        else:
            hint = {
                "arch": "use --archs",
                "preset": "use --preset",
                "output_dir": "use --results",
                "name": "the run name is the arch",
            }.get(key, "or give a dotted config key such as solver.warmup_iters=10")
            raise FashionsegError(
                f"-p {text}: {key!r} is not a parameter of {TRAIN_NOTEBOOK} "
                f"(valid: {', '.join(TRAIN_PARAMETERS)}); {hint}"
            )
    return named, dotted


def parse_archs(text: str) -> tuple[str, ...]:
    """``R50-FPN,R50-C4`` -> the architectures, checked against the three the study knows."""
    archs = tuple(a.strip() for a in text.split(",") if a.strip())
    unknown = [a for a in archs if a not in ARCHITECTURES]
    if unknown or not archs:
        raise FashionsegError(
            f"--archs {text!r}: unknown architecture(s) {', '.join(unknown) or '(none given)'}; "
            f"valid: {','.join(ARCHITECTURES)}"
        )
    return archs


def parse_seeds(text: str) -> tuple[int, ...]:
    """``0,1,2`` -> (0, 1, 2): distinct non-negative integers, in the order given."""
    try:
        seeds = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        message = f"{text!r}: seeds are comma-separated integers, e.g. 0,1,2"
        raise argparse.ArgumentTypeError(message) from None
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"{text!r}: give distinct non-negative integers, e.g. 0,1,2")
    return seeds


def _without(parameters: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in parameters.items() if k != key}


def stored_parameters(notebook: Path) -> dict[str, Any] | None:
    """The parameters papermill stored in an executed notebook, or None if it is missing or failed."""
    if not notebook.is_file():
        return None
    meta = json.loads(notebook.read_text()).get("metadata", {}).get("papermill", {})
    if meta.get("exception"):
        return None
    return meta.get("parameters")


def code_cells(notebook: Path) -> list[str]:
    """The sources of a notebook's code cells, papermill's injected parameters left out."""
    cells = json.loads(notebook.read_text()).get("cells", [])
    return [
        "".join(c["source"])
        for c in cells
        if c["cell_type"] == "code" and "injected-parameters" not in c.get("metadata", {}).get("tags", [])
    ]


def executed_unchanged(source: Path, executed: Path, parameters: dict[str, Any]) -> bool:
    """Whether ``executed`` ran without error with these parameters from today's ``source`` (the same
    code cells): only then may a study reuse it instead of executing ``source`` again."""
    return stored_parameters(executed) == parameters and code_cells(executed) == code_cells(source)


def run_finished(notebook: Path, parameters: dict[str, Any]) -> bool:
    """A training run is finished when its notebook ran without error with these parameters, its
    ``metrics.json`` and ``model_final.pt`` exist (the later notebooks need the weights, which results
    committed without checkpoints lack), its ``config.yaml`` equals what the parameters resolve to today
    (so an edited preset file also triggers a new run) and it was trained by today's training code
    (``env.json``'s ``training_code``, a hash of the files that decide the result). Content decides,
    never paths or modification times."""
    stored = stored_parameters(notebook)
    if stored is None or _without(stored, "overwrite") != _without(parameters, "overwrite"):
        return False
    run = RunDir.of(parameters["output_dir"], parameters["arch"])
    if not run.has(METRICS_FILE, MODEL_FILE, CONFIG_FILE, ENV_FILE):
        return False
    from fashionseg.train import training_code_hash

    if run.env().get("training_code") != training_code_hash():
        return False
    wanted = run_config(**{k: v for k, v in parameters.items() if k in CONFIG_PARAMETERS})
    return run.config() == wanted


def clean_executed_notebook(notebook: Path) -> None:
    """Make an executed notebook fit to publish and to commit.

    Tags the parameters and papermill's injected-parameters cells ``remove-cell`` (the book shows a
    configuration table instead) and drops stderr outputs: progress bars and library warnings, which were
    streamed to the console as the notebook ran, are noise in the book, and warnings name files by the
    absolute paths of the machine that ran them.
    """
    nb = json.loads(notebook.read_text())
    for cell in nb["cells"]:
        tags = cell.get("metadata", {}).get("tags", [])
        if any(t in tags for t in HIDDEN_CELL_TAGS) and "remove-cell" not in tags:
            cell["metadata"]["tags"] = [*tags, "remove-cell"]
        if "outputs" in cell:
            cell["outputs"] = [
                o
                for o in cell["outputs"]
                if not (o.get("output_type") == "stream" and o.get("name") == "stderr")
            ]
    notebook.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")


def execute_notebook(notebook: Path, output: Path, parameters: dict[str, Any]) -> None:
    """Execute ``notebook`` with papermill into ``output`` (working folder: the current one).

    What the notebook prints is streamed to this process's stdout and stderr as it runs, so the training
    and evaluation progress bars show live. Raises papermill's error when a cell fails; the executed copy,
    traceback included, is written first.
    """
    import papermill

    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        papermill.execute_notebook(
            str(notebook),
            str(output),
            parameters=parameters,
            kernel_name="python3",
            progress_bar=False,
            stdout_file=sys.stdout,
            stderr_file=sys.stderr,
            cwd=str(Path.cwd()),
        )
    finally:
        if output.is_file():
            clean_executed_notebook(output)


def _error_line(exc: BaseException) -> str:
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__


def _run_stage(
    stage: str,
    notebook: Path,
    output: Path,
    parameters: dict[str, Any],
    executor: Executor,
    log: Callable[[str], None],
) -> StageResult:
    log(f"{stage}: executing {notebook} -> {output}")
    tic = time.perf_counter()
    try:
        executor(notebook, output, parameters)
    except Exception as exc:  # any notebook error is reported, and the study goes on
        seconds = time.perf_counter() - tic
        log(f"{stage}: FAILED after {seconds:.0f} s: {_error_line(exc)}\n  see {output}")
        return StageResult(stage, output, "failed", seconds, _error_line(exc))
    seconds = time.perf_counter() - tic
    log(f"{stage}: done in {seconds:.0f} s")
    return StageResult(stage, output, "ran", seconds)


def run_notebooks(
    plan: StudyPlan, executor: Executor = execute_notebook, log: Callable[[str], None] = print
) -> list[StageResult]:
    """Execute the study's notebooks in order; return one result per stage (failures included)."""
    missing = [
        plan.notebooks / n
        for n in (DATA_NOTEBOOK, TRAIN_NOTEBOOK, COMPARE_NOTEBOOK, QUALITATIVE_NOTEBOOK)
        if not (plan.notebooks / n).is_file()
    ]
    if missing:
        raise FashionsegError(
            f"notebook(s) not found: {', '.join(map(str, missing))}; run from the repository root or pass "
            "--notebooks DIR"
        )
    last = [
        (COMPARE_NOTEBOOK, plan.compare_parameters()),
        (QUALITATIVE_NOTEBOOK, plan.qualitative_parameters()),
    ]
    if (plan.notebooks / TRENDS_NOTEBOOK).is_file():
        last.append((TRENDS_NOTEBOOK, plan.trends_parameters()))
    extra = [(seed, arch) for seed in plan.extra_seeds() for arch in plan.archs]
    with_seeds = (plan.notebooks / SEEDS_NOTEBOOK).is_file()
    total = 1 + len(plan.archs) + len(last) + len(extra) + with_seeds
    results: list[StageResult] = []
    count = iter(range(1, total + 1))

    data_out = plan.results / DATA_NOTEBOOK
    data_params = plan.data_parameters()
    stage = f"[{next(count)}/{total}] data"
    if not plan.force and executed_unchanged(plan.notebooks / DATA_NOTEBOOK, data_out, data_params):
        log(f"{stage}: reused {data_out}")
        results.append(StageResult(stage, data_out, "reused"))
    else:
        results.append(
            _run_stage(stage, plan.notebooks / DATA_NOTEBOOK, data_out, data_params, executor, log)
        )

    def train(stage: str, params: dict[str, Any]) -> StageResult:
        output = Path(params["output_dir"]) / params["arch"] / TRAIN_NOTEBOOK
        if not plan.force and run_finished(output, params):
            log(f"{stage}: reused finished run {output.parent} (--force to train again)")
            return StageResult(stage, output, "reused")
        # a stale metrics.json must not make a failed re-run look finished
        RunDir(output.parent).metrics_file.unlink(missing_ok=True)
        return _run_stage(stage, plan.notebooks / TRAIN_NOTEBOOK, output, params, executor, log)

    for arch in plan.archs:
        results.append(train(f"[{next(count)}/{total}] train {arch}", plan.train_parameters(arch)))
    for name, params in last:
        stage = f"[{next(count)}/{total}] {Path(name).stem[3:]}"
        results.append(_run_stage(stage, plan.notebooks / name, plan.results / name, params, executor, log))
    for seed, arch in extra:
        stage = f"[{next(count)}/{total}] train {arch} seed {seed}"
        results.append(train(stage, plan.seed_train_parameters(arch, seed)))
    if with_seeds:
        stage = f"[{next(count)}/{total}] seeds"
        output = plan.results / SEEDS_NOTEBOOK
        results.append(
            _run_stage(stage, plan.notebooks / SEEDS_NOTEBOOK, output, plan.seeds_parameters(), executor, log)
        )
    return results


def _summary(results: list[StageResult], plan: StudyPlan, seconds: float) -> str:
    from fashionseg.report.compare import ours_table
    from fashionseg.rundir import read_run_metrics

    width = max(len(r.stage) for r in results)
    lines = [f"study {plan.preset}: {seconds / 60:.1f} min"]
    lines += [f"  {r.stage:<{width}}  {r.status:<6}  {r.notebook}" for r in results]
    table = ours_table(read_run_metrics(plan.results, plan.archs))
    if len(table):
        lines += ["", table.to_string(float_format=lambda v: f"{v:.1f}")]
    return "\n".join(lines)


def add_study_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--preset",
        "-f",
        default="demo",
        help=f"preset name ({', '.join(list_presets())}) or a YAML file path; results go to RESULTS/<name>, "
        "or RESULTS/<name>-<the -p values> when -p changes the configuration",
    )
    add_override_argument(
        parser,
        help=f"a training-notebook parameter ({', '.join(TRAIN_PARAMETERS)}) or a dotted config key, "
        "e.g. -p iterations=200 or -p solver.warmup_iters=20 (repeatable)",
    )
    parser.add_argument("--force", action="store_true", help="train again even when a finished run matches")
    parser.add_argument(
        "--archs", default=",".join(ARCHITECTURES), help="comma-separated backbones (default: all three)"
    )
    parser.add_argument(
        "--seeds",
        type=parse_seeds,
        default=(),
        help="comma-separated seeds to train every backbone with, e.g. 0,1,2 (must include the runs' own "
        "seed, the preset's or -p seed's; the others go to RESULTS/<name>/seed-<k>/); default: that seed",
    )
    parser.add_argument("--results", type=Path, default=Path("results"), help="results folder")
    parser.add_argument("--notebooks", type=Path, default=Path("notebooks"), help="the study's notebooks")
    parser.add_argument(
        "--no-book", action="store_true", help="execute the notebooks but do not build the book"
    )


def run_study(args: argparse.Namespace) -> int:
    named, dotted = split_overrides(args.overrides)
    plan = StudyPlan(
        preset=args.preset,
        archs=parse_archs(args.archs),
        results=args.results / results_name(args.preset, named, dotted),
        notebooks=args.notebooks,
        parameters=named,
        overrides=dotted,
        force=args.force,
        seeds=args.seeds,
    )
    run_config(plan.preset, overrides=dotted, **named)  # a bad preset or value fails here, before any work
    if plan.seeds and plan.main_seed() not in plan.seeds:
        raise FashionsegError(
            f"--seeds {','.join(map(str, plan.seeds))} leaves out the runs' own seed {plan.main_seed()} "
            f"(the one {COMPARE_NOTEBOOK} to {TRENDS_NOTEBOOK} show): include it, or set it with "
            f"-p seed={plan.seeds[0]}"
        )
    tic = time.perf_counter()
    results = run_notebooks(plan)
    stage_book = "[book] jupyter-book"
    if not args.no_book:
        try:
            html = build_book(Path.cwd(), plan.results)
            results.append(StageResult(stage_book, html / "index.html", "ran"))
        except FashionsegError as exc:
            print(f"error: {exc}", file=sys.stderr)
            results.append(StageResult(stage_book, Path("_build/html"), "failed", error=_error_line(exc)))
    print(_summary(results, plan, time.perf_counter() - tic))
    failed = [r for r in results if r.status == "failed"]
    for r in failed:
        where = (
            f"after fixing, rebuild it alone: fashionseg book --preset {plan.results.name}"
            if r.stage == stage_book
            else f"executed notebook: {r.notebook}"
        )
        print(f"failed: {r.stage}: {r.error}\n  {where}", file=sys.stderr)
    return 1 if failed else 0


def add_book_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--preset",
        "-f",
        default=BOOK_PRESET,
        help="build from RESULTS/<preset>/ (default: demo); a study run with -p values wrote to "
        "RESULTS/<preset>-<values>/: give that folder's name",
    )
    parser.add_argument("--results", type=Path, default=Path("results"), help="results folder")


def run_book(args: argparse.Namespace) -> int:
    build_book(Path.cwd(), args.results / preset_name(args.preset))
    return 0
