"""The committed results hold nothing of the machine that made them: no absolute path anywhere."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TEXT_SUFFIXES = {".ipynb", ".json", ".jsonl", ".yaml", ".yml", ".csv", ".md", ".txt"}
# a POSIX path from the root (/home/..., /work/..., /tmp/...), a home-relative one, or a Windows drive
# (the Windows form names its usual roots: COCO's RLE strings hold "e:\\1S3" and the like)
ABSOLUTE_PATH = re.compile(
    r"(?:(?<![\w.:/~-])/(?:[\w.-]+/)+[\w.-]*|~/[\w.-]+|\b[A-Z]:\\\\?(?:Users|Windows|ProgramData)\b)"
)


def _text_of(path: Path) -> str:
    """The file's text; for a notebook everything but the base64 data of its images."""
    if path.suffix != ".ipynb":
        return path.read_text(errors="replace")
    nb = json.loads(path.read_text())
    for cell in nb.get("cells", []):
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            # images, shown or glued (papermill's record of a glued one): base64, not text
            images = [m for m in data if m.removeprefix("application/papermill.record/").startswith("image/")]
            for mime in [m for m in images if not m.endswith("image/svg+xml")]:
                data[mime] = ""
    return json.dumps(nb)


def absolute_paths(text: str) -> list[str]:
    # URLs are addresses, not paths of this machine
    return [m for m in ABSOLUTE_PATH.findall(re.sub(r"\w+://\S+", "", text))]


def test_the_scanner_finds_paths_and_ignores_urls_and_relative_paths():
    assert absolute_paths('"/work/main/.venv/lib/tqdm/auto.py:21: Warning"') == [
        "/work/main/.venv/lib/tqdm/auto.py"
    ]
    assert absolute_paths("model: /root/x/model_final.pt (12 bytes)") == ["/root/x/model_final.pt"]
    assert absolute_paths(r"C:\Users\me") == [r"C:\Users"]
    assert absolute_paths('{"counts": "e:\\\\1S3d0J4N5O:\\\\2"}') == []  # RLE, not a path
    assert absolute_paths("see https://fashionpedia.github.io/home/ and results/demo/R50-FPN/x.json") == []
    assert absolute_paths("1/K of 3/4, images/s, AP^IoU+F1, and/or") == []


RESULT_FILES = sorted(p for p in (ROOT / "results").rglob("*") if p.is_file() and p.suffix in TEXT_SUFFIXES)


@pytest.mark.parametrize("path", RESULT_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_committed_results_hold_no_absolute_path(path):
    found = absolute_paths(_text_of(path))
    assert not found, f"{path.relative_to(ROOT)} names paths of the machine that made it: {found[:3]}"
