"""Every glue key the notebooks write and the book's pages read, in one table.

A key with ``{arch}`` is written once per backbone (``R50-FPN_mask_AP``); one with ``{source}`` once per
trend source (``ground_truth``, ``model``). ``tests/test_report_glue.py`` checks the notebooks, the book's
pages and the committed executed notebooks against this table, so a key can be found by grep here.
"""

from __future__ import annotations

from collections.abc import Iterable

from fashionseg.report.training import KEY_NUMBERS

DATA_SPLIT_COLUMNS = ("images", "instances", "categories", "attributes")  # statistics.split_summary's
TREND_SOURCES = ("ground_truth", "model")  # 05_trends' sources, as keys spell them

GLUE_KEYS: dict[str, tuple[str, ...]] = {
    "01_data": (
        *(f"data_{split}_{column}" for split in ("train", "val") for column in DATA_SPLIT_COLUMNS),
        "ontology_categories",
        "ontology_attributes",
        "data_category_frequencies",
        "data_attribute_frequencies",
        "data_examples",
    ),
    "02_train_backbone": (
        "{arch}_loss_curves",
        *(f"{{arch}}_{name}" for name in KEY_NUMBERS),
        "{arch}_setting",
        "{arch}_learning_curve",
        "{arch}_predictions",
    ),
    "03_compare": (
        "setting",
        "train_minutes_total",
        "cpu_threads",
        "recipe_table",
        "table1",
        "ordering_verdict",
        "attribute_table",
        "f1_reading",
        "attribute_baseline_table",
        "speed_table",
        "speed_note",
        "inference_detectron2",
        "train_speed_peak",
        "speed_accuracy",
        "learning_curves",
        "learning_curve_reading",
        "trunk_table",
        "trunk_curve",
        "pretext_table",
        "pretext_reading",
        "scratch_vs_trunk",
        "scratch_vs_trunk_curves",
        "pretraining_reading",
        "category_heatmap",
        "best_mask_arch",
        "fastest_arch",
    ),
    "04_qualitative": (
        "qualitative_grid",
        "score_threshold",
        "miss_iou",
        "failure_caption",
        "failure_table",
        "missed_categories",
        "missed_categories_text",
        "failure_grid",
        "{arch}_missed",
        "val_instances",
    ),
    "05_trends": (
        "trends_images",
        "trends_seasons",
        "trends_score_threshold",
        "trends_attribute_threshold",
        "trends_n_perm",
        "trends_alpha",
        "trends_min_count",
        "attribute_categories",
        "planted_table",
        "model_detections",
        "trend_lines",
        "trends_planted",
        "recovery_p",
        "recovered_{source}",
        "control_p_{source}",
        "recovery_table",
        "unplanted_{source}",
        "implied_features",
        "false_discovery_table",
        "movers_table",
        "model_heatmap",
        "model_prevalence",
        "model_attributes",
        "calibration_features",
        "calibration_images",
        "calibration_p_trend",
        "calibration_p_change",
        "calibration_runs",
        "calibration_cluster_bootstrap",
        "calibration_binomial",
    ),
    "06_seeds": (
        "seeds_count",
        "seeds_list",
        "seeds_command",
        "seeds_setting",
        "seeds_accuracy",
        "seeds_per_run",
        "seeds_pairs",
        "seeds_pairs_text",
        "seeds_intervals",
        "seeds_resamples",
        "seeds_paired",
        "seeds_paired_text",
        "seeds_curves",
        "seeds_budget_minutes",
        "seeds_equal_time",
        "seeds_time_pairs_text",
        "seeds_sizes",
        "seeds_groups",
        "seeds_attribute_groups",
        "seeds_score_threshold",
        "seeds_claims",
        "seeds_answer",
    ),
}


def glue_keys(notebook: str, archs: Iterable[str], sources: Iterable[str] = TREND_SOURCES) -> list[str]:
    """The keys ``notebook`` (its name without ``.ipynb``) glues for these backbones and trend sources, in
    the table's order."""
    archs, sources = list(archs), list(sources)
    keys: list[str] = []
    for key in GLUE_KEYS[notebook]:
        if "{arch}" in key:
            keys += [key.format(arch=a) for a in archs]
        elif "{source}" in key:
            keys += [key.format(source=s) for s in sources]
        else:
            keys.append(key)
    return keys
