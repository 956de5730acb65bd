"""The study layer: notebook parameters -> config, the runner's reuse/--force/failure logic, one real
papermill run of the training notebook, and a book built from a tiny study."""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import math
import re
import shutil
from pathlib import Path
from typing import Any

import nbformat
import pytest
from bs4 import BeautifulSoup

from fashionseg import book, rundir, study
from fashionseg.config import ARCHITECTURES, load_config, read_config, save_config
from fashionseg.data import statistics
from fashionseg.errors import FashionsegError
from fashionseg.report import compare, training
from fashionseg.train import training_code_hash

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
# tiny training: a few iterations on the conftest's synthetic data, used as it is (no regeneration)
TINY = {"iterations": 2, "batch_size": 1, "image_size": 96, "device": "cpu"}
TINY_OVERRIDES = {
    "data.synthetic": False,
    "solver.warmup_iters": 1,
    "solver.steps": [],
    "solver.checkpoint_period": 100,
    "model.rpn_pre_nms_top_n_train": 50,
    "model.rpn_post_nms_top_n_train": 20,
    "model.rpn_pre_nms_top_n_test": 50,
    "model.rpn_post_nms_top_n_test": 10,
    "model.rpn_batch_size_per_image": 32,
    "model.box_batch_size_per_image": 16,
    "model.box_detections_per_img": 10,
}


def glued(notebook: Path) -> dict[str, dict[str, Any]]:
    """name -> mime bundle of every value a notebook glued (papermill's record prefix removed)."""
    out = {}
    for cell in nbformat.read(notebook, as_version=4).cells:
        for output in cell.get("outputs", []):
            meta = output.get("metadata", {}).get("scrapbook")
            if meta:
                prefix = meta["mime_prefix"]
                out[meta["name"]] = {k.removeprefix(prefix): v for k, v in output["data"].items()}
    return out


# --- parameters -> configuration ------------------------------------------------------------------------


def test_run_config_maps_every_notebook_parameter(tmp_path):
    cfg = study.run_config(
        "demo",
        "R50-C4",
        data_root=str(tmp_path / "data"),
        iterations=7,
        batch_size=2,
        learning_rate=0.005,
        image_size=96,
        device="cpu",
        seed=3,
        weights="none",
        output_dir=str(tmp_path / "out"),
        overrides={"solver.warmup_iters": 1},
    )
    preset = load_config("demo", {"model.arch": "R50-C4", "name": "R50-C4"})
    assert (cfg.name, cfg.model.arch) == ("R50-C4", "R50-C4")
    assert (cfg.solver.max_iter, cfg.solver.ims_per_batch, cfg.solver.base_lr) == (7, 2, 0.005)
    assert (cfg.device, cfg.seed, cfg.model.weights, cfg.solver.warmup_iters) == ("cpu", 3, "none", 1)
    assert cfg.data.root == str(tmp_path / "data")
    assert cfg.run_dir == tmp_path / "out" / "R50-C4"
    # image_size sets the shortest edge and keeps the preset's longest/shortest ratio
    assert cfg.data.min_size == 96
    assert cfg.data.max_size == round(96 * preset.data.max_size / preset.data.min_size)


def test_run_config_none_keeps_the_preset():
    assert study.run_config("seed", "R50-DC5") == load_config(
        "seed", {"model.arch": "R50-DC5", "name": "R50-DC5"}
    )


def test_train_parameters_are_the_notebook_parameters():
    nb = nbformat.read(NOTEBOOKS / study.TRAIN_NOTEBOOK, as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    names = {line.split("=")[0].strip() for line in cell.source.splitlines() if "=" in line}
    assert set(study.TRAIN_PARAMETERS) | {"arch", "preset", "output_dir", "overrides"} <= names


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.name)
def test_notebooks_are_thin_parameterised_and_clean(path):
    """One cell tagged ``parameters`` holding only literals, no outputs committed, no def/class (logic lives
    in the package)."""
    cells = nbformat.read(path, as_version=4).cells
    tagged = [c for c in cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    for statement in ast.parse(tagged[0].source).body:
        assert isinstance(statement, ast.Assign), ast.unparse(statement)
        ast.literal_eval(statement.value)
    code = [c for c in cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code)
    # IPython magics are not Python: blank those lines, never skip the cell that holds them
    python = [
        "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in c.source.splitlines())
        for c in code
    ]
    tree = ast.parse("\n".join(python))
    assert not [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.ClassDef | ast.Lambda)]


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.name)
def test_notebooks_derive_their_output_paths_from_one_results_folder(path):
    """Only ``results_dir`` (``output_dir`` in the training notebook, the run folder's parent) names a place
    under results/: figures, trend outputs and the model's run folder are derived from it, so executing a
    notebook for another preset cannot write into the demo's folders."""
    cells = nbformat.read(path, as_version=4).cells
    parameters = ast.parse(next(c for c in cells if "parameters" in c.metadata.get("tags", [])).source)
    paths = {
        s.targets[0].id
        for s in parameters.body
        if isinstance(s.value, ast.Constant) and str(s.value.value).startswith("results")
    }
    assert paths <= {"results_dir"}, paths
    names = {s.targets[0].id for s in parameters.body}
    assert not names & {"figures_dir", "out_dir"}
    assert "results_dir" in names or "output_dir" in names


def test_split_overrides_sorts_named_and_dotted():
    named, dotted = study.split_overrides(["iterations=50", "solver.warmup_iters=10", "device=cpu"])
    assert named == {"iterations": 50, "device": "cpu"}
    assert dotted == {"solver.warmup_iters": 10}
    with pytest.raises(FashionsegError, match="itertions.*valid: data_root"):
        study.split_overrides(["itertions=5"])
    with pytest.raises(FashionsegError, match="--archs"):
        study.split_overrides(["arch=R50-C4"])


def test_parse_archs():
    assert study.parse_archs("R50-C4, R50-FPN") == ("R50-C4", "R50-FPN")
    with pytest.raises(FashionsegError, match="R50-X"):
        study.parse_archs("R50-FPN,R50-X")


def test_a_variation_of_a_preset_gets_its_own_results_folder():
    assert study.results_name("demo", {}, {}) == "demo"
    assert study.results_name("demo", {"iterations": 200, "image_size": 128}, {}) == (
        "demo-image_size=128-iterations=200"
    )
    assert study.results_name("my.yaml", {}, {"solver.steps": [200, 250]}) == "my-solver.steps=200,250"
    spaced = study.results_name("demo", {"data_root": "/data/my photos"}, {})
    assert spaced == "demo-data_root=_data_my_photos"
    long = study.results_name("demo", {f"model.k{i}": i for i in range(20)}, {})
    assert len(long) == 69 and long.startswith("demo-model.k0=0")
    assert long != study.results_name("demo", {f"model.k{i}": i + 1 for i in range(20)}, {})


def test_preset_name():
    assert study.preset_name("demo") == "demo"
    assert study.preset_name("configs/my_run.yaml") == "my_run"


# --- the runner, with a fake executor -------------------------------------------------------------------


class FakeExecutor:
    """Writes what papermill and the notebooks would (stored parameters, config.yaml, env.json with the
    training code's hash, metrics.json);
    fails for the archs in ``failing`` the way papermill does (executed copy written, then an error)."""

    def __init__(self, failing: tuple[str, ...] = ()):
        self.failing = failing
        self.calls: list[tuple[str, str]] = []
        self.parameters: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, notebook: Path, output: Path, parameters: dict[str, Any]) -> None:
        arch = parameters.get("arch", "")
        self.calls.append((notebook.name, arch))
        self.parameters.append((notebook.name, parameters))
        failed = arch in self.failing
        output.parent.mkdir(parents=True, exist_ok=True)
        meta = {"papermill": {"parameters": parameters, "exception": True if failed else None}}
        output.write_text(json.dumps({"cells": [], "metadata": meta, "nbformat": 4, "nbformat_minor": 5}))
        if failed:
            raise RuntimeError(f"cell failed\nValueError: {arch} diverged")
        if notebook.name == study.TRAIN_NOTEBOOK:
            run_dir = Path(parameters["output_dir"]) / arch
            config = {k: v for k, v in parameters.items() if k != "overwrite"}  # the notebook's, not config
            save_config(study.run_config(**config), run_dir / "config.yaml")
            (run_dir / "metrics.json").write_text("{}")
            (run_dir / "model_final.pt").write_bytes(b"weights")
            (run_dir / "env.json").write_text(json.dumps({"training_code": training_code_hash()}))


@pytest.fixture
def plan(tmp_path, monkeypatch) -> study.StudyPlan:
    monkeypatch.chdir(tmp_path)
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    for name in (
        study.DATA_NOTEBOOK,
        study.TRAIN_NOTEBOOK,
        study.COMPARE_NOTEBOOK,
        study.QUALITATIVE_NOTEBOOK,
    ):
        (notebooks / name).write_text("{}")
    return study.StudyPlan(
        preset="demo",
        archs=ARCHITECTURES,
        results=Path("results/demo"),
        notebooks=notebooks,
        parameters={"iterations": 3},
        overrides={"solver.warmup_iters": 1},
    )


def _statuses(results: list[study.StageResult]) -> list[str]:
    return [r.status for r in results]


def test_runner_runs_everything_then_reuses_finished_runs(plan):
    first = FakeExecutor()
    assert _statuses(study.run_notebooks(plan, first, log=lambda _: None)) == ["ran"] * 6
    assert [c[1] for c in first.calls if c[0] == study.TRAIN_NOTEBOOK] == list(ARCHITECTURES)

    again = FakeExecutor()
    results = study.run_notebooks(plan, again, log=lambda _: None)
    assert _statuses(results) == ["reused"] * 4 + ["ran"] * 2
    assert [c[0] for c in again.calls] == [study.COMPARE_NOTEBOOK, study.QUALITATIVE_NOTEBOOK]


def test_runner_executes_the_data_notebook_again_when_its_code_changed(plan):
    """An executed notebook from older code is stale even with the same parameters (it once left the
    book without the glue names the edited notebook makes)."""
    study.run_notebooks(plan, FakeExecutor(), log=lambda _: None)
    source = plan.notebooks / study.DATA_NOTEBOOK
    code = {"cell_type": "code", "source": ["glue('ontology_categories', 46)"], "metadata": {}, "outputs": []}
    source.write_text(json.dumps({"cells": [code], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    edited = FakeExecutor()
    results = study.run_notebooks(plan, edited, log=lambda _: None)
    assert _statuses(results) == ["ran"] + ["reused"] * 3 + ["ran"] * 2
    executed = plan.results / study.DATA_NOTEBOOK
    injected = {
        "cell_type": "code",
        "source": ["iterations = 3"],
        "metadata": {"tags": ["injected-parameters"]},
    }
    meta = {"papermill": {"parameters": plan.data_parameters()}}
    executed.write_text(json.dumps({"cells": [injected, code], "metadata": meta}))
    assert study.executed_unchanged(source, executed, plan.data_parameters())  # papermill's cell aside
    assert not study.executed_unchanged(source, executed, {**plan.data_parameters(), "seed": 1})


def test_runner_retrains_when_parameters_or_config_change_or_forced(plan):
    study.run_notebooks(plan, FakeExecutor(), log=lambda _: None)

    longer = study.StudyPlan(**{**plan.__dict__, "parameters": {"iterations": 4}})
    changed = FakeExecutor()
    study.run_notebooks(longer, changed, log=lambda _: None)
    assert [c[1] for c in changed.calls if c[0] == study.TRAIN_NOTEBOOK] == list(ARCHITECTURES)

    # a run folder whose config no longer matches (e.g. an edited preset) is not finished
    run_dir = plan.results / "R50-DC5"
    save_config(load_config("demo"), run_dir / "config.yaml")
    edited = FakeExecutor()
    study.run_notebooks(longer, edited, log=lambda _: None)
    assert [c[1] for c in edited.calls if c[0] == study.TRAIN_NOTEBOOK] == ["R50-DC5"]
    # ... and retrained in place: train() would refuse a finished run of another configuration
    assert [p["overwrite"] for name, p in edited.parameters if name == study.TRAIN_NOTEBOOK] == [True]

    # whether a run was allowed to replace another is no part of what it is: a notebook stored with
    # overwrite=False (by an older study) is still finished
    notebook = plan.results / "R50-FPN" / study.TRAIN_NOTEBOOK
    stored = json.loads(notebook.read_text())
    stored["metadata"]["papermill"]["parameters"]["overwrite"] = False
    notebook.write_text(json.dumps(stored))
    again = FakeExecutor()
    study.run_notebooks(longer, again, log=lambda _: None)
    assert [c[1] for c in again.calls if c[0] == study.TRAIN_NOTEBOOK] == []

    # results committed without their checkpoints (results/demo in a fresh clone) are trained again
    (plan.results / "R50-C4" / "model_final.pt").unlink()
    cloned = FakeExecutor()
    study.run_notebooks(longer, cloned, log=lambda _: None)
    assert [c[1] for c in cloned.calls if c[0] == study.TRAIN_NOTEBOOK] == ["R50-C4"]

    forced = FakeExecutor()
    results = study.run_notebooks(study.StudyPlan(**{**longer.__dict__, "force": True}), forced, log=print)
    assert _statuses(results) == ["ran"] * 6


def test_runner_reports_a_failing_backbone_and_keeps_the_others(plan):
    study.run_notebooks(plan, FakeExecutor(), log=lambda _: None)
    logged: list[str] = []
    forced = study.StudyPlan(**{**plan.__dict__, "force": True})
    results = study.run_notebooks(forced, FakeExecutor(failing=("R50-C4",)), log=logged.append)

    failed = [r for r in results if r.status == "failed"]
    assert [(r.stage, r.error) for r in failed] == [("[3/6] train R50-C4", "ValueError: R50-C4 diverged")]
    assert failed[0].notebook == plan.results / "R50-C4" / study.TRAIN_NOTEBOOK
    assert any("R50-C4" in line and "FAILED" in line for line in logged)
    assert (plan.results / "R50-FPN" / "metrics.json").is_file()
    assert (plan.results / "R50-DC5" / "metrics.json").is_file()
    # the stale metrics.json of the failed run is gone, so the next study trains it again
    assert not (plan.results / "R50-C4" / "metrics.json").exists()
    assert _statuses(results)[-2:] == ["ran", "ran"]  # compare and qualitative still ran


def test_runner_runs_the_trends_notebook_when_present(plan):
    (plan.notebooks / study.TRENDS_NOTEBOOK).write_text("{}")
    executor = FakeExecutor()
    results = study.run_notebooks(study.StudyPlan(**{**plan.__dict__, "archs": ("R50-C4",)}), executor)
    assert [r.stage for r in results][-1] == "[5/5] trends"
    trends = [p for n, p in executor.parameters if n == study.TRENDS_NOTEBOOK]
    assert trends == [{"results_dir": "results/demo", "arch": "R50-C4"}]


def test_runner_trains_the_other_seeds_into_their_own_folders_then_compares_them(plan):
    (plan.notebooks / study.SEEDS_NOTEBOOK).write_text("{}")
    seeded = study.StudyPlan(**{**plan.__dict__, "archs": ("R50-FPN", "R50-C4"), "seeds": (0, 2)})
    executor = FakeExecutor()
    results = study.run_notebooks(seeded, executor, log=lambda _: None)
    assert [r.stage for r in results][-3:] == [
        "[6/8] train R50-FPN seed 2",
        "[7/8] train R50-C4 seed 2",
        "[8/8] seeds",
    ]
    trained = [(p["arch"], p.get("seed"), p["output_dir"]) for n, p in executor.parameters if "arch" in p]
    assert trained == [
        ("R50-FPN", None, "results/demo"),  # the main seed: the same run as without --seeds
        ("R50-C4", None, "results/demo"),
        ("R50-FPN", 2, "results/demo/seed-2"),
        ("R50-C4", 2, "results/demo/seed-2"),
    ]
    assert read_config(plan.results / "seed-2" / "R50-C4" / "config.yaml").seed == 2
    seeds = [p for n, p in executor.parameters if n == study.SEEDS_NOTEBOOK]
    assert seeds == [{"results_dir": "results/demo", "archs": ["R50-FPN", "R50-C4"], "seeds": [0, 2]}]

    # a study without --seeds reuses every run, trains no other seed and compares the one it has
    again = FakeExecutor()
    single = study.StudyPlan(**{**seeded.__dict__, "seeds": ()})
    results = study.run_notebooks(single, again, log=lambda _: None)
    assert [r.status for r in results if "train" in r.stage] == ["reused", "reused"]
    assert [p["seeds"] for n, p in again.parameters if n == study.SEEDS_NOTEBOOK] == [[0]]
    # and with them again, the other seeds' runs are reused too
    third = FakeExecutor()
    results = study.run_notebooks(seeded, third, log=lambda _: None)
    assert [r.status for r in results if "train" in r.stage] == ["reused"] * 4


def test_seeds_are_checked(tmp_path, monkeypatch):
    assert study.parse_seeds("0, 1,2") == (0, 1, 2)
    for bad in ("0,x", "1,1", "-1", ""):
        with pytest.raises(argparse.ArgumentTypeError, match="e.g. 0,1,2"):
            study.parse_seeds(bad)
    parser = argparse.ArgumentParser()
    study.add_study_arguments(parser)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FashionsegError, match="leaves out the runs' own seed 0.*-p seed=3"):
        study.run_study(parser.parse_args(["--seeds", "3,4", "--no-book"]))


def test_runner_needs_the_notebooks(plan, tmp_path):
    with pytest.raises(FashionsegError, match="04_qualitative.ipynb"):
        study.run_notebooks(study.StudyPlan(**{**plan.__dict__, "notebooks": tmp_path}), FakeExecutor())


def test_clean_executed_notebook_hides_parameters_and_drops_stderr(tmp_path):
    printed = nbformat.v4.new_code_cell("print(x)")
    printed.outputs = [
        nbformat.v4.new_output("stream", name="stdout", text="2\n"),
        nbformat.v4.new_output(
            "stream", name="stderr", text="/home/me/.venv/lib/tqdm/auto.py: TqdmWarning\n"
        ),
        nbformat.v4.new_output("execute_result", data={"text/plain": "2"}, execution_count=1),
    ]
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["parameters"]}),
            nbformat.v4.new_code_cell("x = 2", metadata={"tags": ["injected-parameters"]}),
            printed,
        ]
    )
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    study.clean_executed_notebook(path)
    cells = nbformat.read(path, as_version=4).cells
    tags = [c.metadata.get("tags", []) for c in cells]
    assert tags == [["parameters", "remove-cell"], ["injected-parameters", "remove-cell"], []]
    kept = cells[2].outputs
    assert [(o.output_type, o.get("name")) for o in kept] == [("stream", "stdout"), ("execute_result", None)]


# --- the book's source folder ---------------------------------------------------------------------------


def test_book_source_names_missing_notebooks_and_rewrites_paths_for_another_preset(tmp_path):
    results = tmp_path / "results" / "seed"
    with pytest.raises(FashionsegError, match=r"results/seed/R50-C4/02_train_backbone\.ipynb.*--preset seed"):
        book.book_source(ROOT, results, tmp_path / "build")

    toc_files = book._toc_files(__import__("yaml").safe_load((ROOT / "_toc.yml").read_text()))
    for f in toc_files:
        if f.startswith("results/"):
            target = results / f"{f.removeprefix('results/demo/')}.ipynb"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text("{}")
    (results / "R50-FPN" / "model_final.pt").write_bytes(b"weights")

    source = book.book_source(ROOT, results, tmp_path / "build")
    assert source == tmp_path / "build" / "source-seed"
    assert (source / "results" / "seed" / "03_compare.ipynb").is_file()
    assert not (source / "results" / "seed" / "R50-FPN" / "model_final.pt").exists()
    for page in (source / "_toc.yml", source / "book" / "results.md"):
        text = page.read_text()
        assert "results/seed/03_compare" in text and "results/demo/" not in text
    assert (source / "book" / "images" / "architecture.svg").is_file()
    # only references to the executed notebooks move; a command line about the demo's run stays as written
    trends = (source / "book" / "trends.md").read_text()
    assert "../results/seed/05_trends.ipynb::" in trends and "--weights results/demo/R50-FPN" in trends
    assert "Executed notebooks (results/seed)" in (source / "_toc.yml").read_text()


# --- real notebooks -------------------------------------------------------------------------------------


FAILING_TRAIN_NOTEBOOK = """
import json
from pathlib import Path
from fashionseg.config import save_config
from fashionseg.study import run_config
cfg = run_config(preset, arch, iterations=iterations, output_dir=output_dir, overrides=overrides)
if arch == "R50-C4":
    raise ValueError("R50-C4 diverged")
save_config(cfg, cfg.run_dir / "config.yaml")
family = {"coco": {"AP": 1.5, "AP50": 2.5, "AP75": 0.5}, "iou_f1": {"AP": 0.5}, "f1": {"AP": 0.7}}
(cfg.run_dir / "metrics.json").write_text(json.dumps({"bbox": family, "segm": family, "arch": arch}))
"""


@pytest.mark.slow
def test_study_command_reports_a_failing_notebook_with_papermill(tmp_path, monkeypatch, capsys):
    """The CLI end to end with cheap stand-in notebooks executed by papermill: exit code, message, results."""
    monkeypatch.chdir(tmp_path)
    notebooks = tmp_path / "fake_notebooks"
    notebooks.mkdir()
    sources = {
        study.DATA_NOTEBOOK: "preset = 'demo'\ndata_root = None\noverrides = {}\nresults_dir = ''",
        study.TRAIN_NOTEBOOK: "arch = 'R50-FPN'\npreset = 'demo'\niterations = None\noutput_dir = None\n"
        "overrides = {}",
        study.COMPARE_NOTEBOOK: "results_dir = ''\narchs = []",
        study.QUALITATIVE_NOTEBOOK: "results_dir = ''\narchs = []",
    }
    for name, parameters in sources.items():
        body = (
            FAILING_TRAIN_NOTEBOOK
            if name == study.TRAIN_NOTEBOOK
            else "print(len(archs) if 'archs' in dir() else 0)"
        )
        nb = nbformat.v4.new_notebook(
            cells=[
                nbformat.v4.new_code_cell(parameters, metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell(body),
            ],
            metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        )
        nbformat.write(nb, notebooks / name)

    parser = argparse.ArgumentParser()
    study.add_study_arguments(parser)
    args = parser.parse_args(["--notebooks", str(notebooks), "--no-book", "-p", "iterations=3"])
    assert study.run_study(args) == 1
    out, err = capsys.readouterr()
    results = Path("results/demo-iterations=3")  # -p values: their own folder, never results/demo
    assert not Path("results/demo").exists()
    failed_nb = results / "R50-C4" / study.TRAIN_NOTEBOOK
    assert f"train R50-C4: ValueError: R50-C4 diverged\n  executed notebook: {failed_nb}" in err
    assert "R50-C4 diverged" in failed_nb.read_text()  # the traceback is in the executed copy
    for arch in ("R50-FPN", "R50-DC5"):
        assert json.loads((results / arch / "metrics.json").read_text())["arch"] == arch
        assert re.search(rf"^{arch}\s+1\.5\s+1\.5\s+2\.5", out, re.M)  # the closing table, from metrics.json
    assert (results / "04_qualitative.ipynb").is_file()


def tiny_study(tmp_path_factory: pytest.TempPathFactory, synthetic_root: Path) -> study.StudyPlan:
    """The whole study (all five notebooks, three backbones), executed by papermill with tiny parameters.

    Run once per test session: the notebook, book and browser tests all read what it wrote.
    """
    base = tmp_path_factory.getbasetemp() / "tiny_study"
    # two validation images keep the study's nine model evaluations cheap
    plan = study.StudyPlan(
        preset="demo",
        archs=ARCHITECTURES,
        results=base / "results" / "demo",
        notebooks=base / "notebooks",
        parameters={"data_root": str(base / "data"), **TINY},
        overrides=TINY_OVERRIDES,
        # a planted-trend collection of 2 images a season; the 2-iteration model's scores are all low
        trends={
            "images_dir": str(base / "trends_collection" / "images"),
            "metadata": str(base / "trends_collection" / "metadata.csv"),
            "annotations": str(base / "trends_collection" / "annotations.json"),
            "images_per_season": 2,
            "score_threshold": 0.0,
            "workers": 0,
            "n_boot": 50,
            "n_perm": 99,
        },
        seeds=(0, 1),  # every backbone twice, then 06_seeds over both
    )
    if (base / "done").is_file():
        return plan
    shutil.rmtree(base, ignore_errors=True)  # what an earlier, failed run left
    (base / "notebooks").mkdir(parents=True)
    for name in (
        study.DATA_NOTEBOOK,
        study.TRAIN_NOTEBOOK,
        study.COMPARE_NOTEBOOK,
        study.QUALITATIVE_NOTEBOOK,
        study.TRENDS_NOTEBOOK,
        study.SEEDS_NOTEBOOK,
    ):
        shutil.copy2(NOTEBOOKS / name, base / "notebooks" / name)
    shutil.copytree(synthetic_root, base / "data")
    coco_path = base / "data" / "annotations" / "instances_attributes_val.json"
    coco = json.loads(coco_path.read_text())
    keep = {im["id"] for im in coco["images"][:2]}
    coco["images"] = [im for im in coco["images"] if im["id"] in keep]
    coco["annotations"] = [a for a in coco["annotations"] if a["image_id"] in keep]
    coco_path.write_text(json.dumps(coco))
    committed = tree_digest(ROOT / "results" / "demo")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("OMP_NUM_THREADS", "1")  # the kernels' torch: one thread on the shared test machine
        failed = [r for r in study.run_notebooks(plan) if r.status != "ran"]
    assert not failed, failed
    assert tree_digest(ROOT / "results" / "demo") == committed  # a study elsewhere leaves the demo alone
    (base / "done").touch()
    return plan


def tree_digest(folder: Path) -> dict[str, str]:
    """Each file under ``folder`` -> its content's SHA-256 (to check that a folder was left alone)."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def build_tiny_book(tmp_path_factory: pytest.TempPathFactory, synthetic_root: Path) -> tuple[Path, Path]:
    """(results folder, html folder) of the tiny study's book, built once per test session; neither the
    study nor the book changes the committed ``results/demo``."""
    plan = tiny_study(tmp_path_factory, synthetic_root)
    build = plan.results.parents[1] / "build"
    html = build / "source-demo" / "_build" / "html"
    if not (html / "index.html").is_file():
        committed = tree_digest(ROOT / "results" / "demo")
        book.build_book(ROOT, plan.results, build)
        assert tree_digest(ROOT / "results" / "demo") == committed
    return plan.results, html


@pytest.mark.slow
def test_training_notebook_writes_metrics_and_glues_them(tmp_path_factory, synthetic_root, monkeypatch):
    plan = tiny_study(tmp_path_factory, synthetic_root)
    run_dir = plan.results / "R50-FPN"
    executed = run_dir / study.TRAIN_NOTEBOOK
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for iou_type in ("bbox", "segm"):
        assert set(metrics[iou_type]) >= {"coco", "iou_f1", "f1"}
    assert metrics["speed"]["inference_ms_per_image"] > 0
    assert (run_dir / "loss_curves.png").stat().st_size > 0
    assert (run_dir / "predictions.jpg").stat().st_size > 0
    assert len(training.read_metrics_log(run_dir)) >= 1

    values = glued(executed)
    for key in training.KEY_NUMBERS:
        value = rundir.metric(metrics, key)
        stored = float(values[f"R50-FPN_{key}"]["text/plain"])
        assert stored == pytest.approx(value, abs=1e-9) or (math.isnan(stored) and math.isnan(value))
    assert "image/png" in values["R50-FPN_loss_curves"]
    assert "2 iterations at batch 1" in values["R50-FPN_setting"]["text/plain"]
    # the parameters cells are hidden from the book; the runner sees the run as finished
    cells = nbformat.read(executed, as_version=4).cells
    hidden = [c for c in cells if "remove-cell" in c.metadata.get("tags", [])]
    assert {t for c in hidden for t in c.metadata["tags"]} >= {"parameters", "injected-parameters"}
    assert study.run_finished(executed, plan.train_parameters("R50-FPN"))
    # ... until the training code changes (content decides: its hash, stored in env.json)
    import fashionseg.train

    monkeypatch.setattr(fashionseg.train, "training_code_hash", lambda: "another version")
    assert not study.run_finished(executed, plan.train_parameters("R50-FPN"))


@pytest.mark.slow
def test_book_builds_from_a_tiny_study(tmp_path_factory, synthetic_root):
    results, html = build_tiny_book(tmp_path_factory, synthetic_root)
    pages = {p.relative_to(html).as_posix() for p in html.rglob("*.html")}
    assert {"index.html", "book/results.html", "results/demo/03_compare.html"} <= pages
    assert {"book/app.html", "book/trends.html", "results/demo/05_trends.html"} <= pages
    assert {f"results/demo/{arch}/02_train_backbone.html" for arch in ARCHITECTURES} <= pages
    text = (html / "book" / "results.html").read_text()
    # the numbers pasted with glue are the runs' own
    for arch, row in compare.ours_table(rundir.read_run_metrics(results, ARCHITECTURES)).iterrows():
        assert f">{row['mask_AP']:.1f}<" in text, arch
    # papermill's parameters cells are not in the book
    assert "injected-parameters" not in (html / "results/demo/R50-C4/02_train_backbone.html").read_text()
    # the second seed's runs sit beside the first's, and the seeds chapter and the intro read both
    assert {"book/seeds.html", "results/demo/06_seeds.html"} <= pages
    assert all((results / "seed-1" / arch / "metrics.json").is_file() for arch in ARCHITECTURES)
    answer = glued(results / study.SEEDS_NOTEBOOK)["seeds_answer"]["text/plain"].strip("'\"")
    assert "mean ± standard deviation over 2 seeds" in answer
    intro = BeautifulSoup((html / "book" / "intro.html").read_text(), "html.parser").get_text(" ")
    assert answer[:60] in " ".join(intro.split())


def test_constant_attribute_predictor_takes_the_mode_of_each_group_per_category():
    train = {
        "attributes": [
            {"id": 1, "supercategory": "pattern"},
            {"id": 2, "supercategory": "pattern"},
            {"id": 3, "supercategory": "length"},
            {"id": 4, "supercategory": "length"},
        ],
        "annotations": [
            {"category_id": 8, "attribute_ids": [1, 3]},
            {"category_id": 8, "attribute_ids": [2, 3]},
            {"category_id": 8, "attribute_ids": [2, 4]},
            {"category_id": 23, "attribute_ids": []},
            {"category_id": 10, "attribute_ids": [1]},
            {"category_id": 10, "attribute_ids": [2]},  # a tie: the lower id, so the choice is stable
        ],
    }
    assert statistics.constant_attributes(train) == {8: [2, 3], 23: [], 10: [1]}
