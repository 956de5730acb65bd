"""The built book says only what its data show: the chapters type no figure by hand (they glue them from the
executed notebooks), every glue reference is resolved, and every table and figure is shown on one page.

The slow checks read the HTML of the tiny study's book (``test_study.build_tiny_book``, built once per test
session and shared with the book and browser tests); the scanners they use are tested first on small
hand-made pages.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from test_study import build_tiny_book

ROOT = Path(__file__).resolve().parents[1]
# the chapters whose numbers come from executed notebooks (the method chapter's recipe from the runs' files)
GLUING_CHAPTERS = ("intro", "method", "results", "seeds", "limitations", "trends", "reproduce", "app")

# Numbers a chapter may type because they define something rather than report a result: the seed's
# published setting, a fixed level of a method, a default or a limit of the code, an example command's value.
# Any other figure (a decimal, a percentage, a whole number from 10 up, a time) must be glued.
DEFINITIONS: dict[str, dict[str, str]] = {
    "intro": {"1000": "the seed's schedule, as its paper states it"},
    "method": {
        "28": "the mask head's output resolution (28×28), an architecture constant",
        "16": "the stride of res4 and of DC5's dilated res5, an architecture constant",
        "32": "GroupNorm's groups, a constant of the model code",
        # the known differences to detectron2: constants of the two libraries' code and configs
        **dict.fromkeys(
            ("0.485", "0.456", "0.406", "0.229", "0.224", "0.225"), "torchvision's ImageNet mean/std"
        ),
        **dict.fromkeys(("103.53", "116.28", "123.675"), "detectron2's BGR pixel mean"),
        "256": "the mask head's channels, an architecture constant",
        **dict.fromkeys(
            ("2000", "1000", "12000", "6000"), "proposal counts of ModelConfig and detectron2's configs"
        ),
        **dict.fromkeys(("0.01", "0.001"), "detectron2's predictor initialisation std"),
    },
    "results": {"100": "the 0–100 AP scale", "1000": "the seed's schedule"},
    "seeds": {
        "100": "the 0–100 AP scale",
        "95%": "the level of the bootstrap intervals",
        "32": "COCO's small-object limit (32² pixels)",
        "96": "COCO's large-object limit (96² pixels)",
        "0.5": "the matching IoU of the attribute scores",
        "0,1,2": "the seeds of the documented command",
    },
    "limitations": {"1000": "the seed's schedule", "255": "detectron2's BGR 0–255 input range"},
    "trends": {
        "95%": "the level of the bootstrap intervals",
        "5%": "the nominal level of the tests and of the false-discovery rate",
        "0.05": "the nominal level (p < 0.05), and the lowest attribute score stored",
        "64": "photos per saved batch of predictions (trends.inference)",
    },
    "reproduce": {
        "200": "an example -p value",
        "600": "an example -p value",
        "128": "an example -p value",
        "1000": "the seed preset's schedule",
        "800": "the seed preset's image size",
        "90,000": "detectron2's 1x schedule",
        "16": "detectron2's 1x batch",
    },
    "app": {
        "100": "the 0–100 AP scale",
        "1333": "the longest side photos are scaled down to (app)",
        "20": "the upload limit in MB (--max-upload-mb)",
        "24": "the example of a large photo (24 megapixels)",
        "50": "the demo preset's detections per image (model.box_detections_per_img)",
        "512": "the benchmark's image size (benchmarks/app_latency.py)",
        "0.5": "the app's default score threshold and detection floor",
        "16": "16-bit images (a format the upload converts)",
        "127.0.0.1": "the address the server listens on",
    },
}

NUMBER = re.compile(r"(?<![\w\-/.^])\d+(?:[.,]\d+)*%?")
TIME_UNIT = re.compile(r"\s*(?:ms|s|sec|seconds?|min|minutes?|h|hours?)\b")
SPELLED = re.compile(
    r"\b(?:eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|"
    r"forty|fifty|hundred|thousand)\b|\b(?:one|two|three|four|five|six|seven|eight|nine|ten)\s+"
    r"(?:minutes?|seconds?|hours?)\b",
    re.IGNORECASE,
)
NOT_PROSE = "pre, code, script, style, img, a.headerlink, .pasted-text, div.output, div.cell_output"


def article(html: str) -> BeautifulSoup:
    """The page's article (Jupyter Book's main text), parsed."""
    soup = BeautifulSoup(html, "html.parser")
    return soup.find("article") or soup


def prose(html: str) -> str:
    """The article's text without code, pasted glue values and outputs: what the author typed."""
    main = article(html)
    for tag in main.select(NOT_PROSE):
        tag.decompose()
    return re.sub(r"\s+", " ", main.get_text(" "))


def typed_figures(html: str, allowed: dict[str, str] | None = None) -> list[str]:
    """Figures typed by hand in a page's prose: decimals, percentages, whole numbers from 10 up, numbers
    followed by a time unit, and large numbers spelled out; ``allowed`` (token -> why) are definitions."""
    text, allowed = prose(html), allowed or {}
    found = []
    for match in NUMBER.finditer(text):
        token = match.group()
        if token.rstrip(".,") != token:
            token = token.rstrip(".,")
        figure = (
            "." in token
            or "%" in token
            or int(token.replace(",", "")) >= 10
            or TIME_UNIT.match(text, match.end())
        )
        if figure and token not in allowed:
            found.append(token)
    found += [m.group() for m in SPELLED.finditer(text)]
    return found


def glue_references(markdown: str) -> tuple[int, int]:
    """(``{glue:text}`` roles, ``{glue}`` and ``{image}`` directives) in a chapter's MyST source: the values,
    and the tables and figures (a figure is the file its notebook wrote, shown with ``{image}``)."""
    blocks = len(re.findall(r"^```\{(?:glue|image)\}", markdown, re.M))
    return len(re.findall(r"\{glue:text\}`", markdown)), blocks


def pasted(html: str) -> tuple[int, int]:
    """(pasted text values, pasted tables and figures) of a page: what its glue references became."""
    main = article(html)
    values = len(main.select("span.pasted-text"))
    blocks = [
        d for d in main.select("div.output.text_html") if not d.find_parent("div", class_="cell_output")
    ]
    images = [
        i
        for i in main.find_all("img")
        if "_images/" in i.get("src", "")
        and not i.find_parent("div", class_="cell_output")
        and not i.find_parent("figure")
    ]
    return values, len(blocks) + len(images)


def shown_items(html: str) -> set[str]:
    """The figures (image files) and tables (their text) a page shows in its article."""
    main = article(html)
    images = {Path(i["src"]).name for i in main.find_all("img") if "_images/" in i.get("src", "")}
    tables = {
        "table: " + re.sub(r"\s+", " ", t.get_text(" ")).strip()
        for t in main.select("table.dataframe")
        if t.find("td")
    }
    return images | tables


def duplicated(pages: dict[str, str], chapters: set[str]) -> dict[str, list[str]]:
    """Each item a chapter page shows that some other page (or another chapter) shows too, with the pages."""
    where: dict[str, list[str]] = defaultdict(list)
    for name, html in pages.items():
        for item in shown_items(html):
            where[item].append(name)
    return {
        item: names for item, names in where.items() if len(names) > 1 and any(n in chapters for n in names)
    }


# --- the scanners on hand-made pages ---------------------------------------------------------------------


def _page(body: str) -> str:
    return f"<html><body><nav>2025 120 nav</nav><article class='bd-article'>{body}</article></body></html>"


def test_typed_figures_finds_what_was_typed_and_skips_glue_code_and_names():
    html = _page(
        "<p>R50-FPN and ResNet-50 (res5, AP50) learn <span class='pasted-text'>4.8</span> mask AP in "
        "<code>-p iterations=200</code>; the learning curve reads 0.24 at iteration 100, the simulation "
        "covered 95.8% of the time, training took 35 minutes, eleven categories, under two seconds, "
        "sampling ratio 2.</p><div class='output text_html'><table><tr><td>0.27</td></tr></table></div>"
    )
    assert typed_figures(html) == ["0.24", "100", "95.8%", "35", "eleven", "two seconds"]
    assert typed_figures(html, {"100": "a definition", "95.8%": "x"}) == [
        "0.24",
        "35",
        "eleven",
        "two seconds",
    ]
    assert typed_figures(_page("<p>1,999 permutations; 90,000 iterations.</p>"), {"90,000": "1x"}) == [
        "1,999"
    ]


def test_glue_references_and_what_they_became():
    source = (
        "A {glue:text}`nb.ipynb::x:.1f` and {glue:text}`nb.ipynb::y:d`.\n\n```{glue} table\n:doc: nb\n```\n"
    )
    assert glue_references(source) == (2, 1)
    resolved = _page(
        "<p><span class='pasted-text'>1.0</span> <span class='pasted-text'>3</span></p>"
        "<div class='output text_html'><table class='dataframe'><tr><td>1</td></tr></table></div>"
        "<figure><img src='../_images/logo.png'></figure>"
    )
    assert pasted(resolved) == (2, 1)
    # an unresolved glue reference leaves nothing behind: one value fewer than the source asks for
    assert pasted(_page("<p><span class='pasted-text'>1.0</span></p><img src='../_images/a.png'>")) == (1, 1)


def test_duplicated_finds_a_chapter_item_shown_on_another_page():
    table = "<table class='dataframe'><tr><th>R50-FPN</th><td>4.84</td></tr></table>"
    empty = "<table class='dataframe'><tr><th>source</th></tr></table>"
    pages = {
        "book/results.html": _page(f"<img src='../_images/a.png'>{table}{empty}"),
        "results/demo/03_compare.html": _page(
            f"<div class='cell_output'><img src='../../_images/a.png'>{empty}</div>"
        ),
        "results/demo/R50-FPN/02_train_backbone.html": _page("<img src='../../../_images/b.png'>"),
        "results/demo/R50-C4/02_train_backbone.html": _page("<img src='../../../_images/b.png'>"),
    }
    assert duplicated(pages, {"book/results.html"}) == {
        "a.png": ["book/results.html", "results/demo/03_compare.html"]
    }


# --- the tiny study's book -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def book_html(tmp_path_factory, synthetic_root) -> Path:
    _, html = build_tiny_book(tmp_path_factory, synthetic_root)
    return html


def _chapter_page(html: Path, chapter: str) -> str:
    return (html / "book" / f"{chapter}.html").read_text()


@pytest.mark.slow
@pytest.mark.parametrize("chapter", GLUING_CHAPTERS)
def test_chapters_type_no_figure_by_hand(book_html, chapter):
    found = typed_figures(_chapter_page(book_html, chapter), DEFINITIONS.get(chapter))
    assert not found, (
        f"book/{chapter}.md types figures by hand: {found}; glue them from an executed notebook, or add a "
        "definition (not a result) to DEFINITIONS with the reason"
    )


@pytest.mark.slow
@pytest.mark.parametrize("chapter", sorted(p.stem for p in (ROOT / "book").glob("*.md")))
def test_every_glue_reference_is_resolved(book_html, chapter):
    roles, directives = glue_references((ROOT / "book" / f"{chapter}.md").read_text())
    page = _chapter_page(book_html, chapter)
    assert pasted(page) == (roles, directives), f"book/{chapter}.md: unresolved glue"
    # myst-nb writes a glued image into _images only where its own page shows it: a chapter's <img> can
    # point at nothing (Chromium's image test finds that too, where Chromium is installed)
    images = [i["src"] for i in article(page).find_all("img") if "_images/" in i.get("src", "")]
    missing = [src for src in images if not (book_html / "book" / src).resolve().is_file()]
    assert not missing, f"book/{chapter}.html shows images that are not in the build: {missing}"
    assert "{glue" not in prose(page) and "glue:text" not in prose(page)


@pytest.mark.slow
def test_every_table_and_figure_is_shown_once(book_html):
    pages = {
        p.relative_to(book_html).as_posix(): p.read_text()
        for p in book_html.rglob("*.html")
        if p.parent.name not in ("_static", "_sources") and p.name not in ("genindex.html", "search.html")
    }
    chapters = {f"book/{p.stem}.html" for p in (ROOT / "book").glob("*.md")}
    assert chapters <= set(pages)
    shown = {name for name in chapters if shown_items(pages[name])}
    assert {"book/results.html", "book/trends.html"} <= shown
    twice = duplicated(pages, chapters)
    assert not twice, f"shown on more than one page (show it once and link to it): {twice}"
