"""What the trend statistics found against the planted design (fashionseg.trends.findings and the
implied changes of trends.collection)."""

from __future__ import annotations

import pandas as pd

from fashionseg.trends import findings
from fashionseg.trends.collection import PlantedTrends, implied_changes
from fashionseg.trends.stats import compare_changes


def _change(rows: list[tuple[str, float, float, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["feature", "change", "p_trend", "q_trend"])


def test_the_skirt_patterns_left_over_fall_by_design_and_are_no_false_discoveries():
    planted = PlantedTrends().change()  # stripe +0.6, dot -0.45: plain and check share the -0.15 left
    implied = implied_changes(planted)
    assert implied["feature"].tolist() == ["skirt: plain (pattern)", "skirt: check"]
    assert implied["change"].round(6).tolist() == [-0.15, -0.15]
    change = pd.DataFrame(
        [
            ("skirt: plain (pattern)", -0.1, 0.001, 0.01),  # falls, as the design implies
            ("skirt: check", 0.2, 0.001, 0.01),  # rises: against the design
            ("sleeve", 0.1, 0.001, 0.01),  # never planted
        ],
        columns=["feature", "change", "p_trend", "q_trend"],
    )
    found = findings.false_discoveries({"ground truth": change}, planted, 0.05, implied)
    assert found[["feature", "why"]].values.tolist() == [
        ["skirt: check", "implied the other way"],
        ["sleeve", "not planted"],
    ]
    # without the implied changes, the falling plain skirts would be counted too
    assert len(findings.false_discoveries({"ground truth": change}, planted, 0.05)) == 3
    assert implied_changes(planted[planted["feature"] == "hat"]).empty


def test_false_discoveries_are_unplanted_or_wrong_way_trends_that_pass_the_fdr():
    planted = PlantedTrends().change()  # hat, skirt: stripe rise; skirt: dot falls
    changes = {
        "ground truth": _change(
            [
                ("hat", 0.45, 0.001, 0.01),
                ("skirt: stripe", 0.6, 0.001, 0.01),
                ("skirt: dot", -0.45, 0.001, 0.01),
                ("skirt", 0.0, 1.0, 1.0),
            ]
        ),
        "model": _change(
            [
                ("hat", -0.2, 0.001, 0.02),  # found, but the other way round
                ("shoe", 0.1, 0.002, 0.024),  # the case: never planted
                ("bag, wallet", 0.3, 0.04, 0.2),  # does not pass the FDR: not a discovery
                ("skirt: dot", float("nan"), float("nan"), 0.01),
            ]
        ),
    }
    found = findings.false_discoveries(changes, planted, alpha=0.05)
    assert found[["source", "feature", "why"]].values.tolist() == [
        ["model", "hat", "planted the other way"],
        ["model", "shoe", "not planted"],
    ]
    sources = list(changes)
    assert findings.false_discovery_counts(found, sources) == {"ground truth": 0, "model": 2}
    table = findings.false_discovery_table(found, sources)
    assert table.loc["ground truth"].tolist() == [0, "none"]
    assert table.loc["model", "features (change, q)"] == (
        "hat (-0.20, q 0.020, planted the other way); shoe (+0.10, q 0.024)"
    )

    recovery = compare_changes({"planted": planted, **changes}, [*planted["feature"], "skirt"])
    recovered = findings.recovered_trends(recovery)
    assert recovered == {"ground truth": len(planted), "model": 0}  # the model finds hat the other way
    verdict = findings.trends_verdict(recovered, found, sources)
    assert verdict.recovered == recovered
    assert verdict.false_discoveries == {"ground truth": [], "model": ["hat", "shoe"]}
    assert verdict.model_lost_trends and verdict.model_adds_trends
    # the same counts the other way round: the model neither loses nor adds a trend
    calm = findings.trends_verdict({"ground truth": 1, "model": 2}, found[found["feature"] == "x"], sources)
    assert calm.false_discoveries == {"ground truth": [], "model": []}
    assert not calm.model_lost_trends and not calm.model_adds_trends


def test_trends_reading_renders_the_verdict():
    planted = PlantedTrends().change()
    found = pd.DataFrame(
        {
            "source": ["model", "model"],
            "feature": ["hat", "shoe"],
            "why": ["planted the other way", "not planted"],
        }
    )
    sources = ["ground truth", "model"]
    recovered = {"ground truth": len(planted), "model": 0}
    control = pd.Series({"ground truth": 1.0, "model": 0.25}, name="skirt")
    verdict = findings.trends_verdict(recovered, found, sources)
    text = findings.trends_reading(240, 4, len(planted), recovered, found, sources, control, 0.05)
    assert f"by the model: {verdict.recovered['model']} of {len(planted)}." in text
    assert "(q < 0.05, false discoveries): 2 (hat, shoe)." in text
    assert "The flat control (skirt) gives p = 0.25 on the model." in text
    assert "the model lost it" in text and "is the model's" in text  # the two verdicts' sentences
    even = {"ground truth": 3, "model": 3}
    fine = findings.trends_reading(240, 4, 3, even, found.iloc[:0], sources, control, 0.05)
    assert "the model lost it" not in fine and "is the model's" not in fine


def test_the_trends_notebooks_tables_come_from_findings():
    """What 05_trends used to compute inline: the recovery table from the sources' statistics, the flat
    control's p-values, the trend lines with the planted design first, the risers and fallers."""
    from types import SimpleNamespace

    planted = PlantedTrends()
    movers = pd.DataFrame(
        {
            "feature": ["hat"],
            "first_share": [0.1],
            "last_share": [0.5],
            "change": [0.4],
            "p_trend": [0.001],
            "q_trend": [0.01],
            "extra": [1],
        }
    )
    by_group = pd.DataFrame({"feature": ["hat"], "group": ["SS22"], "share": [0.1], "ci_low": [0.0]})
    change = _change([("hat", 0.45, 0.001, 0.01), ("skirt", 0.0, 0.8, 1.0)])
    stats = SimpleNamespace(
        trend=SimpleNamespace(change=change, by_group=by_group), risers=movers, fallers=movers.iloc[:0]
    )
    sources = {"ground truth": stats, "model": stats}
    features = [*planted.change()["feature"], PlantedTrends().control]

    recovery = findings.recovery_table(sources, features, planted.change())
    expected = compare_changes(
        {"planted": planted.change(), "ground truth": change, "model": change}, features
    )
    pd.testing.assert_frame_equal(recovery, expected)
    assert findings.control_p_values(recovery).to_dict() == {"ground truth": 0.8, "model": 0.8}
    assert list(findings.recovery_table(sources, features).columns.get_level_values(0).unique()) == [
        "ground truth",
        "model",
    ]

    lines = findings.trend_lines(sources, planted.table())
    assert list(dict.fromkeys(lines["source"])) == ["planted", "ground truth", "model"]
    planted_rows = lines[lines["source"] == "planted"]
    assert (planted_rows["ci_low"] == planted_rows["share"]).all()
    assert set(findings.trend_lines(sources)["source"]) == {"ground truth", "model"}

    table = findings.movers_table(sources)
    assert table.index.names == ["source", "direction", "feature"]
    assert list(table.columns) == ["first_share", "last_share", "change", "p_trend", "q_trend"]
    assert table.loc[("model", "riser", "hat"), "change"] == 0.4

    report = {
        "images_found": 3,
        "images_predicted": 2,
        "images_unreadable": ["a.jpg"],
        "images_without_metadata": [],
        "rows_without_image": ["b.jpg", "c.jpg"],
        "detections_at_threshold": 7,
    }
    counts = findings.prediction_counts(report, 0.5)["count"].to_dict()
    assert counts == {
        "images found": 3,
        "images predicted": 2,
        "unreadable images": 1,
        "images without a metadata row": 0,
        "metadata rows without an image": 2,
        "detections at score >= 0.5": 7,
    }
