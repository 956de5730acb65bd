"""The Jupyter Book: its source folder for one results folder, and the HTML build.

The narrative pages (``book/*.md``) and ``_toc.yml`` name the executed notebooks of :data:`BOOK_RESULTS`
(``results/demo``), so the demo's book builds in place. A book of any other results folder is built from a
copy of the book files in which exactly two kinds of reference are retargeted: the table of contents'
``file`` entries and part captions (rewritten as parsed YAML, :func:`retarget_toc`), and the pages'
book-relative references ``../results/demo/...`` (the ``{doc}`` and ``{glue}`` targets,
:func:`retarget_page`). Prose and command lines that mention the demo's folder are left as they are.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from fashionseg.errors import FashionsegError

BOOK_PRESET = "demo"  # the preset whose results _toc.yml and book/*.md name
BOOK_RESULTS = f"results/{BOOK_PRESET}"  # relative to the repository root
_PAGE_REFERENCE = re.compile(rf"(?<=\.\./){re.escape(BOOK_RESULTS)}/")  # ../results/demo/ in book/*.md


def _toc_files(toc: Any) -> list[str]:
    if isinstance(toc, dict):
        own = [toc["file"]] if isinstance(toc.get("file"), str) else []
        return own + [f for k, v in toc.items() if k != "file" for f in _toc_files(v)]
    if isinstance(toc, list):
        return [f for item in toc for f in _toc_files(item)]
    return []


def retarget_toc(toc: Any, results: str) -> Any:
    """A copy of the parsed ``_toc.yml`` whose ``file`` entries under :data:`BOOK_RESULTS` (and captions
    naming it in parentheses) name ``results`` (e.g. ``results/seed``) instead."""
    if isinstance(toc, list):
        return [retarget_toc(item, results) for item in toc]
    if not isinstance(toc, dict):
        return toc
    out = {}
    for key, value in toc.items():
        if key == "file" and isinstance(value, str) and value.startswith(f"{BOOK_RESULTS}/"):
            value = results + value.removeprefix(BOOK_RESULTS)
        elif key == "caption" and isinstance(value, str):
            value = value.replace(f"({BOOK_RESULTS})", f"({results})")
        out[key] = retarget_toc(value, results)
    return out


def retarget_page(text: str, results: str) -> str:
    """A narrative page whose references to the executed notebooks (``../results/demo/...``, relative to
    ``book/``) point into ``results`` instead."""
    return _PAGE_REFERENCE.sub(f"{results}/", text)


def book_source(root: Path, results_dir: Path, build_dir: Path) -> Path:
    """The folder to build the book from.

    For :data:`BOOK_RESULTS` that is ``root`` itself; for any other results folder (another preset, or
    another place) it is a copy of the book files under ``build_dir/source-<name>/`` whose table of contents
    and page references name ``results/<name>/`` (:func:`retarget_toc`, :func:`retarget_page`), with the
    results copied beside them (weights left out). Raises FashionsegError naming the executed notebooks the
    table of contents needs but that are missing.
    """
    name = results_dir.name
    source = root
    if results_dir.resolve() != (root / BOOK_RESULTS).resolve():
        source = build_dir / f"source-{name}"
        shutil.rmtree(source, ignore_errors=True)
        (source / "book").mkdir(parents=True)
        shutil.copy2(root / "_config.yml", source / "_config.yml")
        toc = retarget_toc(yaml.safe_load((root / "_toc.yml").read_text()), f"results/{name}")
        (source / "_toc.yml").write_text(yaml.safe_dump(toc, sort_keys=False, allow_unicode=True))
        for path in sorted((root / "book").rglob("*")):
            target = source / path.relative_to(root)
            if path.is_dir():
                target.mkdir(parents=True, exist_ok=True)
            elif path.suffix == ".md":
                target.write_text(retarget_page(path.read_text(), f"results/{name}"))
            else:
                shutil.copy2(path, target)
        if results_dir.is_dir():
            shutil.copytree(
                results_dir,
                source / "results" / name,
                ignore=shutil.ignore_patterns("*.pt", "checkpoints"),
            )
    toc = yaml.safe_load((source / "_toc.yml").read_text())
    missing = [
        f"{f}.ipynb"
        for f in _toc_files(toc)
        if f.startswith("results/") and not (source / f"{f}.ipynb").is_file()
    ]
    if missing:
        raise FashionsegError(
            f"the book needs executed notebooks that are missing: {', '.join(missing)}; "
            f"run `fashionseg study --preset {name}` first"
        )
    return source


def build_book(root: Path, results_dir: Path, build_dir: Path | None = None) -> Path:
    """Build the HTML book from ``results_dir`` with warnings as errors (a missing run or glue key fails);
    return the folder holding ``index.html``."""
    source = book_source(root, results_dir, build_dir or root / "_build")
    jupyter_book = Path(sys.executable).parent / "jupyter-book"
    command = [
        str(jupyter_book if jupyter_book.exists() else "jupyter-book"),
        "build",
        str(source),
        "--all",
        "-W",
        "-n",
        "--keep-going",
    ]
    print("book: " + " ".join(command), flush=True)
    if subprocess.run(command, check=False).returncode:
        raise FashionsegError(
            "the book build failed (warnings count as errors): see the messages above; the executed "
            f"notebooks it reads are under {results_dir}"
        )
    html = source / "_build" / "html"
    print(f"book: {html / 'index.html'}")
    return html
