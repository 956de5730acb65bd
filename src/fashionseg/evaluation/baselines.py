"""Baselines scored like a model: what a model's metrics are measured against.

:func:`attribute_baseline` is the model's own detections with their attributes replaced by the constant
predictor of :func:`fashionseg.data.statistics.constant_attributes` (each category's most frequent attribute
set in the training split): the same boxes and masks, so the difference to the model's metrics is what its
attribute head adds.
"""

from __future__ import annotations

from typing import Any

from fashionseg.data.statistics import constant_attributes
from fashionseg.evaluation import evaluate


def attribute_baseline(
    train: dict[str, Any], val: dict[str, Any], predictions: list[dict[str, Any]]
) -> dict[str, Any]:
    """``evaluate`` (metrics.json layout) of ``predictions`` on ``val`` with each detection's attributes
    those of the constant predictor fitted on ``train`` (and no attribute scores)."""
    constant = constant_attributes(train)
    swapped = [
        {
            **{k: v for k, v in p.items() if k != "attribute_scores"},
            "attribute_ids": constant.get(p["category_id"], []),
        }
        for p in predictions
    ]
    return evaluate(val, swapped, iou_types=("bbox", "segm"), show_progress=False)
