"""``fashionseg trends run|synth``: trend statistics over a photo collection; a collection with known trends.

``run`` predicts every image (resuming where an earlier run stopped; sharded under ``torchrun``), then
writes into the output folder::

    predictions.parquet   one image row per image + one row per detection (see trends.inference)
    report.json           counts, unreadable images, metadata mismatches, thresholds, timings
    stats/*.csv           prevalence, co-occurrence, trends by group, risers and fallers
    plots/*.png           trend lines and heatmaps

This module is the command line only; the pipeline is :mod:`fashionseg.trends.pipeline`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from fashionseg.distributed import init_from_env, resolve_device, shutdown
from fashionseg.trends import pipeline
from fashionseg.trends.collection import PlantedTrends, make_synthetic_collection, open_collection
from fashionseg.trends.inference import InferenceSettings
from fashionseg.trends.stats import StatsSettings


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
        result = pipeline.predict_and_analyse(
            predictor,
            collection,
            args.out,
            inference,
            settings,
            pipeline.checkpoint_id(args.weights),
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
