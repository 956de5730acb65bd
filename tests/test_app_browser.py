"""End to end in a real browser: ``fashionseg app`` on 127.0.0.1 with a tiny trained checkpoint, driven by
headless Chromium through Playwright. Saves a screenshot of the page as a test artifact (path printed)."""

import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import torch
from matplotlib import cbook
from PIL import Image
from support import CHROMIUM, CHROMIUM_ARGS, tiny_overrides

from fashionseg.config import load_config
from fashionseg.train import train

DETECTIONS = 6

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).is_file(),
        reason=f"Chromium not found at {CHROMIUM}; install the system package: apt-get install -y chromium",
    ),
    pytest.mark.skipif(
        importlib.util.find_spec("playwright") is None,
        reason="Playwright for Python is missing: pip install playwright (a dev dependency)",
    ),
]


@pytest.fixture(scope="session")
def tiny_results(synthetic_root, tmp_path_factory) -> Path:
    """results/demo/R50-FPN trained for 2 iterations; every box kept (score threshold 0), 6 per image."""
    results = tmp_path_factory.mktemp("app_results")
    torch.manual_seed(0)
    extra = {
        "device": "cpu",
        "model.box_score_thresh": 0.0,
        "model.box_detections_per_img": DETECTIONS,
        "solver.max_iter": 2,
        "solver.steps": [1],
        "solver.warmup_iters": 1,
    }
    overrides = tiny_overrides(synthetic_root, results / "demo", **extra)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the machine's cores are shared with the rest of the suite
    try:
        train(load_config("demo", overrides), show_progress=False)
    finally:
        torch.set_num_threads(threads)
    return results


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def app_url(tiny_results, tmp_path_factory):
    """``fashionseg app`` serving the tiny run on a free localhost port; stopped after the tests."""
    port = free_port()
    log = tmp_path_factory.mktemp("app_server") / "server.log"
    command = [sys.executable, "-m", "fashionseg", "app", "--port", str(port), "--results", str(tiny_results)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with log.open("w") as out:
        server = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=tiny_results)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                    if response.read() == b"ok":
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the app did not start (exit code {server.poll()}):\n{log.read_text()}")
            time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture
def page(app_url):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1200}, accept_downloads=True)
        page.set_default_timeout(60_000)
        page.goto(app_url)
        yield page
        browser.close()


def test_upload_shows_overlay_table_and_errors(page, tmp_path):
    from playwright.sync_api import expect

    uploader = page.get_by_test_id("stFileUploader").locator("input[type=file]")
    photo = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)  # a real JPEG photo, 512 x 600
    uploader.set_input_files(photo)
    expect(page.get_by_test_id("stImage").locator("img")).to_be_visible()
    expect(page.get_by_test_id("stDataFrame")).to_be_visible()
    # the model ran at the default threshold's floor (0.5), above every score of the 2-iteration model
    expect(page.get_by_test_id("stImageCaption")).to_have_text("0 of 0 detections shown")

    score_slider = page.get_by_test_id("stSlider").first.get_by_role("slider")
    score_slider.focus()
    score_slider.press("Home")  # threshold 0: the model runs again at floor 0 and every detection shows
    caption = f"{DETECTIONS} of {DETECTIONS} detections shown"
    expect(page.get_by_test_id("stImageCaption")).to_have_text(caption)
    with page.expect_download() as download:
        page.get_by_role("button", name="Detections (COCO-results JSON)").click()
    results = json.loads(Path(download.value.path()).read_text())
    assert len(results) == DETECTIONS and {r["image_id"] for r in results} == {1}
    with page.expect_download() as download:
        page.get_by_role("button", name="Overlay (PNG)").click()
    assert Image.open(download.value.path()).size == Image.open(photo).size

    uploader.set_input_files({"name": "notes.png", "mimeType": "image/png", "buffer": b"shopping list"})
    expect(page.get_by_test_id("stAlert")).to_contain_text("notes.png is not a readable image")
    expect(page.get_by_test_id("stImage")).to_have_count(1)  # the photo's result stays
    expect(page.get_by_role("button", name="Overlay (PNG)")).to_be_visible()
    expect(page.get_by_test_id("stStatusWidget")).to_be_hidden()  # the rerun has finished drawing
    screenshot = tmp_path / "app.png"
    page.screenshot(path=str(screenshot), full_page=True)
    print(f"screenshot: {screenshot}")
    assert screenshot.stat().st_size > 10_000
