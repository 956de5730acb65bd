"""The trends pipeline: predict a collection, then write its statistics, plots and ``report.json``.

``predict_and_analyse`` is what ``fashionseg trends run`` does (:mod:`fashionseg.trends.cli` parses its
arguments); ``analyse`` redoes the statistics of stored predictions; ``checkpoint_id`` names the weights
that the resume check compares.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import pandas as pd

from fashionseg.distributed import DistInfo
from fashionseg.rundir import RunDir
from fashionseg.trends.collection import Collection
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
    path = RunDir(weights).model_file if Path(weights).is_dir() else Path(weights)
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return f"sha256:{digest.hexdigest()}"
