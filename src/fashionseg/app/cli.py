"""``fashionseg app``: serve the Streamlit page on this machine (127.0.0.1) until interrupted."""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
from pathlib import Path

from fashionseg.app.logic import DEFAULT_RESULTS, MAX_UPLOAD_MB, run_info
from fashionseg.errors import FashionsegError

PAGE = Path(__file__).with_name("streamlit_app.py")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--weights",
        type=Path,
        metavar="RUN_DIR_OR_CKPT",
        help="a run folder (or model_final.pt) to open first",
    )
    parser.add_argument(
        "--results",
        type=Path,
        action="append",
        metavar="DIR",
        help="folder searched for trained runs; repeatable (default: results and runs)",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to serve on (default 127.0.0.1: this machine only)"
    )
    parser.add_argument("--port", type=int, default=8501, help="TCP port (default 8501)")
    parser.add_argument("--max-upload-mb", type=int, default=MAX_UPLOAD_MB, help="largest accepted upload")


def streamlit_command(args: argparse.Namespace) -> list[str]:
    """The ``streamlit run`` command line: headless, no usage statistics, the upload limit, page options."""
    page_args = [f"--max-upload-mb={args.max_upload_mb}"]
    if args.weights is not None:
        page_args.append(f"--weights={args.weights}")
    page_args += [f"--results={d}" for d in args.results or DEFAULT_RESULTS]
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(PAGE),
        f"--server.address={args.host}",
        f"--server.port={args.port}",
        "--server.headless=true",
        f"--server.maxUploadSize={args.max_upload_mb}",
        "--server.fileWatcherType=none",
        "--browser.gatherUsageStats=false",
        "--client.toolbarMode=minimal",
        "--",
        *page_args,
    ]


def run(args: argparse.Namespace) -> int:
    if not 1 <= args.port <= 65535:
        raise FashionsegError(f"--port {args.port} is not a TCP port; pick one in 1-65535 (default 8501)")
    if args.max_upload_mb < 1:
        raise FashionsegError(f"--max-upload-mb {args.max_upload_mb} must be at least 1")
    if args.weights is not None:
        run_info(args.weights)
    print(f"fashionseg app on http://{args.host}:{args.port} (Ctrl+C stops it)", flush=True)
    server = subprocess.Popen(streamlit_command(args))
    # Stopping `fashionseg app` (Ctrl+C, or SIGTERM from a supervisor or a test) must stop the server too.
    signal.signal(signal.SIGTERM, lambda signum, frame: server.terminate())
    try:
        return server.wait()
    finally:
        if server.poll() is None:
            server.terminate()
            server.wait()
