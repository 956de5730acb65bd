"""Take the book's screenshot of the app (book/images/app.png) with a trained run.

Starts ``fashionseg app`` on a free localhost port with ``--weights``, opens it in headless Chromium (Debian's
package, driven by Playwright), uploads the synthetic example image, waits for the overlay and the detection
table, and saves a full-page screenshot. Run it after ``make study`` so that the picture shows the committed
demo model:

    python scripts/app_screenshot.py                                 # the book's picture (demo model)
    python scripts/app_screenshot.py --weights runs/demo/R50-C4 --out /tmp/app.png
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_health(url: str, server: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the app exited with code {server.returncode}; run it by hand to see why")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read() == b"ok":
                    return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"the app did not answer at {url} within {seconds:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--weights", default="results/demo/R50-FPN", help="run folder or model_final.pt")
    parser.add_argument("--out", type=Path, default=Path("book/images/app.png"))
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--width", type=int, default=1400)
    parser.add_argument(
        "--score-threshold",
        type=float,
        default=0.5,
        help="move the page's score slider here first (steps of 0.05; the page starts at 0.5)",
    )
    args = parser.parse_args()
    if not Path(args.chromium).is_file():
        raise SystemExit(f"{args.chromium} not found: apt-get install chromium")

    from playwright.sync_api import expect, sync_playwright

    from fashionseg.app.logic import synthetic_example

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "fashionseg", "app", "--weights", args.weights, "--port", str(port)]
    with tempfile.TemporaryDirectory() as tmp:
        image = Path(tmp) / "synthetic_figures.png"
        synthetic_example().save(image)
        server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        try:
            wait_for_health(url, server)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": args.width, "height": 1000})
                page.set_default_timeout(120_000)
                page.goto(url)
                page.get_by_test_id("stFileUploader").locator("input[type=file]").set_input_files(str(image))
                expect(page.get_by_test_id("stImage").locator("img")).to_be_visible()
                expect(page.get_by_test_id("stDataFrame")).to_be_visible()
                expect(page.get_by_test_id("stStatusWidget")).to_be_hidden()
                steps = round((0.5 - args.score_threshold) / 0.05)
                if steps:
                    caption = page.get_by_test_id("stImageCaption")
                    before = caption.inner_text()
                    slider = page.get_by_test_id("stSlider").first.get_by_role("slider")
                    slider.focus()
                    for _ in range(abs(steps)):
                        slider.press("ArrowLeft" if steps > 0 else "ArrowRight")
                    expect(caption).not_to_have_text(before)  # the page re-ran with the new threshold
                    expect(page.get_by_test_id("stStatusWidget")).to_be_hidden()
                time.sleep(2)  # the data grid paints after it appears
                args.out.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(args.out), full_page=True)
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=30)
    print(f"screenshot: {args.out}")


if __name__ == "__main__":
    main()
