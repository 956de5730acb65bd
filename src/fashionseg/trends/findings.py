"""What the trend statistics found in a collection against its planted design (05_trends): counts, trend
lines, recovered trends, false discoveries, movers and the reading, beside :class:`PlantedTrends`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from fashionseg.trends.collection import PlantedTrends
from fashionseg.trends.stats import compare_changes


def prediction_counts(report: dict[str, Any], score_threshold: float) -> pd.DataFrame:
    """What a trends prediction run found (its ``report``): images found, predicted, unreadable, without a
    metadata row, metadata rows without an image, detections at ``score_threshold``; one ``count`` column."""
    counts = {
        "images found": report["images_found"],
        "images predicted": report["images_predicted"],
        "unreadable images": len(report["images_unreadable"]),
        "images without a metadata row": len(report["images_without_metadata"]),
        "metadata rows without an image": len(report["rows_without_image"]),
        f"detections at score >= {score_threshold}": report["detections_at_threshold"],
    }
    return pd.Series(counts, name="count").to_frame()


def trend_lines(sources: Mapping[str, Any], design: pd.DataFrame | None = None) -> pd.DataFrame:
    """The per-group shares of every source (name -> :class:`fashionseg.trends.stats.Statistics`) in one
    long table with a ``source`` column, for :func:`fashionseg.trends.plots.plot_trends`; with ``design``
    (:meth:`PlantedTrends.table`) the planted shares first, as source "planted" with no interval."""
    lines = (
        [design.assign(ci_low=design["share"], ci_high=design["share"], source="planted")]
        if design is not None
        else []
    )
    lines += [stats.trend.by_group.assign(source=name) for name, stats in sources.items()]
    return pd.concat(lines, ignore_index=True)


def recovery_table(
    sources: Mapping[str, Any], features: Sequence[str], planted: pd.DataFrame | None = None
) -> pd.DataFrame:
    """:func:`fashionseg.trends.stats.compare_changes` of the planted changes (``planted``, feature and
    change; left out when None) and each source's trend, on ``features``."""

    changes = {"planted": planted} if planted is not None else {}
    changes |= {name: stats.trend.change for name, stats in sources.items()}
    return compare_changes(changes, features)


def control_p_values(recovery: pd.DataFrame, feature: str | None = None) -> pd.Series:
    """``p_trend`` of the flat control ``feature`` (default: :attr:`PlantedTrends.control`) per source of a
    :func:`recovery_table` (named after it)."""
    return recovery.xs("p_trend", axis=1, level=1).loc[feature or PlantedTrends().control]


def movers_table(sources: Mapping[str, Any]) -> pd.DataFrame:
    """The risers and fallers of every source, indexed by (source, direction, feature): first and last
    share, change, p_trend, q_trend."""
    columns = ["feature", "first_share", "last_share", "change", "p_trend", "q_trend"]
    return pd.concat(
        {
            (name, kind): table[columns].set_index("feature")
            for name, stats in sources.items()
            for kind, table in (("riser", stats.risers), ("faller", stats.fallers))
        },
        names=["source", "direction"],
    )


RECOVERY_P = 0.01  # a planted trend counts as recovered at p_trend below this, in the planted direction


def recovered_trends(recovery: pd.DataFrame, p: float = RECOVERY_P) -> dict[str, int]:
    """Per source of a :func:`fashionseg.trends.stats.compare_changes` table that has a ``planted`` block:
    how many planted features (those with a planted change) it finds at ``p_trend < p`` in the planted
    direction."""
    if "planted" not in recovery.columns.get_level_values(0):
        return {}
    planted = recovery[("planted", "change")].dropna()
    out = {}
    for source in dict.fromkeys(recovery.columns.get_level_values(0)):
        if source == "planted":
            continue
        found = recovery.loc[planted.index, (source, "p_trend")] < p
        same_sign = np.sign(recovery.loc[planted.index, (source, "change")]) == np.sign(planted)
        out[str(source)] = int((found & same_sign).sum())
    return out


def false_discoveries(
    changes: dict[str, pd.DataFrame],
    planted: pd.DataFrame,
    alpha: float,
    implied: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The trends each source reports that the design did not plant: features whose trend survives the
    false-discovery rate (``q_trend < alpha``, what the risers and fallers are chosen from) but that were
    not planted, or were planted in the other direction.

    ``changes``: source name -> :attr:`TrendResult.change`; ``planted``: feature and planted change
    (:meth:`PlantedTrends.change`); ``implied``: changes the design implies (:func:`implied_changes`),
    which count as planted. Returns one row per false discovery: source, feature, why, change, p_trend,
    q_trend (empty, with these columns, when there is none).
    """
    expected = planted if implied is None or not len(implied) else pd.concat([planted, implied])
    planted_sign = np.sign(expected.set_index("feature")["change"])
    implied_features = set() if implied is None else set(implied["feature"])
    rows = []
    for source, change in changes.items():
        found = change[(change["q_trend"] < alpha) & change["change"].notna()]
        for _, row in found.iterrows():
            sign = planted_sign.get(row["feature"])
            if sign is not None and np.sign(row["change"]) == sign:
                continue
            rows.append(
                {
                    "source": source,
                    "feature": row["feature"],
                    "why": "not planted"
                    if sign is None
                    else "implied the other way"
                    if row["feature"] in implied_features
                    else "planted the other way",
                    "change": float(row["change"]),
                    "p_trend": float(row["p_trend"]),
                    "q_trend": float(row["q_trend"]),
                }
            )
    return pd.DataFrame(rows, columns=["source", "feature", "why", "change", "p_trend", "q_trend"])


def false_discovery_counts(found: pd.DataFrame, sources: Iterable[str]) -> dict[str, int]:
    """How many false discoveries (:func:`false_discoveries`) each source has, zero included."""
    counts = found["source"].value_counts()
    return {str(s): int(counts.get(s, 0)) for s in sources}


def false_discovery_table(found: pd.DataFrame, sources: Iterable[str]) -> pd.DataFrame:
    """One row per source: how many false discoveries (:func:`false_discoveries`) it has and which, each
    with its change and q-value ("none" where there is none)."""
    rows = {}
    for source in sources:
        mine = found[found["source"] == source]
        rows[str(source)] = {
            "false discoveries": len(mine),
            "features (change, q)": "; ".join(
                f"{r.feature} ({r.change:+.2f}, q {r.q_trend:.3f}"
                + ("" if r.why == "not planted" else f", {r.why}")
                + ")"
                for r in mine.itertuples()
            )
            or "none",
        }
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "source"
    return table


@dataclass(frozen=True)
class TrendsVerdict:
    """What the trend statistics found against the planted design, per source (:func:`trends_verdict`), which
    :func:`trends_reading` renders."""

    recovered: dict[str, int]  # planted trends each source recovers (:func:`recovered_trends`)
    false_discoveries: dict[str, list[str]]  # the features each source reports that the design did not plant

    @property
    def model_lost_trends(self) -> bool:
        """Whether the ground truth recovers more planted trends than the model's predictions do."""
        return self.recovered.get("ground truth", 0) > self.recovered.get("model", 0)

    @property
    def model_adds_trends(self) -> bool:
        """Whether the model reports more unplanted trends than the ground truth: its errors make trends."""
        model, truth = (len(self.false_discoveries.get(s, [])) for s in ("model", "ground truth"))
        return model > truth


def trends_verdict(recovered: dict[str, int], found: pd.DataFrame, sources: Sequence[str]) -> TrendsVerdict:
    """:func:`recovered_trends` beside each source's false discoveries (:func:`false_discoveries`' ``found``;
    every one of ``sources``, none included)."""
    counts = false_discovery_counts(found, sources)
    names = {source: found.loc[found["source"] == source, "feature"].tolist() for source in counts}
    return TrendsVerdict(dict(recovered), names)


def trends_reading(
    photos: int,
    seasons: int,
    n_planted: int,
    recovered: dict[str, int],
    found: pd.DataFrame,
    sources: Sequence[str],
    control: pd.Series,
    alpha: float,
) -> str:
    """What the trend statistics found in the planted collection, per source, in Markdown
    (:func:`trends_verdict`): planted trends recovered, unplanted trends found (false discoveries) and the
    flat control's p-value."""
    verdict = trends_verdict(recovered, found, sources)
    text = [f"{photos} photos over {seasons} seasons; {n_planted} planted trends."]
    text += [
        f"Recovered at p < {RECOVERY_P:g} in the planted direction by the {k}: {n} of {n_planted}."
        for k, n in verdict.recovered.items()
    ]
    for source, names in verdict.false_discoveries.items():
        n = len(names)
        text.append(
            f"Trends found by the {source} that were not planted (q < {alpha:g}, false discoveries): {n}"
            + (f" ({', '.join(names)})." if n else ".")
        )
    text += [f"The flat control ({control.name}) gives p = {p:.2f} on the {k}." for k, p in control.items()]
    if verdict.model_lost_trends:
        text.append(
            "Where the ground truth shows a planted trend and the model's predictions do not, the statistics "
            "found it and the model lost it: it misses or confuses those garments or patterns too often."
        )
    if verdict.model_adds_trends:
        text.append(
            "A trend the model reports and the ground truth does not is the model's: its errors change "
            "from season to season, the collection does not."
        )
    return " ".join(text)
