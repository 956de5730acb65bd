"""Trend statistics on hand-made and simulated prediction tables with known answers."""

import numpy as np
import pandas as pd
import pytest

from fashionseg.errors import FashionsegError
from fashionseg.trends import calibration
from fashionseg.trends.inference import detection_records, image_record, predictions_frame
from fashionseg.trends.stats import (
    FeatureCounts,
    StatsSettings,
    attribute_cooccurrence,
    attribute_prevalence,
    benjamini_hochberg,
    bootstrap_shares,
    category_prevalence,
    compute_statistics,
    feature_counts,
    group_codes,
    permutation_pvalues,
    trends,
    write_statistics,
)

SKIRT, HAT, DRESS = 8, 14, 10
STRIPE, DOT = 328, 323
NAMES = {SKIRT: "skirt", HAT: "hat", DRESS: "dress"}


def table(images: dict[str, list[tuple[int, float, dict[int, float]]] | str]) -> pd.DataFrame:
    """A predictions table from {file: [(category, score, {attribute: score}), ...]} or {file: error}."""
    records = []
    for file, dets in images.items():
        if isinstance(dets, str):
            records.append(image_record(file, 0, 0, dets))
            continue
        records.append(image_record(file, 100, 80))
        n = len(dets)
        records += detection_records(
            file,
            100,
            80,
            np.tile([1.0, 2.0, 30.0, 40.0], (n, 1)),
            np.array([d[1] for d in dets]),
            np.array([d[0] for d in dets]),
            [NAMES[d[0]] for d in dets],
            [d[2] for d in dets],
        )
    return predictions_frame(records)


HAND_MADE = {
    "a.jpg": [(SKIRT, 0.9, {STRIPE: 0.8, DOT: 0.2}), (HAT, 0.7, {})],
    "b.jpg": [(SKIRT, 0.6, {STRIPE: 0.9, DOT: 0.7}), (SKIRT, 0.3, {STRIPE: 0.9})],
    "c.jpg": [],
    "d.jpg": "d.jpg is not a readable image",
    "e.jpg": [(HAT, 0.4, {})],
}


def test_category_prevalence_is_the_share_of_readable_images():
    prev = category_prevalence(table(HAND_MADE), score_threshold=0.5).set_index("category_name")
    # 4 readable images (d is unreadable); the 0.4 hat on e and the 0.3 skirt on b are below the threshold
    assert prev.loc["skirt", ["images", "images_with"]].tolist() == [4, 2]
    assert prev.loc["skirt", "share"] == pytest.approx(0.5)
    assert prev.loc["hat", "share"] == pytest.approx(0.25)
    lower = category_prevalence(table(HAND_MADE), score_threshold=0.35).set_index("category_name")
    assert lower.loc["hat", "share"] == pytest.approx(0.5)


def test_attribute_prevalence_counts_instances_of_the_category():
    prev = attribute_prevalence(table(HAND_MADE), 0.5, 0.5).set_index("attribute_name")
    assert prev.loc["stripe", ["instances", "instances_with"]].tolist() == [2, 2]
    assert prev.loc["dot", "share"] == pytest.approx(0.5)
    assert set(prev["category_name"]) == {"skirt"}


def test_cooccurrence_is_per_instance():
    co = attribute_cooccurrence(table(HAND_MADE), 0.5, 0.5).set_index(["name_a", "name_b"])
    row = co.loc[("stripe", "dot")]
    assert (row["n_a"], row["n_b"], row["n_ab"]) == (2, 1, 1)
    assert row["p_b_given_a"] == pytest.approx(0.5)
    assert row["jaccard"] == pytest.approx(0.5)
    assert row["lift"] == pytest.approx(1 * 3 / (2 * 1))  # 3 instances at the threshold: 2 skirts, 1 hat
    assert co.loc[("dot", "stripe"), "p_b_given_a"] == pytest.approx(1.0)


def test_group_codes_follow_order_period_and_missing_rows():
    meta = pd.DataFrame(
        {
            "season": ["AW", "SS", "AW"],
            "date": ["2023-01-05", "2023-07-01", "2024-02-01"],
            "n": ["10", "9", "9"],
        },
        index=["a", "b", "c"],
    )
    codes, levels = group_codes(["a", "b", "c", "zz"], meta, "season", order=["SS", "AW"])
    assert levels == ["SS", "AW"] and codes.tolist() == [1, 0, 1, -1]
    codes, levels = group_codes(["a", "b", "c"], meta, "date", period="Y")
    assert levels == ["2023", "2024"] and codes.tolist() == [0, 0, 1]
    _, levels = group_codes(["a", "b", "c"], meta, "n")
    assert levels == ["9", "10"]
    with pytest.raises(FashionsegError, match="'AW'.*missing from the order"):
        group_codes(["a"], meta, "season", order=["SS"])
    with pytest.raises(FashionsegError, match="no column 'brand'.*season"):
        group_codes(["a"], meta, "brand")


def simulated_collection(
    rng: np.random.Generator, images_per_group: int, stripe: list[float], hat: list[float], dot: list[float]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Seasons s0..s{G-1}; each image holds 1-3 skirts and maybe a hat and a dress (dress flat at 0.5).

    A skirt is striped with the season's stripe probability, dotted with its dot probability.
    """
    images: dict = {}
    season = {}
    for g in range(len(stripe)):
        for i in range(images_per_group):
            file = f"s{g}_{i:04d}.jpg"
            dets = [
                (SKIRT, 0.9, {a: 0.9 for a, p in ((STRIPE, stripe[g]), (DOT, dot[g])) if rng.random() < p})
                for _ in range(rng.integers(1, 4))
            ]
            dets += [(HAT, 0.8, {})] if rng.random() < hat[g] else []
            dets += [(DRESS, 0.8, {})] if rng.random() < 0.5 else []
            images[file] = dets
            season[file] = f"s{g}"
    return table(images), pd.DataFrame({"season": season})


PLANTED = {"stripe": [0.2, 0.35, 0.5, 0.65], "hat": [0.1, 0.2, 0.3, 0.5], "dot": [0.6, 0.45, 0.35, 0.2]}


def test_planted_trends_are_detected_and_ranked(tmp_path):
    preds, meta = simulated_collection(np.random.default_rng(0), 60, **PLANTED)
    settings = StatsSettings(by="season", n_boot=200, n_perm=999, seed=0)
    stats = compute_statistics(preds, meta, settings)
    change = stats.trend.change.set_index("feature")
    for feature in ("skirt: stripe", "hat", "skirt: dot"):
        assert change.loc[feature, "p_trend"] < 0.01, feature
    assert change.loc["skirt: stripe", "change"] > 0 > change.loc["skirt: dot", "change"]
    assert change.loc["dress", "p_trend"] > 0.01
    assert {"skirt: stripe", "hat"} <= set(stats.risers["feature"])
    assert "skirt: dot" in set(stats.fallers["feature"])
    assert "dress" not in set(stats.risers["feature"]) | set(stats.fallers["feature"])
    by_group = stats.trend.by_group.set_index(["feature", "group"])
    assert by_group.loc[("hat", "s0"), "images"] == 60
    assert (by_group["ci_low"] <= by_group["share"]).all() and (
        by_group["share"] <= by_group["ci_high"]
    ).all()
    written = write_statistics(stats, tmp_path)
    assert {p.name for p in written} >= {"category_prevalence.csv", "trend_change.csv", "risers.csv"}
    assert len(pd.read_csv(tmp_path / "trend_by_group.csv")) == 4 * len(change)


def test_no_trend_in_shuffled_seasons():
    preds, meta = simulated_collection(np.random.default_rng(0), 60, **PLANTED)
    meta["season"] = np.random.default_rng(1).permutation(meta["season"].to_numpy())
    stats = compute_statistics(preds, meta, StatsSettings(by="season", n_boot=50, n_perm=999, seed=0))
    change = stats.trend.change.set_index("feature")
    for feature in ("skirt: stripe", "hat", "skirt: dot"):
        assert change.loc[feature, "p_trend"] > 0.05, feature
    assert stats.risers.empty and stats.fallers.empty


def counts_from_arrays(successes: np.ndarray, trials: np.ndarray) -> FeatureCounts:
    features = pd.DataFrame({"feature": [f"f{j}" for j in range(successes.shape[1])]})
    return FeatureCounts(np.arange(len(successes)).astype(str), features, successes, trials)


def test_false_positive_rate_is_near_alpha():
    """Under no change, p_trend < 0.05 in about 5% of 400 null features (binomial sd about 1.1%)."""
    rng = np.random.default_rng(3)
    n_images, n_features = 160, 400
    trials = rng.integers(1, 4, size=(n_images, n_features)).astype(float)
    successes = rng.binomial(trials.astype(int), 0.3).astype(float)
    codes = np.repeat(np.arange(4), n_images // 4)
    p_trend, p_change = permutation_pvalues(counts_from_arrays(successes, trials), codes, 4, 199, seed=0)
    assert 0.02 <= np.mean(p_trend < 0.05) <= 0.08
    assert 0.02 <= np.mean(p_change < 0.05) <= 0.08


def test_bootstrap_cis_cover_the_truth():
    """95% cluster-bootstrap CIs of a clustered attribute share cover the true share in >= 90% of 50 runs.

    Each image's skirts share one striped-or-not tendency (a per-image Beta draw), as in a real outfit.
    ``calibration.interval_coverage`` runs the same simulation longer for the book.
    """
    truth, covered, n_images = 0.3, 0, 200
    for seed in range(50):
        rng = np.random.default_rng(seed)
        trials = rng.integers(1, 5, size=(n_images, 1)).astype(float)
        tendency = rng.beta(truth * 2, (1 - truth) * 2, size=(n_images, 1))
        successes = rng.binomial(trials.astype(int), tendency).astype(float)
        codes = np.zeros(n_images, dtype=int)
        boot = bootstrap_shares(counts_from_arrays(successes, trials), codes, 1, n_boot=300, seed=seed)
        low, high = np.percentile(boot[:, 0, 0], [2.5, 97.5])
        covered += low <= truth <= high
    assert covered >= 45


def test_bootstrap_is_seeded():
    preds, meta = simulated_collection(np.random.default_rng(0), 20, **PLANTED)
    counts = feature_counts(preds, 0.5, 0.5)
    codes, levels = group_codes(counts.files, meta, "season")
    settings = StatsSettings(by="season", n_boot=50, n_perm=99, seed=4)
    first, again = trends(counts, codes, levels, settings), trends(counts, codes, levels, settings)
    pd.testing.assert_frame_equal(first.by_group, again.by_group)
    pd.testing.assert_frame_equal(first.change, again.change)


def test_benjamini_hochberg_matches_the_definition():
    p = np.array([0.01, 0.04, 0.03, 0.5])
    # sorted 0.01, 0.03, 0.04, 0.5 -> 0.04, 0.06, 0.0533, 0.5 -> running minimum from the top
    assert benjamini_hochberg(p) == pytest.approx([0.04, 0.0533333, 0.0533333, 0.5], rel=1e-5)


def test_trends_need_a_metadata_column_with_two_groups():
    preds = table(HAND_MADE)
    with pytest.raises(FashionsegError, match="need a metadata CSV"):
        compute_statistics(preds, None, StatsSettings(by="season", min_count=1))
    meta = pd.DataFrame({"season": ["s1"] * 4}, index=["a.jpg", "b.jpg", "c.jpg", "e.jpg"])
    with pytest.raises(FashionsegError, match="at least 2 groups"):
        compute_statistics(preds, meta, StatsSettings(by="season", min_count=1))


def test_no_detections_gives_empty_tables_not_errors(tmp_path):
    from fashionseg.trends.plots import write_plots

    preds = table({"a.jpg": [], "b.jpg": [(HAT, 0.2, {})]})
    meta = pd.DataFrame({"season": ["s1", "s2"]}, index=["a.jpg", "b.jpg"])
    stats = compute_statistics(preds, meta, StatsSettings(by="season", n_boot=20, n_perm=19))
    assert stats.category_prevalence.empty and stats.trend.change.empty and stats.risers.empty
    assert stats.trend.images_per_group == {"s1": 1, "s2": 1}
    write_statistics(stats, tmp_path / "stats")
    assert [p.name for p in write_plots(stats, tmp_path / "plots")] == ["category_prevalence.png"]


def test_calibration_rates_are_near_their_nominal_values():
    null = calibration.null_rejection_rates(n_features=200, n_images=80, n_perm=99)
    assert null["features"] == 200
    assert 0.01 <= null["p_trend"] <= 0.1 and 0.01 <= null["p_change"] <= 0.1
    coverage = calibration.interval_coverage(n_runs=40, n_images=100, n_boot=200)
    assert coverage["runs"] == 40
    assert coverage["cluster_bootstrap"] >= 0.8
    assert coverage["binomial"] < coverage["cluster_bootstrap"]  # garments of one photo are not independent


def _change(rows: list[tuple[str, float, float, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["feature", "change", "p_trend", "q_trend"])
