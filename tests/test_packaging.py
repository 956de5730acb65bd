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


def test_torch_and_torchvision_are_pinned():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert "torch==2.14.1" in deps
    assert "torchvision==0.29.1" in deps


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
