"""``fashionseg data check|fetch|synth``: validate, download or generate a Fashionpedia-format dataset."""

from __future__ import annotations

import argparse
from pathlib import Path

from fashionseg.config import DataConfig
from fashionseg.data.annotations import check_annotations, load_annotations, subset_annotations
from fashionseg.data.fetch import BASE_URL, SPLITS, fetch
from fashionseg.data.synthetic import generate


def _int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated ids like 1,6,10, got {text!r}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = DataConfig()
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    check = sub.add_parser(
        "check",
        help="validate an annotation file (and its images); exit code 1 on errors",
        description="Validate a Fashionpedia/COCO annotation file: print the summary (images, instances, "
        "instances per category, attribute counts) and every problem with its image id, annotation id, "
        "field and value. Exit code 1 when there are errors (with --strict, also warnings).",
    )
    check.add_argument("annotations", type=Path, metavar="ANNOTATIONS.json")
    check.add_argument("--images", type=Path, help="image folder: check that every file exists and matches")
    check.add_argument("--strict", action="store_true", help="count warnings as errors")
    check.add_argument(
        "--decode", action="store_true", help="decode every image fully to find truncated files (slower)"
    )
    check.add_argument("--max-problems", type=int, default=50, metavar="N", help="problems to print (50)")
    check.add_argument("--max-images", type=int, metavar="N", help="check only the first N images")
    check.add_argument(
        "--categories", type=_int_list, metavar="IDS", help="check only these category ids, e.g. 1,6,10"
    )
    check.set_defaults(_data_run=run_check)

    fetch_p = sub.add_parser(
        "fetch",
        help="download the official Fashionpedia files (resumable, verified)",
        description="Download, verify and extract the official Fashionpedia annotations and images under "
        "ROOT (the layout the seed and 1x presets read). Interrupted downloads resume; --from uses files you "
        "already have.",
    )
    fetch_p.add_argument("--root", type=Path, default=Path("data/fashionpedia"), help="data/fashionpedia")
    fetch_p.add_argument(
        "--splits", default=",".join(SPLITS), help=f"comma-separated, from {', '.join(SPLITS)} (all)"
    )
    fetch_p.add_argument(
        "--from",
        dest="source",
        type=Path,
        metavar="DIR",
        help="a folder with files you already have (e.g. instances_attributes_train2020.json, train2020.zip)",
    )
    fetch_p.add_argument("--base-url", default=BASE_URL, help=f"download location ({BASE_URL})")
    fetch_p.add_argument("--keep-archives", action="store_true", help="keep the zip files after extraction")
    fetch_p.set_defaults(_data_run=run_fetch)

    synth = sub.add_parser(
        "synth",
        help="generate the embedded synthetic dataset (Fashionpedia schema)",
        description="Generate the synthetic dataset: stylised figures wearing garments with real "
        "Fashionpedia categories and attributes, as PNG files plus annotation JSON. Deterministic per seed.",
    )
    synth.add_argument("--out", type=Path, default=Path(defaults.root), help=f"output root ({defaults.root})")
    synth.add_argument("--train", type=int, default=defaults.synth_train, metavar="N", help="training images")
    synth.add_argument("--val", type=int, default=defaults.synth_val, metavar="M", help="validation images")
    synth.add_argument(
        "--size", type=int, default=defaults.synth_size, metavar="PX", help="image side, pixels"
    )
    synth.add_argument("--seed", type=int, default=defaults.synth_seed, metavar="S")
    synth.set_defaults(_data_run=run_synth)


def run(args: argparse.Namespace) -> int:
    return args._data_run(args)


def run_check(args: argparse.Namespace) -> int:
    coco = load_annotations(args.annotations)
    coco = subset_annotations(coco, args.max_images, args.categories, source=str(args.annotations))
    report = check_annotations(coco, args.images, decode_images=args.decode, show_progress=True)
    print(report.format(max_problems=args.max_problems, strict=args.strict))
    failed = report.failed(strict=args.strict)
    print(f"{args.annotations}: {'FAILED' if failed else 'OK'}")
    return 1 if failed else 0


def run_fetch(args: argparse.Namespace) -> int:
    splits = [s.strip() for s in args.splits.split(",") if s.strip()]
    paths = fetch(
        args.root,
        splits=splits,
        source_dir=args.source,
        base_url=args.base_url,
        keep_archives=args.keep_archives,
    )
    for path in paths:
        print(path)
    return 0


def run_synth(args: argparse.Namespace) -> int:
    generate(args.out, train=args.train, val=args.val, size=args.size, seed=args.seed)
    print(f"wrote {args.train} + {args.val} images of {args.size} px under {args.out}")
    return 0
