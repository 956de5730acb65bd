"""The ``fashionseg`` command: one subcommand per stage, each defined next to the code it runs.

Each module listed in :data:`SUBCOMMANDS` provides ``add_arguments(parser)`` and ``run(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from fashionseg.errors import FashionsegError

# subcommand -> (module, one-line help). A literal table, not a registry: read it to see every command.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "data": ("fashionseg.data.cli", "check, fetch or synthesise a Fashionpedia-format dataset"),
    "train": ("fashionseg.train", "train one backbone (R50-FPN, R50-C4, R50-DC5) from a preset"),
    "predict": ("fashionseg.predict", "run a trained model on images; write COCO-results JSON and overlays"),
    "evaluate": ("fashionseg.evaluation.cli", "COCO AP and Fashionpedia AP^IoU+F1 of a predictions file"),
    "study": ("fashionseg.study", "run the study notebooks with papermill and build the book"),
    "book": ("fashionseg.study", "build the Jupyter Book from the executed notebooks in results/"),
    "app": ("fashionseg.app.cli", "serve the Streamlit app on localhost"),
    "trends": ("fashionseg.trends.cli", "attribute trend statistics over a photo collection"),
}


def build_parser() -> argparse.ArgumentParser:
    from fashionseg import __version__

    parser = argparse.ArgumentParser(
        prog="fashionseg",
        description="Mask R-CNN for clothing with localized attributes (Fashionpedia), in torchvision.",
    )
    parser.add_argument("--version", action="version", version=f"fashionseg {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, help=help_text, description=help_text)
        add = getattr(module, f"add_{name}_arguments", None) or module.add_arguments
        add(p)
        p.set_defaults(_run=getattr(module, f"run_{name}", None) or module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except FashionsegError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
