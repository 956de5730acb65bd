"""Trend statistics over a predictions table: prevalence, co-occurrence and change across a metadata column.

Everything here is plain pandas/numpy on the table that :mod:`fashionseg.trends.inference` writes (one image
row per image with ``detection == -1``, one row per detection), so the same code runs on a model's
predictions and on ground-truth annotations turned into that table.

Two kinds of *feature* are counted, each as successes over trials:

- a **category** feature: trials are images, a success is an image holding at least one detection of the
  category scoring at least ``score_threshold``;
- an **attribute** feature (category, attribute): trials are the category's detections, a success is a
  detection whose attribute scores at least ``attribute_threshold``.

Uncertainty treats the image as the unit of sampling, because the instances of one photo are not independent
(one outfit, one photographer): bootstrap replicates resample images within each group, and the permutation
tests shuffle whole images between groups.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from fashionseg.data import ontology
from fashionseg.errors import FashionsegError


@dataclass(frozen=True)
class StatsSettings:
    """Thresholds and resampling sizes of one statistics run (the CLI flags and notebook parameters)."""

    score_threshold: float = 0.5
    attribute_threshold: float = 0.5
    by: str | None = None  # the metadata column to follow (season, date, collection, ...)
    order: tuple[str, ...] | None = None  # the order of its values; default: sorted
    period: str | None = None  # parse ``by`` as dates and group by this pandas period (Y, Q, M)
    n_boot: int = 1000
    n_perm: int = 1999
    alpha: float = 0.05
    min_count: int = 5  # features seen fewer times than this (over all images) are left out of trends
    top: int = 10
    seed: int = 0


@dataclass(frozen=True)
class FeatureCounts:
    """Per-image successes and trials of every feature.

    ``features`` has one row per feature (kind, category_id, category_name, attribute_id, attribute_name,
    feature); ``successes`` and ``trials`` are float64 [I, F] with rows following ``files``.
    """

    files: np.ndarray
    features: pd.DataFrame
    successes: np.ndarray
    trials: np.ndarray

    def select(self, keep: np.ndarray) -> FeatureCounts:
        """The features where ``keep`` (bool [F]) holds."""
        return FeatureCounts(
            self.files,
            self.features[keep].reset_index(drop=True),
            self.successes[:, keep],
            self.trials[:, keep],
        )


def attribute_name(attribute_id: int) -> str:
    """The Fashionpedia name of an attribute id, or ``attribute <id>`` for ids outside the ontology."""
    try:
        return ontology.attribute(attribute_id).name
    except KeyError:
        return f"attribute {attribute_id}"


def readable_images(predictions: pd.DataFrame) -> pd.DataFrame:
    """The image rows of the images that were read and predicted (unreadable ones carry an error)."""
    rows = predictions[predictions["detection"] < 0]
    return rows[rows["error"].isna()].reset_index(drop=True)


def detections(predictions: pd.DataFrame, score_threshold: float) -> pd.DataFrame:
    """The detection rows scoring at least ``score_threshold``."""
    rows = predictions[(predictions["detection"] >= 0) & (predictions["score"] >= score_threshold)]
    return rows.reset_index(drop=True)


def instance_attributes(dets: pd.DataFrame, attribute_threshold: float) -> pd.DataFrame:
    """One row per (detection, attribute scoring at least ``attribute_threshold``).

    Columns: ``instance`` (row number in ``dets``), file, category_id, category_name, attribute_id.
    """
    exploded = dets[["file", "category_id", "category_name", "attribute_ids", "attribute_scores"]].copy()
    exploded["instance"] = np.arange(len(dets))
    exploded = exploded.explode(["attribute_ids", "attribute_scores"]).dropna(subset=["attribute_ids"])
    exploded = exploded[exploded["attribute_scores"].astype(float) >= attribute_threshold]
    return (
        exploded.rename(columns={"attribute_ids": "attribute_id"})
        .astype({"attribute_id": int})
        .drop(columns="attribute_scores")
        .reset_index(drop=True)
    )


def feature_counts(
    predictions: pd.DataFrame, score_threshold: float, attribute_threshold: float
) -> FeatureCounts:
    """Count every category and (category, attribute) feature seen at least once, per readable image."""
    files = readable_images(predictions)["file"].to_numpy()
    row_of = pd.Index(files)
    dets = detections(predictions, score_threshold)
    dets = dets[row_of.get_indexer(dets["file"]) >= 0].reset_index(drop=True)
    image_row = row_of.get_indexer(dets["file"])

    categories = dets.drop_duplicates("category_id").sort_values("category_id")
    cat_col = pd.Index(categories["category_id"]).get_indexer(dets["category_id"])
    instances_per_image = np.zeros((len(files), len(categories)))
    np.add.at(instances_per_image, (image_row, cat_col), 1)

    attrs = instance_attributes(dets, attribute_threshold)
    pairs = attrs.drop_duplicates(["category_id", "attribute_id"]).sort_values(
        ["category_id", "attribute_id"]
    )
    pair_index = pd.MultiIndex.from_frame(pairs[["category_id", "attribute_id"]])
    pair_col = pair_index.get_indexer(pd.MultiIndex.from_frame(attrs[["category_id", "attribute_id"]]))
    pair_successes = np.zeros((len(files), len(pairs)))
    np.add.at(pair_successes, (image_row[attrs["instance"].to_numpy()], pair_col), 1)
    pair_trials = instances_per_image[
        :, pd.Index(categories["category_id"]).get_indexer(pairs["category_id"])
    ]

    features = pd.concat(
        [
            pd.DataFrame(
                {
                    "kind": "category",
                    "category_id": categories["category_id"].to_numpy(),
                    "category_name": categories["category_name"].to_numpy(),
                    "attribute_id": -1,
                    "attribute_name": "",
                }
            ),
            pd.DataFrame(
                {
                    "kind": "attribute",
                    "category_id": pairs["category_id"].to_numpy(),
                    "category_name": pairs["category_name"].to_numpy(),
                    "attribute_id": pairs["attribute_id"].to_numpy(),
                    "attribute_name": [attribute_name(a) for a in pairs["attribute_id"]],
                }
            ),
        ],
        ignore_index=True,
    )
    features["feature"] = np.where(
        features["kind"] == "category",
        features["category_name"],
        features["category_name"] + ": " + features["attribute_name"],
    )
    successes = np.concatenate([(instances_per_image > 0).astype(float), pair_successes], axis=1)
    trials = np.concatenate([np.ones_like(instances_per_image), pair_trials], axis=1)
    return FeatureCounts(files, features, successes, trials)


def _shares(successes: np.ndarray, trials: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(trials > 0, successes / np.where(trials > 0, trials, 1), np.nan)


def prevalence(counts: FeatureCounts) -> pd.DataFrame:
    """Share of trials that are successes for every feature, over all images: the features table plus
    ``trials``, ``successes`` and ``share``."""
    table = counts.features.copy()
    table["trials"] = counts.trials.sum(axis=0).astype(int)
    table["successes"] = counts.successes.sum(axis=0).astype(int)
    table["share"] = _shares(table["successes"].to_numpy(float), table["trials"].to_numpy(float))
    return table


def category_prevalence(predictions: pd.DataFrame, score_threshold: float) -> pd.DataFrame:
    """Per category: ``images`` (readable), ``images_with`` (>= 1 detection at the threshold), ``share``."""
    counts = feature_counts(predictions, score_threshold, attribute_threshold=np.inf)
    table = prevalence(counts.select((counts.features["kind"] == "category").to_numpy()))
    table = table.rename(columns={"trials": "images", "successes": "images_with"})
    return table[["category_id", "category_name", "images", "images_with", "share"]].sort_values(
        "share", ascending=False, kind="stable", ignore_index=True
    )


def attribute_prevalence(
    predictions: pd.DataFrame, score_threshold: float, attribute_threshold: float
) -> pd.DataFrame:
    """Per (category, attribute): ``instances`` of the category, ``instances_with`` the attribute, share."""
    counts = feature_counts(predictions, score_threshold, attribute_threshold)
    table = prevalence(counts.select((counts.features["kind"] == "attribute").to_numpy()))
    table = table.rename(columns={"trials": "instances", "successes": "instances_with"})
    columns = [
        "category_id",
        "category_name",
        "attribute_id",
        "attribute_name",
        "instances",
        "instances_with",
    ]
    return table[[*columns, "share"]].sort_values(
        ["category_id", "share"], ascending=[True, False], kind="stable", ignore_index=True
    )


def attribute_cooccurrence(
    predictions: pd.DataFrame,
    score_threshold: float,
    attribute_threshold: float,
    category_id: int | None = None,
) -> pd.DataFrame:
    """How often two attributes are predicted on the same instance (per instance, not per image).

    Counts run over the detections at the threshold (of ``category_id`` only, when given). One row per
    ordered pair a != b that occurs together at least once: ``n_a``, ``n_b``, ``n_ab`` (instances with both),
    ``p_b_given_a`` = n_ab / n_a, ``jaccard`` = n_ab / (n_a + n_b - n_ab) and ``lift`` = n_ab * N / (n_a n_b)
    with N the number of instances considered.
    """
    dets = detections(predictions, score_threshold)
    if category_id is not None:
        dets = dets[dets["category_id"] == category_id].reset_index(drop=True)
    attrs = instance_attributes(dets, attribute_threshold)[["instance", "attribute_id"]].drop_duplicates()
    columns = ["attribute_a", "name_a", "attribute_b", "name_b", "n_a", "n_b", "n_ab"]
    if attrs.empty:
        return pd.DataFrame(columns=[*columns, "p_b_given_a", "jaccard", "lift"])
    pairs = attrs.merge(attrs, on="instance", suffixes=("_a", "_b"))
    pairs = pairs[pairs["attribute_id_a"] != pairs["attribute_id_b"]]
    n_ab = pairs.groupby(["attribute_id_a", "attribute_id_b"]).size().rename("n_ab").reset_index()
    n = attrs["attribute_id"].value_counts()
    table = pd.DataFrame(
        {
            "attribute_a": n_ab["attribute_id_a"].to_numpy(),
            "name_a": [attribute_name(a) for a in n_ab["attribute_id_a"]],
            "attribute_b": n_ab["attribute_id_b"].to_numpy(),
            "name_b": [attribute_name(b) for b in n_ab["attribute_id_b"]],
            "n_a": n.loc[n_ab["attribute_id_a"]].to_numpy(),
            "n_b": n.loc[n_ab["attribute_id_b"]].to_numpy(),
            "n_ab": n_ab["n_ab"].to_numpy(),
        }
    )
    table["p_b_given_a"] = table["n_ab"] / table["n_a"]
    table["jaccard"] = table["n_ab"] / (table["n_a"] + table["n_b"] - table["n_ab"])
    table["lift"] = table["n_ab"] * len(dets) / (table["n_a"] * table["n_b"])
    return table.sort_values(
        ["n_ab", "attribute_a", "attribute_b"], ascending=[False, True, True], ignore_index=True
    )


def _sorted_levels(values: Sequence[str]) -> list[str]:
    """Numbers in numeric order ("9" before "10"), anything else in string order."""
    numbers = pd.to_numeric(pd.Series(values, dtype="string"), errors="coerce")
    if len(values) and numbers.notna().all():
        return [values[i] for i in np.argsort(numbers.to_numpy(float), kind="stable")]
    return sorted(values)


def group_codes(
    files: Sequence[str],
    metadata: pd.DataFrame,
    column: str,
    order: Sequence[str] | None = None,
    period: str | None = None,
) -> tuple[np.ndarray, list[str]]:
    """Each image's group along a metadata column: int codes [I] (-1: no row or no value) and the levels.

    ``metadata`` is indexed by file. Levels follow ``order`` when given (values outside it get -1),
    else their sorted order; with ``period`` ("Y", "Q", "M", ...) the column is parsed as dates and grouped
    by calendar period, in time order.
    """
    if column not in metadata.columns:
        raise FashionsegError(
            f"metadata has no column {column!r}; its columns are: {', '.join(map(str, metadata.columns))}"
        )
    values = metadata[column].reindex(pd.Index(files))
    if period is not None:
        dates = pd.to_datetime(values, errors="coerce")
        bad = values[values.notna() & dates.isna()]
        if len(bad):
            raise FashionsegError(
                f"metadata column {column!r}: {bad.iloc[0]!r} (file {bad.index[0]}) is not a date; "
                f"fix the value or drop --period"
            )
        values = dates.dt.to_period(period).astype("string")
    values = values.astype("string")
    levels = list(order) if order is not None else _sorted_levels(values.dropna().unique())
    if order is not None:
        unknown = sorted(set(values.dropna()) - set(levels))
        if unknown:
            raise FashionsegError(
                f"metadata column {column!r} holds {', '.join(map(repr, unknown))}, missing from the order "
                f"{list(levels)}; add them to the order (or leave the order out)"
            )
    codes = pd.Categorical(values, categories=levels).codes.astype(np.int64)
    return codes, levels


def group_sums(counts: FeatureCounts, codes: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Successes and trials per group: two float64 [G, F] arrays (images with code -1 are left out)."""
    onehot = (codes[None, :] == np.arange(n_groups)[:, None]).astype(float)
    return onehot @ counts.successes, onehot @ counts.trials


def bootstrap_shares(
    counts: FeatureCounts, codes: np.ndarray, n_groups: int, n_boot: int, seed: int
) -> np.ndarray:
    """Shares per group in ``n_boot`` bootstrap replicates: float64 [B, G, F] (NaN where no trials).

    Each replicate redraws, with replacement, as many images as each group holds from that group; an
    image brings all its instances (a cluster bootstrap), so CIs of attribute shares respect that the
    instances of one photo are alike.
    """
    rng = np.random.default_rng(seed)
    out = np.full((n_boot, n_groups, counts.successes.shape[1]), np.nan)
    for g in range(n_groups):
        members = np.flatnonzero(codes == g)
        if len(members) == 0:
            continue
        weights = rng.multinomial(len(members), np.full(len(members), 1 / len(members)), size=n_boot)
        out[:, g] = _shares(weights @ counts.successes[members], weights @ counts.trials[members])
    return out


def trend_statistics(successes: np.ndarray, trials: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The Cochran-Armitage trend statistic and the chi-square heterogeneity statistic per feature.

    ``successes`` and ``trials`` are [..., G, F] group sums. With pooled share p = K / N and group index
    g = 0..G-1 as score: trend T = sum_g (g - mean_N g) k_g (the covariance of share and order, signed:
    positive when rising); heterogeneity X2 = sum_g (k_g - n_g p)^2 / (n_g p (1 - p)) (any difference).
    """
    n_groups = successes.shape[-2]
    score = np.arange(n_groups, dtype=float)[:, None]
    total_k = successes.sum(axis=-2, keepdims=True)
    total_n = trials.sum(axis=-2, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        pooled = total_k / total_n
        mean_score = (trials * score).sum(axis=-2, keepdims=True) / total_n
        trend = ((score - mean_score) * successes).sum(axis=-2)
        expected = trials * pooled
        cells = np.where(trials > 0, (successes - expected) ** 2 / (expected * (1 - pooled)), 0.0)
        chi2 = cells.sum(axis=-2)
    return trend, np.where(np.isfinite(chi2), chi2, 0.0)


def permutation_pvalues(
    counts: FeatureCounts, codes: np.ndarray, n_groups: int, n_perm: int, seed: int, chunk: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    """Two permutation p-values per feature, shuffling whole images between groups ([F] each).

    ``p_trend``: is the share's monotone trend along the group order stronger than chance (two-sided,
    Cochran-Armitage statistic); ``p_change``: do the groups differ at all (chi-square statistic).
    p = (1 + #{permuted >= observed}) / (1 + n_perm), so the smallest attainable p is 1 / (1 + n_perm).
    """
    keep = codes >= 0
    successes, trials = counts.successes[keep], counts.trials[keep]
    labels = codes[keep]
    onehot_of = np.arange(n_groups)[:, None]
    observed_trend, observed_chi2 = trend_statistics(*group_sums(counts, codes, n_groups))
    rng = np.random.default_rng(seed)
    exceed_trend = np.zeros(successes.shape[1])
    exceed_chi2 = np.zeros(successes.shape[1])
    # float tolerance: a permutation that reproduces the observed grouping must count as "as extreme"
    tol = 1e-9 * (1 + np.abs(observed_trend))
    for start in range(0, n_perm, chunk):
        size = min(chunk, n_perm - start)
        shuffled = np.stack([rng.permutation(labels) for _ in range(size)])
        onehot = (shuffled[:, None, :] == onehot_of[None]).astype(float)
        trend, chi2 = trend_statistics(onehot @ successes, onehot @ trials)
        exceed_trend += (np.abs(trend) >= np.abs(observed_trend) - tol).sum(axis=0)
        exceed_chi2 += (chi2 >= observed_chi2 - 1e-9 * (1 + observed_chi2)).sum(axis=0)
    return (1 + exceed_trend) / (1 + n_perm), (1 + exceed_chi2) / (1 + n_perm)


def benjamini_hochberg(pvalues: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg q-values [F]: the false-discovery-rate analogue of p-values over many features."""
    p = np.asarray(pvalues, dtype=float)
    order = np.argsort(p)
    ranked = p[order] * len(p) / np.arange(1, len(p) + 1)
    q = np.empty_like(p)
    q[order] = np.minimum(1.0, np.minimum.accumulate(ranked[::-1])[::-1])
    return q


def _interval(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The 2.5th and 97.5th percentiles over replicates (axis 0), ignoring NaN; NaN where all are NaN."""
    if samples.size == 0:  # numpy's nanpercentile drops the quantile axis of an empty array
        empty = np.full(samples.shape[1:], np.nan)
        return empty, empty
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices: a group without trials
        low, high = np.nanpercentile(samples, [2.5, 97.5], axis=0)
    return low, high


@dataclass(frozen=True)
class TrendResult:
    """Shares per group (long table) and one row of change statistics per feature."""

    levels: list[str]
    images_per_group: dict[str, int]
    by_group: pd.DataFrame
    change: pd.DataFrame


def trends(
    counts: FeatureCounts, codes: np.ndarray, levels: list[str], settings: StatsSettings
) -> TrendResult:
    """Shares per group with bootstrap CIs, first-to-last change, permutation p-values and q-values.

    ``by_group``: feature columns + group, images, trials, successes, share, ci_low, ci_high (95%).
    ``change``: feature columns + first_share, last_share, change (last - first) with its bootstrap CI,
    trend (Cochran-Armitage statistic), p_trend, p_change, q_trend (Benjamini-Hochberg over features).
    """
    if len(levels) < 2:
        raise FashionsegError(
            f"metadata column {settings.by!r} has {len(levels)} value(s) among the images; a trend needs "
            f"at least 2 groups"
        )
    n_groups = len(levels)
    successes, trials = group_sums(counts, codes, n_groups)
    shares = _shares(successes, trials)
    boot = bootstrap_shares(counts, codes, n_groups, settings.n_boot, settings.seed)
    low, high = _interval(boot)
    change_low, change_high = _interval(boot[:, -1] - boot[:, 0])
    p_trend, p_change = permutation_pvalues(counts, codes, n_groups, settings.n_perm, settings.seed + 1)
    trend_stat, _ = trend_statistics(successes, trials)

    images = np.bincount(codes[codes >= 0], minlength=n_groups)
    blocks = []
    for g, level in enumerate(levels):
        block = counts.features.copy()
        block["group"] = level
        block["images"] = images[g]
        block["trials"] = trials[g].astype(int)
        block["successes"] = successes[g].astype(int)
        block["share"] = shares[g]
        block["ci_low"] = low[g]
        block["ci_high"] = high[g]
        blocks.append(block)
    by_group = pd.concat(blocks, ignore_index=True)
    by_group["group"] = pd.Categorical(by_group["group"], categories=levels, ordered=True)

    change = counts.features.copy()
    change["first_share"] = shares[0]
    change["last_share"] = shares[-1]
    change["change"] = shares[-1] - shares[0]
    change["change_ci_low"] = change_low
    change["change_ci_high"] = change_high
    change["trend"] = trend_stat
    change["p_trend"] = p_trend
    change["p_change"] = p_change
    change["q_trend"] = benjamini_hochberg(p_trend)
    return TrendResult(levels, dict(zip(levels, images.tolist(), strict=True)), by_group, change)


def risers_and_fallers(change: pd.DataFrame, top: int, alpha: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ``top`` features rising most and falling most from the first to the last group.

    Only features whose trend survives the false-discovery rate (``q_trend < alpha``) are listed, so a
    large change in a tiny group does not pass for a trend.
    """
    real = change[(change["q_trend"] < alpha) & change["change"].notna()]
    risers = real[real["change"] > 0].sort_values("change", ascending=False).head(top)
    fallers = real[real["change"] < 0].sort_values("change").head(top)
    return risers.reset_index(drop=True), fallers.reset_index(drop=True)


def compare_changes(changes: Mapping[str, pd.DataFrame], features: Sequence[str]) -> pd.DataFrame:
    """The first-to-last change of ``features`` side by side, one column block per source.

    ``changes`` maps a source name ("planted", "ground truth", "model") to a table with ``feature`` and
    ``change`` and, where measured, ``change_ci_low``, ``change_ci_high`` and ``p_trend``; a feature a
    source lacks (never detected) gets NaN.
    """
    columns = ["change", "change_ci_low", "change_ci_high", "p_trend"]
    blocks = {
        name: table.set_index("feature").reindex(list(features))[[c for c in columns if c in table]]
        for name, table in changes.items()
    }
    return pd.concat(blocks, axis=1)


@dataclass(frozen=True)
class Statistics:
    """All the tables of one statistics run (what ``write_statistics`` saves as CSV)."""

    category_prevalence: pd.DataFrame
    attribute_prevalence: pd.DataFrame
    cooccurrence: pd.DataFrame
    trend: TrendResult | None
    risers: pd.DataFrame | None
    fallers: pd.DataFrame | None


def compute_statistics(
    predictions: pd.DataFrame, metadata: pd.DataFrame | None, settings: StatsSettings
) -> Statistics:
    """Prevalence, co-occurrence and, when ``settings.by`` names a metadata column, trends along it."""
    score, attr = settings.score_threshold, settings.attribute_threshold
    trend = risers = fallers = None
    if settings.by is not None:
        if metadata is None:
            raise FashionsegError(f"trends by {settings.by!r} need a metadata CSV (--metadata)")
        counts = feature_counts(predictions, score, attr)
        counts = counts.select(counts.successes.sum(axis=0) >= settings.min_count)
        codes, levels = group_codes(counts.files, metadata, settings.by, settings.order, settings.period)
        trend = trends(counts, codes, levels, settings)
        risers, fallers = risers_and_fallers(trend.change, settings.top, settings.alpha)
    return Statistics(
        category_prevalence=category_prevalence(predictions, score),
        attribute_prevalence=attribute_prevalence(predictions, score, attr),
        cooccurrence=attribute_cooccurrence(predictions, score, attr),
        trend=trend,
        risers=risers,
        fallers=fallers,
    )


def write_statistics(stats: Statistics, out_dir: Path) -> list[Path]:
    """Save every table as ``out_dir/<name>.csv``; returns the files written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tables = {
        "category_prevalence": stats.category_prevalence,
        "attribute_prevalence": stats.attribute_prevalence,
        "attribute_cooccurrence": stats.cooccurrence,
    }
    if stats.trend is not None:
        tables |= {
            "trend_by_group": stats.trend.by_group,
            "trend_change": stats.trend.change,
            "risers": stats.risers,
            "fallers": stats.fallers,
        }
    written = []
    for name, table in tables.items():
        path = out_dir / f"{name}.csv"
        table.to_csv(path, index=False)
        written.append(path)
    return written
