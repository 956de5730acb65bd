"""``fashionseg trends run|synth``: trend statistics over a photo collection; a collection with known trends.

``run`` predicts every image (resuming where an earlier run stopped; sharded under ``torchrun``), then
writes into the output folder::

    predictions.parquet   one image row per image + one row per detection (see trends.inference)
    report.json           counts, unreadable images, metadata mismatches, thresholds, timings
    stats/*.csv           prevalence, co-occurrence, trends by group, risers and fallers
    plots/*.png           trend lines and heatmaps
"""

from __future__ import annotations

import argparse
import hashlib
import json
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import pandas as pd

from fashionseg.distributed import DistInfo, init_from_env, resolve_device, shutdown
from fashionseg.trends.collection import Collection, PlantedTrends, make_synthetic_collection, open_collection
from fashionseg.trends.inference import (
    InferenceSettings,
    InferenceSummary,
    PredictorLike,
    infer_collection,
    load_predictions,
)
from fashionseg.trends.plots import write_plots
from fashionseg.trends.stats import Statistics, StatsSettings, compute_statistics, write_statistics


def analyse(
    predictions: pd.DataFrame, collection: Collection, settings: StatsSettings, out_dir: Path
) -> Statistics:
    """Statistics of the collection's images in ``predictions``: ``out_dir/stats/*.csv`` and
    ``out_dir/plots/*.png``. Rows of files no longer in the collection are ignored."""
    predictions = predictions[predictions["file"].isin(collection.files)]
    stats = compute_statistics(predictions, collection.metadata, settings)
    write_statistics(stats, out_dir / "stats")
    write_plots(stats, out_dir / "plots")
    return stats


def build_report(
    collection: Collection,
    predictions: pd.DataFrame,
    settings: StatsSettings,
    summary: InferenceSummary,
    stats: Statistics,
) -> dict[str, Any]:
    """What ``report.json`` holds: the collection's mismatches, unreadable images, counts and settings."""
    rows = predictions[predictions["file"].isin(collection.files)]
    images = rows[rows["detection"] < 0]
    unreadable = images[images["error"].notna()]
    report: dict[str, Any] = {
        **collection.report(),
        "images_predicted": int(images["error"].isna().sum()),
        "images_unreadable": [
            {"file": f, "error": e} for f, e in zip(unreadable["file"], unreadable["error"], strict=True)
        ],
        "detections_at_threshold": int(
            ((rows["detection"] >= 0) & (rows["score"] >= settings.score_threshold)).sum()
        ),
        "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(settings).items()},
    }
    if stats.trend is not None:
        report["groups"] = stats.trend.images_per_group
        report["images_without_group"] = report["images_predicted"] - sum(report["groups"].values())
    report["this_run"] = asdict(summary)
    return report


def predict_and_analyse(
    predictor: PredictorLike,
    collection: Collection,
    out_dir: Path,
    inference: InferenceSettings,
    settings: StatsSettings,
    model_id: str,
    info: DistInfo | None = None,
    restart: bool = False,
) -> tuple[dict[str, Any], Statistics] | None:
    """Predict the collection (resumable, sharded when ``info`` says so), then on rank 0 write the
    statistics, plots and ``report.json``; returns the report and the statistics (None on other ranks).

    The store thresholds are lowered to the analysis thresholds where those are lower, so that no
    detection the statistics should count is left out of ``predictions.parquet``.
    """
    info = info or DistInfo()
    inference = replace(
        inference,
        min_score=min(inference.min_score, settings.score_threshold),
        min_attribute_score=min(inference.min_attribute_score, settings.attribute_threshold),
    )
    summary = infer_collection(
        predictor, collection.root, collection.files, out_dir, inference, model_id, info, restart
    )
    if not info.is_main:
        return None
    predictions = load_predictions(out_dir)
    stats = analyse(predictions, collection, settings, out_dir)
    report = build_report(collection, predictions, settings, summary, stats)
    (out_dir / "report.json").write_text(json.dumps(report, indent=1))
    return report, stats


def checkpoint_id(weights: str | Path) -> str:
    """A checkpoint's identity for resume checks (``model_final.pt`` or its run folder): the SHA-256 of
    its bytes. Content, not path or modification time, so a clone that retrains the same weights, or a
    copy in another folder, resumes the same predictions."""
    path = Path(weights) / "model_final.pt" if Path(weights).is_dir() else Path(weights)
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return f"sha256:{digest.hexdigest()}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="trends_command", metavar="{run,synth}", required=True)
    run_p = sub.add_parser("run", help="predict a collection and write trend statistics")
    run_p.add_argument("images", type=Path, help="folder of images (searched recursively)")
    run_p.add_argument("--weights", type=Path, required=True, help="RUN/model_final.pt (or the run folder)")
    run_p.add_argument("--out", type=Path, required=True, help="output folder (a rerun resumes into it)")
    run_p.add_argument("--metadata", type=Path, help="CSV with a file column plus season, date, ...")
    run_p.add_argument("--file-column", default="file", help="the metadata column naming the image file")
    run_p.add_argument("--by", help="metadata column to follow over its ordered values (e.g. season)")
    run_p.add_argument("--order", help="comma-separated order of the --by values (default: sorted)")
    run_p.add_argument("--period", help="parse --by as dates and group by this pandas period: Y, Q, M")
    run_p.add_argument(
        "--score-threshold", type=float, default=0.5, help="a detection counts from this score"
    )
    run_p.add_argument("--attribute-threshold", type=float, default=0.5, help="an attribute counts from this")
    run_p.add_argument("--batch-size", type=int, default=4)
    run_p.add_argument("--workers", type=int, default=2, help="DataLoader processes decoding images")
    run_p.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    run_p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap replicates for the CIs")
    run_p.add_argument("--permutations", type=int, default=1999, help="permutations for the p-values")
    run_p.add_argument("--min-count", type=int, default=5, help="leave rarer features out of the trends")
    run_p.add_argument("--top", type=int, default=10, help="how many risers and fallers to list")
    run_p.add_argument("--seed", type=int, default=0)
    run_p.add_argument(
        "--restart",
        action="store_true",
        help="start over when --out holds predictions of another model or other settings",
    )
    synth_p = sub.add_parser("synth", help="write a synthetic collection with planted trends")
    synth_p.add_argument("out", type=Path, help="folder for images/, metadata.csv and annotations.json")
    synth_p.add_argument("--images-per-season", type=int, default=60)
    synth_p.add_argument("--size", type=int, default=160, help="image side in pixels")
    synth_p.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> int:
    if args.trends_command == "synth":
        out = make_synthetic_collection(
            args.out, args.images_per_season, PlantedTrends(), args.size, args.seed
        )
        print(f"synthetic collection -> {out} (images/, metadata.csv, annotations.json)")
        return 0
    from fashionseg.predict import Predictor

    collection = open_collection(args.images, args.metadata, args.file_column)
    info = init_from_env(resolve_device(args.device).type)
    try:
        device = resolve_device(args.device, info.local_rank)
        predictor = Predictor.from_checkpoint(args.weights, device=str(device))
        data_cfg = predictor.config["data"]
        inference = InferenceSettings(
            batch_size=args.batch_size,
            workers=args.workers,
            resize=(data_cfg["min_size"], data_cfg["max_size"]),
        )
        settings = StatsSettings(
            score_threshold=args.score_threshold,
            attribute_threshold=args.attribute_threshold,
            by=args.by,
            order=tuple(v.strip() for v in args.order.split(",")) if args.order else None,
            period=args.period,
            n_boot=args.bootstrap,
            n_perm=args.permutations,
            min_count=args.min_count,
            top=args.top,
            seed=args.seed,
        )
        result = predict_and_analyse(
            predictor,
            collection,
            args.out,
            inference,
            settings,
            checkpoint_id(args.weights),
            info,
            args.restart,
        )
    finally:
        shutdown(info)
    if result is not None:
        report, _ = result
        print(
            f"{report['images_predicted']} images, {report['detections_at_threshold']} detections at "
            f"score >= {args.score_threshold}; {len(report['images_unreadable'])} unreadable, "
            f"{len(report['images_without_metadata'])} without metadata, "
            f"{len(report['rows_without_image'])} metadata rows without image -> {args.out}"
        )
    return 0
