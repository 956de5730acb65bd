"""The ``fashionseg`` command: one subcommand per stage.

:data:`SUBCOMMANDS` names, for every subcommand, the module of its command-line layer and the two functions
there: ``add(parser)`` declares the arguments, ``run(args) -> int`` runs it. The library modules train,
predict and study hold their own command line (one small pair of functions each); data, evaluation, trends
and app keep theirs in a ``cli.py`` next to the code it runs.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from fashionseg.errors import FashionsegError

# subcommand -> (module, add-arguments function, run function, one-line help). A literal table, not a
# registry: read it to see every command and where it is defined.
SUBCOMMANDS: dict[str, tuple[str, str, str, str]] = {
    "data": (
        "fashionseg.data.cli",
        "add_arguments",
        "run",
        "check, fetch or synthesise a Fashionpedia-format dataset",
    ),
    "train": (
        "fashionseg.train",
        "add_arguments",
        "run",
        "train one backbone (R50-FPN, R50-C4, R50-DC5) from a preset",
    ),
    "pretrain": (
        "fashionseg.pretrain",
        "add_arguments",
        "run",
        "pretrain the ResNet-50 trunk that the demo study fine-tunes (weights/r50-gn-trunk.safetensors)",
    ),
    "predict": (
        "fashionseg.predict",
        "add_arguments",
        "run",
        "run a trained model on images; write COCO-results JSON and overlays",
    ),
    "evaluate": (
        "fashionseg.evaluation.cli",
        "add_arguments",
        "run",
        "COCO AP and Fashionpedia AP^IoU+F1 of a predictions file",
    ),
    "study": (
        "fashionseg.study",
        "add_study_arguments",
        "run_study",
        "run the study notebooks with papermill and build the book",
    ),
    "book": (
        "fashionseg.study",
        "add_book_arguments",
        "run_book",
        "build the Jupyter Book from the executed notebooks in results/",
    ),
    "app": ("fashionseg.app.cli", "add_arguments", "run", "serve the Streamlit app on localhost"),
    "trends": (
        "fashionseg.trends.cli",
        "add_arguments",
        "run",
        "attribute trend statistics over a photo collection",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    from fashionseg import __version__

    parser = argparse.ArgumentParser(
        prog="fashionseg",
        description="Mask R-CNN for clothing with localized attributes (Fashionpedia), in torchvision.",
    )
    parser.add_argument("--version", action="version", version=f"fashionseg {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, add_name, run_name, help_text) in SUBCOMMANDS.items():
        module = importlib.import_module(module_name)
        p = sub.add_parser(name, help=help_text, description=help_text)
        getattr(module, add_name)(p)
        p.set_defaults(_run=getattr(module, run_name))
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
