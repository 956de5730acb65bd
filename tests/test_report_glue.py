"""The glue keys have one table (fashionseg.report.glue.GLUE_KEYS): every key a book page reads is in it,
every key a notebook glues is in it, and the committed executed notebooks glued exactly its keys."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from fashionseg.config import ARCHITECTURES
from fashionseg.report.glue import GLUE_KEYS, glue_keys

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
# {glue:text}`../results/demo/<notebook>.ipynb::<key>:<format>` and ```{glue} <key>\n:doc: <notebook>.ipynb
ROLE = re.compile(r"\{glue:text\}`[^`]*?([\w-]+)\.ipynb::([^:`]+)")
DIRECTIVE = re.compile(r"^```\{glue\} (\S+)\n:doc: [^\n]*?([\w-]+)\.ipynb", re.M)


def book_references() -> list[tuple[str, str, str]]:
    """(page, notebook, key) of every glue reference in the book's pages."""
    refs = []
    for page in sorted((ROOT / "book").glob("*.md")):
        text = page.read_text()
        refs += [(page.name, nb, key) for nb, key in ROLE.findall(text)]
        refs += [(page.name, nb, key) for key, nb in DIRECTIVE.findall(text)]
    return refs


def test_every_key_a_book_page_reads_is_in_the_table():
    refs = book_references()
    assert len(refs) > 50  # the scanner finds the pages' references
    unknown = [r for r in refs if r[2] not in glue_keys(r[1], ARCHITECTURES)]
    assert not unknown, f"glue keys the book reads that no notebook writes (GLUE_KEYS): {unknown}"


def _glue_calls(notebook: Path) -> list[ast.expr]:
    code = "\n".join(
        "".join(c["source"]) for c in json.loads(notebook.read_text())["cells"] if c["cell_type"] == "code"
    )
    return [
        node.args[0]
        for node in ast.walk(ast.parse(code))
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "glue"
    ]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_every_key_a_notebook_glues_is_in_the_table(notebook):
    table = GLUE_KEYS[notebook.stem]
    calls = _glue_calls(notebook)
    assert calls
    for key in calls:
        if isinstance(key, ast.Constant):
            assert key.value in table, f"{notebook.name} glues {key.value!r}, which GLUE_KEYS lacks"
        else:  # an f-string: each of its literal parts is part of a key of the table
            parts = [v.value for v in getattr(key, "values", []) if isinstance(v, ast.Constant)]
            assert all(any(p in k for k in table) for p in parts), (notebook.name, ast.unparse(key))


def _glued(executed: Path) -> list[str]:
    """The keys an executed notebook glued, in order (papermill's scrapbook records)."""
    cells = json.loads(executed.read_text())["cells"]
    outputs = [o for c in cells for o in c.get("outputs", [])]
    return [o["metadata"]["scrapbook"]["name"] for o in outputs if "scrapbook" in o.get("metadata", {})]


EXECUTED = sorted((ROOT / "results" / "demo").glob("*.ipynb")) + sorted(
    (ROOT / "results" / "demo").glob("*/02_train_backbone.ipynb")
)


@pytest.mark.parametrize("executed", EXECUTED, ids=lambda p: str(p.relative_to(ROOT / "results")))
def test_the_committed_notebooks_glued_exactly_the_tables_keys(executed):
    archs = [executed.parent.name] if executed.stem == "02_train_backbone" else ARCHITECTURES
    assert _glued(executed) == glue_keys(executed.stem, archs)
