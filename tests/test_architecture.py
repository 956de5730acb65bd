"""ARCHITECTURE.md against the code: its "Tracing one number" section names files and functions that exist,
each step calls the next, and no module grows past the size one reader can hold."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

from fashionseg.config import ARCHITECTURES
from fashionseg.report.glue import glue_keys
from fashionseg.rundir import METRICS

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "fashionseg"
MAX_MODULE_LINES = 700
MAX_TRACE_FILES = 4
PATH = re.compile(r"`([\w./-]+\.(?:md|ipynb|py))`")  # a file named in backticks
FUNCTION = re.compile(r"`(\w+)\(\)`")  # a function named in backticks, as `evaluate()`
GLUE_ROLE = re.compile(r"\{glue:text\}`\.\./results/demo/[\w-]+/(\w+)\.ipynb::([\w-]+):")


def trace_steps() -> list[str]:
    """The numbered items of ARCHITECTURE.md's "Tracing one number" section, one string each."""
    text = (ROOT / "ARCHITECTURE.md").read_text()
    section = text.split("## Tracing one number\n", 1)[1].split("\n## ", 1)[0]
    return [step.strip() for step in re.split(r"^\d+\. ", section, flags=re.M)[1:]]


def resolve(name: str) -> Path:
    """A path the section names: from the repository root, or from the package (``evaluation/runs.py``)."""
    return ROOT / name if (ROOT / name).exists() else PACKAGE / name


def defined(path: Path) -> set[str]:
    """The functions and classes a module defines at its top level."""
    tree = ast.parse(path.read_text())
    return {n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.ClassDef)}


def called(tree: ast.AST) -> set[str]:
    """The names a piece of code calls (``f(...)`` and ``module.f(...)``)."""
    calls = [n.func for n in ast.walk(tree) if isinstance(n, ast.Call)]
    return {getattr(f, "id", None) or getattr(f, "attr", None) for f in calls} - {None}


def code_of(path: Path) -> ast.AST:
    """A module's or a notebook's code (its code cells joined) as one tree."""
    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text())["cells"]
        return ast.parse("\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code"))
    return ast.parse(path.read_text())


def test_the_trace_of_the_books_mask_ap_takes_at_most_four_files():
    steps = trace_steps()
    hops = [resolve(PATH.search(step).group(1)) for step in steps]
    assert len(hops) <= MAX_TRACE_FILES, [h.relative_to(ROOT) for h in hops]
    assert [h.suffix for h in hops[:2]] == [".md", ".ipynb"]  # the book page, then the notebook

    # every file the section names exists; every function it names is defined in one of its modules
    named = [resolve(p) for step in steps for p in PATH.findall(step)]
    assert all(path.is_file() for path in named), [p for p in named if not p.is_file()]
    definitions = set().union(*(defined(p) for p in named if p.suffix == ".py"))
    functions = [f for step in steps for f in FUNCTION.findall(step)]
    assert functions and set(functions) <= definitions, set(functions) - definitions

    # step 1: the book page shows the key the notebook glues
    (notebook, key), *_ = GLUE_ROLE.findall(steps[0])
    assert notebook == hops[1].stem and key in glue_keys(notebook, ARCHITECTURES)
    assert f"{notebook}.ipynb::{key}:" in hops[0].read_text()
    # step 2: the notebook reads it from metrics.json where METRICS says
    arch, name = key.split("_", 1)
    path = "(" + ", ".join(f'"{k}"' for k in METRICS[name]) + ")"  # as the section writes it
    assert arch in ARCHITECTURES and f"`{name}`" in steps[1] and f"`{path}`" in steps[1]
    # each later step calls the first function the next step names, and the notebook its own functions
    for hop, following in zip(hops[1:], steps[2:], strict=False):
        assert FUNCTION.findall(following)[0] in called(code_of(hop)), hop.name
    assert set(FUNCTION.findall(steps[1])) <= called(code_of(hops[1]))
    # the last file holds the arithmetic's sequence: it calls every stage the section names
    assert set(FUNCTION.findall(steps[-1])) <= called(code_of(hops[-1])) | defined(hops[-1])
    assert {"accumulate", "coco_result"} <= called(code_of(hops[-1]))


def test_no_module_exceeds_the_size_one_reader_holds():
    sizes = {
        p.relative_to(PACKAGE).as_posix(): len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")
    }
    assert not {k: n for k, n in sizes.items() if n > MAX_MODULE_LINES}
