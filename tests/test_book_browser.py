"""The built book in a real browser: headless Chromium (Debian's package) driven by Playwright.

The book is built from a tiny study (see ``test_study.build_tiny_book``) and served on 127.0.0.1.
"""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urldefrag, urljoin, urlparse

import pytest
from support import CHROMIUM, CHROMIUM_ARGS
from test_study import build_tiny_book

from fashionseg import rundir
from fashionseg.report import compare

sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (a dev dependency)")

# pages that show figures: the chapters paste the comparison's and the trends' figures (their notebook pages
# link to them instead, so that each figure is shown once); the data and training notebooks show their own
RESULT_PAGES = (
    "book/results.html",
    "book/seeds.html",
    "book/trends.html",
    "results/demo/01_data.html",
    "results/demo/R50-FPN/02_train_backbone.html",
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason=f"{CHROMIUM} not found: install Debian's chromium package (apt-get install chromium)",
    ),
]


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves the book's files without logging each request."""

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def served_book(tmp_path_factory, synthetic_root) -> Iterator[tuple[str, Path]]:
    """(base URL, results folder) of the tiny study's book, served by http.server on a free local port."""
    results, html = build_tiny_book(tmp_path_factory, synthetic_root)
    handler = functools.partial(QuietHandler, directory=str(html))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", results
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    page = browser.new_page()
    yield page
    page.close()


def test_results_table_shows_three_backbones_with_numbers(served_book, page):
    base, results = served_book
    page.goto(base + "book/results.html")
    rows = page.eval_on_selector_all(
        "table tbody tr",
        "rows => rows.map(r => Array.from(r.querySelectorAll('th, td')).map(c => c.innerText.trim()))",
    )
    ours = {}
    for cells in rows:
        if "ours" in cells:
            # Table I's rows: (backbone, source, six APs); the backbone cell spans the seed row too
            ours[cells[0]] = [float(v) for v in cells[2:8]]
    assert set(ours) == {"R50-FPN", "R50-C4", "R50-DC5"}
    for arch, values in ours.items():
        expected = compare.ours_table(rundir.read_run_metrics(results, [arch])).loc[arch]
        assert values == pytest.approx(list(expected.round(2)), abs=0.006)
    # the per-backbone table pasted with {glue:text}: a number in every cell, no unresolved role
    text = page.inner_text("main")
    assert "glue:text" not in text
    per_backbone = page.eval_on_selector_all(
        "table",
        """ts => ts.filter(t => t.innerText.includes('training s/iter')).map(t =>
            Array.from(t.querySelectorAll('tbody tr')).map(r =>
                Array.from(r.cells).map(c => c.innerText.trim())))""",
    )
    assert len(per_backbone) == 1
    assert [row[0] for row in per_backbone[0]] == ["R50-FPN", "R50-C4", "R50-DC5"]
    for row in per_backbone[0]:
        assert len(row) == 6 and all(_is_number(n) for n in row[1:]), row


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("path", RESULT_PAGES)
def test_every_image_on_the_results_pages_loads(served_book, page, path):
    base, _ = served_book
    response = page.goto(base + path)
    assert response is not None and response.ok
    page.wait_for_load_state("load")
    images = page.eval_on_selector_all(
        "main img",
        "imgs => imgs.map(i => ({src: i.currentSrc || i.src, ok: i.complete && i.naturalWidth > 0}))",
    )
    assert images, f"no images on {path}"
    broken = [i["src"] for i in images if not i["ok"]]
    assert not broken, f"images that do not load on {path}: {broken}"


def test_internal_links_resolve(served_book, page):
    base, _ = served_book
    assert page.request.get(base + "index.html").ok  # a redirect to the first chapter
    queue, seen, broken = [base + "book/intro.html"], set(), []
    while queue:
        url = queue.pop()
        if url in seen:
            continue
        seen.add(url)
        response = page.goto(url)
        if response is None or not response.ok:
            broken.append(url)
            continue
        hrefs = page.eval_on_selector_all("a[href]", "as => as.map(a => a.href)")
        ids = set(page.eval_on_selector_all("[id]", "els => els.map(e => e.id)"))
        for href in hrefs:
            target, fragment = urldefrag(href)
            if urlparse(target).netloc != urlparse(base).netloc:
                continue
            if target == urldefrag(url)[0] and fragment and fragment not in ids:
                broken.append(f"{url}#{fragment}")
            if target.endswith(".html") and target not in seen:
                queue.append(target)
            elif target not in seen and not target.endswith("/"):
                seen.add(target)
                if not page.request.get(urljoin(base, target)).ok:
                    broken.append(target)
    assert len([u for u in seen if u.endswith(".html")]) >= 10
    assert not broken, f"internal links that do not resolve: {broken}"


# what a reader must never see on a page: an error, a raw glue role, a placeholder
UNFINISHED = (
    "Traceback (most recent call last)",
    "Error:",
    "glue:text",
    "{glue",
    "TODO",
    "TBD",
    "Lorem ipsum",
)


def test_every_page_reads_clean_in_a_browser(served_book, page):
    """Each page of the built book opened in Chromium: no error output, unresolved glue or placeholder, no
    empty cell output; a full-page screenshot of each is kept in _build/screenshots/ for a reader of the
    test run to look at."""
    base, _ = served_book
    shots = Path(__file__).resolve().parents[1] / "_build" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    page.goto(base + "book/intro.html")
    pages = page.eval_on_selector_all(
        "nav.bd-links a.reference.internal", "as => [...new Set(as.map(a => a.href.split('#')[0]))]"
    )
    assert len(pages) >= 12, pages  # the table of contents: every chapter and notebook page
    problems = []
    for url in [base + "book/intro.html", *pages]:
        response = page.goto(url)
        assert response is not None and response.ok, url
        page.wait_for_load_state("load")
        name = url.removeprefix(base).replace("/", "_").removesuffix(".html")
        page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
        text = page.inner_text("main")
        problems += [f"{name}: {token!r}" for token in UNFINISHED if token in text]
        empty = page.eval_on_selector_all(
            "main .cell_output",
            "os => os.filter(o => !o.innerText.trim() && !o.querySelector('img, svg, table')).length",
        )
        if empty:
            problems.append(f"{name}: {empty} empty cell output(s)")
    assert not problems, problems
