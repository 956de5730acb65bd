"""Running trained models over validation images for a side-by-side figure: ground truth, then each
backbone's detections (the inference layer of the comparison; :mod:`fashionseg.report` draws no model)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from fashionseg.data.images import read_image
from fashionseg.data.statistics import annotations_by_image
from fashionseg.report.render import image_grid
from fashionseg.visualization import draw_annotations, draw_predictions


def compare_predictions(
    image_ids: Sequence[int],
    coco: dict[str, Any],
    image_dir: Path,
    predictors: dict[str, Any],
    score_threshold: float = 0.5,
) -> Figure:
    """A grid: one row per image id, ground truth in the first column, then each predictor's detections.

    ``predictors`` maps a backbone name to a :class:`fashionseg.predict.Predictor`.
    """

    meta = {im["id"]: im for im in coco["images"]}
    grouped = annotations_by_image(coco)
    images = [read_image(image_dir / meta[i]["file_name"]) for i in image_ids]
    columns = {arch: p.predict(images) for arch, p in predictors.items()}
    rows = [
        [draw_annotations(image, grouped.get(i, []), coco)]
        + [
            draw_predictions(image, columns[arch][r], p.labels, score_threshold=score_threshold)
            for arch, p in predictors.items()
        ]
        for r, (i, image) in enumerate(zip(image_ids, images, strict=True))
    ]
    return image_grid(rows, [meta[i]["file_name"] for i in image_ids], ["ground truth", *predictors])
