"""Helpers shared by several test modules (plain functions and constants; fixtures live in conftest.py)."""

from __future__ import annotations

import shutil
import sys

# Debian's chromium package, driven by Playwright in the browser tests (.ci/run installs it)
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def torchrun_launcher(master_port: int, processes: int = 2) -> list[str]:
    """The command prefix that runs ``processes`` copies of a ``-m module`` under torchrun on this machine.

    Each test passes its own ``master_port``, so that two distributed tests never meet on one port.
    """
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        str(processes),
        "--master_port",
        str(master_port),
    ]
