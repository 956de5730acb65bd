"""How the report renders (fashionseg.report.render): figures as the files the book shows, lists and
rankings in words, ties as ties."""

from __future__ import annotations

import numpy as np
import pandas as pd
from IPython.core.formatters import format_display_data
from PIL import Image

from fashionseg.report import compare, render


def test_and_list():
    assert render.and_list([]) == ""
    assert render.and_list(["a"]) == "a"
    assert render.and_list(["a", "b"]) == "a and b"
    assert render.and_list(["a", "b", "c"]) == "a, b and c"


def test_rankings_report_ties_as_ties():
    values = pd.Series({"R50-FPN": 4.84, "R50-C4": 0.02, "R50-DC5": 0.04})
    assert render.rank_groups(values) == [["R50-FPN"], ["R50-C4", "R50-DC5"]]
    assert render.ranking_text(values) == "R50-FPN (4.8) > R50-C4 = R50-DC5 (0.0)"
    assert render.best_text(values) == "R50-FPN"
    assert render.best_text(pd.Series({"A": 0.01, "B": -0.02, "C": 0.0})) == "A, B and C (tied)"
    assert render.ranking_text(pd.Series({"A": 120.4, "B": 80.0}), decimals=0, ascending=True) == (
        "B (80) > A (120)"
    )
    assert render.tie_text(["A"]) == "A" and render.tie_text(["A", "B"]) == "A and B (tied)"


def test_order_differences_name_reversed_and_half_tied_pairs():
    seed = pd.Series({"R50-FPN": 3.1, "R50-C4": 4.4, "R50-DC5": 4.2})
    assert compare.order_differences(seed, seed) == ([], [])
    tied = pd.Series({"R50-FPN": 3.1, "R50-C4": 4.2, "R50-DC5": 4.2})
    assert compare.order_differences(tied, seed) == ([], ["R50-C4/R50-DC5"])
    values = pd.Series({"R50-FPN": 4.84, "R50-C4": 0.02, "R50-DC5": 0.04})
    assert compare.order_differences(values, seed) == (
        ["R50-FPN/R50-C4", "R50-FPN/R50-DC5"],
        ["R50-C4/R50-DC5"],
    )
    # the sentence names them
    assert compare.order_agreement(seed, seed) == "The two orders agree."
    assert "R50-FPN/R50-C4 and R50-FPN/R50-DC5 are ranked the other way" in compare.order_agreement(
        values, seed
    )


def test_save_figure_writes_the_file_it_returns(tmp_path):
    fig = render.image_grid([[Image.new("RGB", (32, 32), "red")]], ["row"], ["column"])
    for name, mime in (("grid.png", "image/png"), ("grid.jpg", "image/jpeg")):
        shown = render.save_figure(fig, tmp_path / "sub" / name)
        assert shown.data == (tmp_path / "sub" / name).read_bytes()
        assert mime in format_display_data(shown)[0]  # what glue stores


def test_number_gives_plain_floats_and_nan_for_missing():
    value = render.number(np.float64(3.1))
    assert type(value) is float and value == 3.1
    assert np.isnan(render.number(None))
    assert render.number(2) == 2.0


def test_label_reads_metric_keys_as_the_seeds_headers():
    assert render.label("mask_AP50") == "mask AP50"
    assert render.label("box_AP") == "box AP"


def test_values_text_lists_distinct_values_in_order():
    assert render.values_text([300, 300, 300]) == "300"
    assert render.values_text([300, 1000, 300]) == "300 and 1000"
    assert render.values_text([]) == ""


def test_plot_frequencies_draws_one_bar_per_row_coloured_by_its_group():
    table = pd.DataFrame(
        {
            "category": ["dress", "hat", "shoe"],
            "supercategory": ["body", "head", "body"],
            "instances": [30, 5, 12],
        }
    )
    fig = render.plot_frequencies(table, "category", "supercategory", "categories")
    (ax,) = fig.axes
    bars = [bar for container in ax.containers for bar in container]  # one container per group
    assert len(ax.containers) == 2 and len(bars) == len(table)
    rows = [label.get_text() for label in ax.get_yticklabels()]
    assert rows == ["dress", "hat", "shoe"]
    width = {rows[round(bar.get_y() + bar.get_height() / 2)]: bar.get_width() for bar in bars}
    assert width == {"dress": 30, "hat": 5, "shoe": 12}
    colour = {rows[round(bar.get_y() + bar.get_height() / 2)]: bar.get_facecolor() for bar in bars}
    assert colour["dress"] == colour["shoe"] != colour["hat"]
    legend = ax.get_legend()
    assert legend.get_title().get_text() == "supercategory"
    assert [t.get_text() for t in legend.get_texts()] == ["body", "head"]
    assert (ax.get_title(), ax.get_ylabel(), ax.get_xlabel()) == ("categories", "", "instances")
