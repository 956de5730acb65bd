"""``fashionseg evaluate``: COCO AP and Fashionpedia AP^IoU+F1 of a predictions file, as a table and JSON."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from fashionseg.errors import FashionsegError
from fashionseg.evaluation import evaluate, write_metrics

# Table columns: (header, key in the coco / IoU families, key in the F1 family).
_COLUMNS = (
    ("AP", "AP", "AP"),
    ("AP@50", "AP_IOU50", "AP_F150"),
    ("AP@75", "AP_IOU75", "AP_F175"),
    ("APs", "APs", "APs"),
    ("APm", "APm", "APm"),
    ("APl", "APl", "APl"),
    ("APo", "APo", "APo"),
    ("APa", "APa", "APa"),
    ("APp", "APp", "APp"),
)
_ROWS = (("COCO", "coco"), ("IoU", "iou"), ("IoU+F1", "iou_f1"), ("F1", "f1"))
_COCO_KEYS = {"AP_IOU50": "AP50", "AP_IOU75": "AP75"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--gt", required=True, type=Path, help="ground-truth annotation JSON (Fashionpedia/COCO)"
    )
    parser.add_argument(
        "--predictions",
        required=True,
        type=Path,
        help="COCO-results JSON; with attribute_ids per detection for Fashionpedia's families (without: COCO "
        "AP only, e.g. detectron2's or MMDetection's results)",
    )
    parser.add_argument("--iou-types", default="bbox,segm", help="bbox, segm or both, comma separated")
    parser.add_argument(
        "--attribute-categories",
        default="fashionpedia",
        help="categories scored with attributes: 'fashionpedia' (the official 18), 'none', or ids like 3,7,9",
    )
    parser.add_argument("--out", type=Path, help="write the metrics here (metrics.json layout)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    metrics = evaluate(
        args.gt,
        args.predictions,
        iou_types=tuple(t.strip() for t in args.iou_types.split(",") if t.strip()),
        attribute_category_ids=parse_attribute_categories(args.attribute_categories),
        show_progress=not args.no_progress,
    )
    print(format_table(metrics))
    if args.out:
        print(f"wrote {write_metrics(metrics, args.out)}")
    return 0


def parse_attribute_categories(text: str) -> tuple[int, ...] | None:
    """'fashionpedia' -> None (the ontology's 18), 'none' -> (), '3,7,9' -> (3, 7, 9)."""
    if text.strip().lower() == "fashionpedia":
        return None
    if text.strip().lower() == "none":
        return ()
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError as exc:
        raise FashionsegError(
            f"--attribute-categories {text!r}: give 'fashionpedia', 'none' or category ids like 3,7,9"
        ) from exc


def format_table(metrics: dict[str, Any]) -> str:
    """The headline numbers, one block per IoU type: COCO and the three Fashionpedia families."""
    lines = []
    for iou_type in ("bbox", "segm"):
        if iou_type not in metrics:
            continue
        lines.append(f"{iou_type:<8}" + "".join(f"{header:>8}" for header, _, _ in _COLUMNS))
        for label, family in _ROWS:
            values = metrics[iou_type].get(family)
            if values is None:
                lines.append(f"{label:<8}{'not computed (see below)':>32}")
                continue
            cells = []
            for _, key, f1_key in _COLUMNS:
                key = f1_key if family == "f1" else _COCO_KEYS.get(key, key) if family == "coco" else key
                value = values.get(key)
                cells.append(f"{value:8.2f}" if value is not None else f"{'-':>8}")
            lines.append(f"{label:<8}" + "".join(cells))
        lines.append("")
    lines.append("0-100 scale; AP@50/AP@75 are IoU thresholds, F1 thresholds in the F1 row; - : not defined.")
    if metrics.get("not_computed"):
        lines.append(f"not computed: {next(iter(metrics['not_computed'].values()))}")
    return "\n".join(lines)
