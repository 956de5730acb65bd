"""The install files agree, and every subcommand answers --help."""

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from fashionseg.cli import SUBCOMMANDS, build_parser

ROOT = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~ \[;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_lists_the_same_dependencies_as_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = set(project["dependencies"]) | set(project["optional-dependencies"]["dev"])
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    assert {_name(r): r for r in pip_section} == {_name(r): r for r in wanted}


def test_torch_and_torchvision_are_pinned_to_what_is_installed():
    """An exact pin each (other versions download gigabytes here), and the one this environment runs."""
    import torch
    import torchvision

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = dict(d.split("==", 1) for d in deps if _name(d) in ("torch", "torchvision") and "==" in d)
    assert set(pins) == {"torch", "torchvision"}, deps
    installed = {"torch": torch.__version__, "torchvision": torchvision.__version__}
    for name, version in installed.items():
        assert version.split("+")[0] == pins[name], f"{name} {version} installed, pyproject pins {pins[name]}"
    readme = (ROOT / "README.md").read_text()
    assert f"torch=={pins['torch']}" in readme and f"torchvision=={pins['torchvision']}" in readme


def test_top_level_layout_exists():
    for name in (
        "book",
        "notebooks",
        "src",
        "results",
        "tests",
        "environment.yml",
        "_config.yml",
        "pyproject.toml",
        "Makefile",
        "README.md",
        ".ci/run",
    ):
        assert (ROOT / name).exists(), name


@pytest.mark.parametrize("command", sorted(SUBCOMMANDS))
def test_every_subcommand_has_help(command, capsys):
    parser = build_parser()
    with pytest.raises(SystemExit) as exc:
        parser.parse_args([command, "--help"])
    assert exc.value.code == 0
    assert "usage: fashionseg " + command in capsys.readouterr().out


def test_console_script_runs():
    out = subprocess.run(
        [sys.executable, "-m", "fashionseg", "--help"], capture_output=True, text=True, check=True
    )
    for command in SUBCOMMANDS:
        assert command in out.stdout
