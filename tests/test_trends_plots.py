"""Trend figures: the group order, one line per source, the feature order."""

import pandas as pd

from fashionseg.trends.plots import plot_share_heatmap, plot_trends


def by_group(source: str, shares: dict[str, float]) -> pd.DataFrame:
    rows = [
        {"feature": "hat", "group": g, "share": s, "ci_low": s - 0.1, "ci_high": s + 0.1, "source": source}
        for g, s in shares.items()
    ]
    return pd.DataFrame(rows)


def test_trend_lines_follow_the_given_order_with_one_line_per_source():
    # the model's rows arrive in another order and lack a season: the axis must not follow either
    table = pd.concat(
        [
            by_group("model", {"AW22": 0.3, "SS22": 0.1}),
            by_group("truth", {"SS22": 0.15, "AW22": 0.3, "SS23": 0.5}),
        ]
    )
    fig = plot_trends(table, ["hat", "missing"], levels=["SS22", "AW22", "SS23"], columns=3)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["SS22", "AW22", "SS23"]
    model, truth = ax.get_lines()[:2]
    assert list(model.get_ydata()[:2]) == [0.1, 0.3]
    assert list(truth.get_ydata()) == [0.15, 0.3, 0.5]
    assert [a.get_title() for a in fig.axes] == ["hat", "missing"]  # a feature no source has: empty panel


def test_share_heatmap_rows_follow_the_features_given():
    table = pd.concat(
        [by_group("model", {"SS22": 0.1}), by_group("model", {"SS22": 0.2}).assign(feature="skirt")]
    )
    fig = plot_share_heatmap(table, ["skirt", "hat"])
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["skirt", "hat"]
