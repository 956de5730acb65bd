"""Whether the trend statistics keep their nominal rates, checked by simulation where the truth is known.

- :func:`null_rejection_rates`: features that do not change; a valid 5% test calls about 5% of them a trend.
- :func:`interval_coverage`: a clustered attribute share (the garments of one photo alike, as in an
  outfit); a 95% interval should cover the true share 95% of the time. The cluster bootstrap of
  :func:`~fashionseg.trends.stats.bootstrap_shares` is set beside a binomial (Wilson) interval that treats
  every garment as independent.

The notebook ``05_trends`` runs both and the book pastes their rates; ``tests/test_trends_stats.py`` runs
them smaller, with bounds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fashionseg.trends.stats import FeatureCounts, bootstrap_shares, permutation_pvalues


def _counts(successes: np.ndarray, trials: np.ndarray) -> FeatureCounts:
    """Anonymous features f0..f{F-1} over images 0..I-1 (float64 [I, F] successes and trials)."""
    features = pd.DataFrame({"feature": [f"f{j}" for j in range(successes.shape[1])]})
    return FeatureCounts(np.arange(len(successes)).astype(str), features, successes, trials)


def null_rejection_rates(
    n_features: int = 400,
    n_images: int = 160,
    n_groups: int = 4,
    n_perm: int = 199,
    alpha: float = 0.05,
    share: float = 0.3,
    seed: int = 3,
) -> dict[str, float]:
    """Shares of ``n_features`` unchanging features (1-3 trials per image, each a success with probability
    ``share`` in every group) whose permutation ``p_trend`` and ``p_change`` fall below ``alpha``.

    Returns ``{"features", "images", "p_trend", "p_change"}``; both rates should be close to ``alpha``.
    """
    rng = np.random.default_rng(seed)
    trials = rng.integers(1, 4, size=(n_images, n_features)).astype(float)
    successes = rng.binomial(trials.astype(int), share).astype(float)
    codes = np.repeat(np.arange(n_groups), int(np.ceil(n_images / n_groups)))[:n_images]
    p_trend, p_change = permutation_pvalues(_counts(successes, trials), codes, n_groups, n_perm, seed=seed)
    return {
        "features": n_features,
        "images": n_images,
        "p_trend": float(np.mean(p_trend < alpha)),
        "p_change": float(np.mean(p_change < alpha)),
    }


def _wilson(successes: float, trials: float, z: float = 1.959964) -> tuple[float, float]:
    """The Wilson score interval of a binomial share (95% for the default ``z``)."""
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * np.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    return centre - half, centre + half


def interval_coverage(
    n_runs: int = 400, n_images: int = 200, truth: float = 0.3, n_boot: int = 300, seed: int = 0
) -> dict[str, float]:
    """How often two 95% intervals of a clustered share cover the truth, over ``n_runs`` simulated groups.

    Each image holds 1-4 garments that share one tendency drawn from Beta(2 truth, 2 (1 - truth)), so the
    garments of a photo are alike and the true share is ``truth``. Returns ``{"runs", "images",
    "cluster_bootstrap", "binomial"}``: the coverage of the cluster bootstrap (images resampled) and of a
    Wilson interval over the garments as if they were independent.
    """
    cluster = binomial = 0
    for run in range(n_runs):
        rng = np.random.default_rng([seed, run])
        trials = rng.integers(1, 5, size=(n_images, 1)).astype(float)
        tendency = rng.beta(truth * 2, (1 - truth) * 2, size=(n_images, 1))
        successes = rng.binomial(trials.astype(int), tendency).astype(float)
        codes = np.zeros(n_images, dtype=int)
        boot = bootstrap_shares(_counts(successes, trials), codes, 1, n_boot=n_boot, seed=run)
        low, high = np.percentile(boot[:, 0, 0], [2.5, 97.5])
        cluster += low <= truth <= high
        low, high = _wilson(successes.sum(), trials.sum())
        binomial += low <= truth <= high
    return {
        "runs": n_runs,
        "images": n_images,
        "cluster_bootstrap": float(cluster / n_runs),
        "binomial": float(binomial / n_runs),
    }
