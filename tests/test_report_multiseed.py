"""The seed comparison (fashionseg.report.multiseed): run folders by seed, spreads, pairwise verdicts,
equal-time reading and the seed's claims, on run folders written here."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fashionseg.config import load_config, save_config
from fashionseg.errors import FashionsegError
from fashionseg.report import multiseed


def _table(values: dict[str, list[float]], column: str = "mask_AP", **other: dict[str, list[float]]):
    rows = {}
    for arch, seeds in values.items():
        for seed, value in enumerate(seeds):
            rows[(arch, seed)] = {column: value} | {k: v[arch][seed] for k, v in other.items()}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index = pd.MultiIndex.from_tuples(table.index, names=["backbone", "seed"])
    return table


def _write_run(
    run: Path, arch: str, seed: int, mask_ap: float, s_per_iter: float, curve: list[tuple]
) -> None:
    run.mkdir(parents=True)
    save_config(load_config("demo", {"model.arch": arch, "name": arch, "seed": seed}), run / "config.yaml")
    metrics = {
        "bbox": {"coco": {"AP": mask_ap + 1}, "iou_f1": {"AP": 0.5}},
        "segm": {
            "coco": {"AP": mask_ap, "AP50": 2 * mask_ap, "AP75": 0.5, "APs": 1.0, "APm": 3.0, "APl": None},
            "iou_f1": {"AP": 0.25},
        },
        "per_supercategory": {"outerwear": {"segm_AP": 7.0}, "part": {"segm_AP": 2.0}},
        "speed": {"train_s_per_iter": s_per_iter, "inference_ms_per_image": 100 * s_per_iter},
    }
    (run / "metrics.json").write_text(json.dumps(metrics))
    points = [{"iteration": i, "train_seconds": t, "bbox_AP": ap + 1, "segm_AP": ap} for i, t, ap in curve]
    (run / "learning_curve.jsonl").write_text("".join(json.dumps(p) + "\n" for p in points))


def test_runs_are_found_by_the_seed_their_config_says(tmp_path):
    _write_run(tmp_path / "R50-FPN", "R50-FPN", 0, 4.0, 0.5, [(100, 50, 4.0)])
    _write_run(tmp_path / "seed-1" / "R50-FPN", "R50-FPN", 1, 5.0, 0.5, [(100, 60, 5.0)])
    _write_run(tmp_path / "R50-C4", "R50-C4", 0, 2.0, 1.0, [(100, 100, 2.0)])
    runs = multiseed.seed_run_dirs(tmp_path, ["R50-FPN", "R50-C4"], [0, 1])
    assert runs == {
        ("R50-FPN", 0): tmp_path / "R50-FPN",
        ("R50-FPN", 1): tmp_path / "seed-1" / "R50-FPN",
        ("R50-C4", 0): tmp_path / "R50-C4",  # C4 has no seed-1 run: left out, not an error
    }
    table = multiseed.seed_metrics(runs)
    assert table.loc[("R50-FPN", 1), "mask_AP"] == 5.0
    assert table.loc[("R50-FPN", 1), "train_seconds"] == 60
    assert table.loc[("R50-FPN", 0), "mask_AP_garments"] == 7.0
    assert pd.isna(table.loc[("R50-FPN", 0), "mask_APl"])  # no large ground truth: null, not 0
    assert pd.isna(table.loc[("R50-FPN", 0), "mask_AP_accessories"])
    assert multiseed.seeds_per_backbone(table).to_dict() == {"R50-FPN": 2, "R50-C4": 1}
    with pytest.raises(FashionsegError, match="--seeds 5,6"):
        multiseed.seed_run_dirs(tmp_path, ["R50-FPN"], [5, 6])


def test_spread_and_mean_sd_text():
    table = _table({"R50-FPN": [10.0, 11.0, 12.0], "R50-C4": [5.0]})
    stats = multiseed.spread(table, "mask_AP")
    assert stats.loc["R50-FPN", ["mean", "sd", "min", "max", "range", "seeds"]].tolist() == [
        11,
        1,
        10,
        12,
        2,
        3,
    ]
    assert multiseed.mean_sd_text(stats.loc["R50-FPN"]) == "11.0 ± 1.0"
    assert multiseed.mean_sd_text(stats.loc["R50-C4"]) == "5.0"  # one seed: no spread to show
    undefined = multiseed.spread(_table({"R50-FPN": [float("nan")] * 2}), "mask_AP").loc["R50-FPN"]
    assert multiseed.mean_sd_text(undefined) == "n/a"  # e.g. AP of large objects where there are none
    summary = multiseed.summary_table(table, {"mask_AP": "mask AP"})
    assert summary.loc["R50-FPN", "mask AP"] == "11.0 ± 1.0"


def test_a_difference_exceeds_the_spread_only_when_larger_than_both_ranges():
    table = _table({"R50-FPN": [10.0, 11.0, 12.0], "R50-C4": [5.0, 5.5, 6.0], "R50-DC5": [9.0, 12.0, 13.0]})
    pairs = multiseed.pairwise_differences(table)
    assert pairs.loc["R50-FPN - R50-C4", "verdict"] == "exceeds the seed spread"
    assert pairs.loc["R50-FPN - R50-C4", "difference"] == pytest.approx(5.5)
    assert pairs.loc["R50-FPN - R50-C4", "seed range"] == pytest.approx(2.0)
    # DC5's mean is higher, so it names the pair first; its range (4) is larger than the difference
    assert pairs.loc["R50-DC5 - R50-FPN", "verdict"] == "within the seed spread"
    assert pairs.loc["R50-DC5 - R50-C4", "verdict"] == "exceeds the seed spread"  # 5.83 against 4
    one_seed = multiseed.pairwise_differences(_table({"R50-FPN": [4.0], "R50-C4": [1.0]}))
    assert one_seed.loc["R50-FPN - R50-C4", "verdict"] == "no seed spread measured (one seed)"
    tied = multiseed.pairwise_differences(_table({"R50-FPN": [4.0, 4.02], "R50-C4": [4.01, 4.0]}))
    assert tied.iloc[0]["verdict"] == "tied"
    assert "exceeds the seed spread (largest seed range 2.0)" in multiseed.pairwise_text(pairs)
    alone = multiseed.pairwise_differences(_table({"R50-FPN": [4.0, 5.0]}))
    assert multiseed.pairwise_text(alone) == "No pair of backbones to compare: the runs are of one backbone."


def test_claim_verdicts_follow_the_data():
    claim = [("R50-C4", "R50-FPN")]
    clear = _table({"R50-FPN": [1.0, 1.2, 1.1], "R50-C4": [5.0, 5.2, 5.1]})
    assert multiseed.order_claim_verdict(clear, claim) == "supported"
    reversed_ = _table({"R50-FPN": [5.0, 5.2, 5.1], "R50-C4": [1.0, 1.2, 1.1]})
    assert multiseed.order_claim_verdict(reversed_, claim) == "refuted"
    noisy = _table({"R50-FPN": [1.0, 6.0, 3.0], "R50-C4": [5.0, 2.0, 4.0]})
    assert multiseed.order_claim_verdict(noisy, claim) == "not settled"


def _claims_inputs(fpn_ap: list[float], c4_ap: list[float], dc5_ap: list[float]):
    speed = {"R50-FPN": [0.5] * 3, "R50-C4": [1.0] * 3, "R50-DC5": [1.5] * 3}
    table = _table(
        {"R50-FPN": fpn_ap, "R50-C4": c4_ap, "R50-DC5": dc5_ap},
        train_s_per_iter=speed,
        inference_ms_per_image={k: [100 * x for x in v] for k, v in speed.items()},
    )
    equal_time = table[["mask_AP"]].rename(columns={"mask_AP": "segm_AP"})
    return table, equal_time


def _verdicts(table: pd.DataFrame, equal_time: pd.DataFrame) -> dict[str, str]:
    """claim id -> verdict of the claims the runs check."""
    ids = {c["text"]: c["id"] for c in multiseed.seed_claims()["claims"]}
    claims = multiseed.claims_table(table, equal_time, 600.0)
    return {ids[text]: v for text, v in zip(claims["the seed's claim"], claims["verdict"], strict=True)}


def test_the_seeds_claims_are_data_naming_backbones_of_its_table():
    data = multiseed.seed_claims()
    table1 = json.loads((Path(multiseed.__file__).parents[1] / "data" / "seed_table1.json").read_text())
    assert data["subject"] in table1["rows"]
    ids = [c["id"] for c in data["claims"]]
    assert len(set(ids)) == len(ids)
    for claim in data["claims"]:
        named = {claim.get(k) for k in ("backbone", "higher", "lower")} - {None, "others"}
        assert named <= set(table1["rows"]), claim["id"]
        assert claim["test"] in ("fastest", "order", "not run"), claim["id"]


def test_the_seeds_claims_are_checked_against_the_runs():
    table, equal_time = _claims_inputs([1.0, 1.1, 1.2], [5.0, 5.1, 5.2], [3.0, 3.1, 3.2])
    verdicts = _verdicts(table, equal_time)
    assert verdicts["fpn-faster"] == "supported"
    assert verdicts["fpn-less-accurate-early"] == "supported"
    assert verdicts["c4-most-accurate"] == "supported"
    assert verdicts["fpn-catches-up"].endswith("at equal time R50-C4 leads")
    assert multiseed.claims_text(multiseed.claims_table(table, equal_time, 600.0)).startswith(
        "claim 1: supported;"
    )
    alone = multiseed.claims_table(table.loc[["R50-FPN"]], equal_time.loc[["R50-FPN"]], 600.0)
    assert alone.empty
    assert "R50-FPN" in multiseed.claims_text(alone)
    # without C4's runs its claim is left out; the others are still checked
    no_c4 = table.drop(index="R50-C4", level="backbone")
    assert set(_verdicts(no_c4, equal_time.drop(index="R50-C4", level="backbone"))) == {
        "fpn-faster",
        "fpn-less-accurate-early",
        "fpn-catches-up",
    }
    # FPN fastest to train but not at inference: the speed claim holds in part
    slow = table.copy()
    slow.loc["R50-FPN", "inference_ms_per_image"] = 1000.0
    assert _verdicts(slow, equal_time)["fpn-faster"].startswith("partly")
    slow.loc["R50-FPN", "train_s_per_iter"] = 10.0
    assert _verdicts(slow, equal_time)["fpn-faster"] == "refuted"

    table, equal_time = _claims_inputs([6.0, 6.1, 6.2], [5.0, 5.1, 5.2], [3.0, 3.1, 3.2])
    verdicts = _verdicts(table, equal_time)
    assert verdicts["fpn-less-accurate-early"] == "refuted"
    assert verdicts["c4-most-accurate"] == "refuted"


def test_the_answer_names_the_best_its_clear_leads_and_the_fastest():
    table, equal_time = _claims_inputs([6.0, 6.1, 6.2], [5.0, 5.1, 5.2], [3.0, 3.1, 3.2])
    answer = multiseed.seed_answer(table, multiseed.pairwise_differences(table), equal_time)
    assert answer.best == "R50-FPN" and answer.ranking == ["R50-FPN", "R50-C4", "R50-DC5"]
    assert answer.accuracy.loc["R50-FPN", "mean"] == pytest.approx(6.1)
    assert answer.seeds == 3
    # FPN leads C4 by 1.0 and DC5 by 3.0, both more than the seed ranges (0.2)
    assert answer.clear_leads == ["R50-C4", "R50-DC5"] and answer.open_leads == []
    assert list(answer.equal_time) == ["R50-FPN", "R50-C4", "R50-DC5"]  # equal_time holds the same values
    assert answer.equal_time["R50-DC5"] == pytest.approx(3.1)
    assert (answer.fastest, answer.fastest_s_per_iter) == ("R50-FPN", 0.5)  # _claims_inputs' speeds

    noisy = _table(
        {"R50-FPN": [6.0, 7.0, 5.0], "R50-C4": [5.5, 6.0, 5.0], "R50-DC5": [1.0, 1.1, 1.2]},
        train_s_per_iter={"R50-FPN": [2.0] * 3, "R50-C4": [1.0] * 3, "R50-DC5": [1.5] * 3},
    )
    timed = noisy[["mask_AP"]].rename(columns={"mask_AP": "segm_AP"})
    answer = multiseed.seed_answer(noisy, multiseed.pairwise_differences(noisy), timed)
    assert answer.clear_leads == ["R50-DC5"] and answer.open_leads == ["R50-C4"]  # 0.5 within range 2.0
    assert answer.fastest == "R50-C4"

    one = _table({"R50-FPN": [2.0], "R50-C4": [1.0]}, train_s_per_iter={"R50-FPN": [0.5], "R50-C4": [1.0]})
    timed = one[["mask_AP"]].rename(columns={"mask_AP": "segm_AP"})
    answer = multiseed.seed_answer(one, multiseed.pairwise_differences(one), timed)
    assert answer.seeds == 1 and answer.clear_leads == [] and answer.open_leads == ["R50-C4"]


def test_answer_text_renders_the_answer():
    noisy = _table(
        {"R50-FPN": [6.0, 7.0, 5.0], "R50-C4": [5.5, 6.0, 5.0], "R50-DC5": [1.0, 1.1, 1.2]},
        train_s_per_iter={"R50-FPN": [2.0] * 3, "R50-C4": [1.0] * 3, "R50-DC5": [1.5] * 3},
    )
    timed = noisy[["mask_AP"]].rename(columns={"mask_AP": "segm_AP"})
    pairs = multiseed.pairwise_differences(noisy)
    answer = multiseed.seed_answer(noisy, pairs, timed)
    text = multiseed.answer_text(noisy, pairs, timed, 600.0)
    assert text.startswith(f"At equal iterations the most accurate backbone is {answer.best}: mask AP ")
    assert f"{answer.best} {multiseed.mean_sd_text(answer.accuracy.loc[answer.best])};" in text
    assert f"over {answer.seeds} seeds" in text
    assert f"Its lead over {answer.clear_leads[0]} exceeds" in text
    assert f"over {answer.open_leads[0]} it does not" in text
    assert " > ".join(f"{a} ({ap:.1f})" for a, ap in answer.equal_time.items()) in text
    assert f"{answer.fastest} trains fastest ({answer.fastest_s_per_iter:.2f} s per iteration" in text
    one = _table({"R50-FPN": [2.0], "R50-C4": [1.0]}, train_s_per_iter={"R50-FPN": [0.5], "R50-C4": [1.0]})
    timed = one[["mask_AP"]].rename(columns={"mask_AP": "segm_AP"})
    assert "With one seed no seed-to-seed spread" in multiseed.answer_text(
        one, multiseed.pairwise_differences(one), timed, 60.0
    )


def test_equal_time_reads_each_run_at_the_fastest_backbones_end(tmp_path):
    # FPN: 100 iterations at 0.5 s; C4 at 1.0 s. The time axis is iterations x the backbone's median
    # s/iteration over seeds, not the logged wall-clock (FPN's log says 80 s: the machine was busy)
    _write_run(tmp_path / "R50-FPN", "R50-FPN", 0, 4.0, 0.5, [(50, 25, 2.0), (100, 80, 4.0)])
    _write_run(tmp_path / "R50-C4", "R50-C4", 0, 6.0, 1.0, [(50, 50, 1.0), (100, 100, 6.0)])
    runs = multiseed.seed_run_dirs(tmp_path, ["R50-FPN", "R50-C4"], [0])
    curves = multiseed.seed_curves(runs, multiseed.seed_metrics(runs))
    assert curves.groupby("backbone")["iteration"].min().tolist() == [0, 0]  # each curve starts at 0
    assert multiseed.time_budget(curves) == 50.0
    at = multiseed.at_time(curves, 50.0)
    assert at.loc[("R50-FPN", 0), "segm_AP"] == 4.0
    assert at.loc[("R50-C4", 0), "segm_AP"] == 1.0
    assert multiseed.at_time(curves, 75.0).loc[("R50-C4", 0), "segm_AP"] == pytest.approx(3.5)
    # a seed slowed down throughout by other work does not move its backbone's time axis (median of three)
    _write_run(tmp_path / "seed-1" / "R50-FPN", "R50-FPN", 1, 4.0, 0.6, [(50, 30, 2.0), (100, 60, 4.0)])
    _write_run(tmp_path / "seed-2" / "R50-FPN", "R50-FPN", 2, 4.0, 2.0, [(50, 99, 2.0), (100, 200, 4.0)])
    runs = multiseed.seed_run_dirs(tmp_path, ["R50-FPN"], [0, 1, 2])
    three = multiseed.seed_curves(runs, multiseed.seed_metrics(runs))
    assert three.groupby("seed")["seconds"].max().tolist() == [60.0, 60.0, 60.0]
    fig = multiseed.plot_seed_curves(curves)
    by_iteration, by_time = fig.axes
    assert len(by_iteration.lines) == 2
    assert by_time.lines[0].get_xdata().tolist() == pytest.approx([0, 25 / 60, 50 / 60])


def test_attribute_group_and_interval_tables():
    scores = {
        ("R50-FPN", 0): pd.DataFrame({"f1": [50.0, 20.0]}, index=["length", "textile pattern"]),
        ("R50-FPN", 1): pd.DataFrame({"f1": [70.0, 40.0]}, index=["length", "textile pattern"]),
    }
    table = multiseed.attribute_group_table(scores)
    assert table.loc[("R50-FPN", 1), "textile pattern"] == 40.0
    summary = multiseed.summary_table(table, {g: g for g in table.columns})
    assert summary.loc["R50-FPN", "length"] == "60.0 ± 14.1"

    class Interval:
        estimate, low, high, level = 4.25, 3.0, 5.5, 0.95

    class Missing:
        estimate, low, high, level = None, None, None, 0.95

    shown = multiseed.intervals_table({("R50-FPN", 0): Interval(), ("R50-C4", 0): Missing()})
    assert shown.loc[("R50-FPN", 0)].tolist() == ["4.2", "3.0 to 5.5"]
    assert shown.loc[("R50-C4", 0)].tolist() == ["n/a", "n/a"]


def test_paired_intervals_per_pair_and_seed():
    from fashionseg.evaluation.bootstrap import CategoryMatches, EvaluatedImages

    def one_category(hits: list[bool]) -> EvaluatedImages:
        # one detection per image, a true positive at every IoU threshold where ``hits``, one gt per image
        n = len(hits)
        tps = np.array([hits] * 10, dtype=bool)
        matches = CategoryMatches(tps, ~tps, np.arange(n), np.ones(n))
        return EvaluatedImages((matches,), n, np.linspace(0, 1, 101))

    good, bad = one_category([True] * 8), one_category([True, False] * 4)
    evaluated = {("R50-FPN", 0): good, ("R50-C4", 0): bad, ("R50-FPN", 1): good, ("R50-C4", 1): good}
    paired = multiseed.paired_image_intervals(evaluated, ["R50-FPN - R50-C4"], resamples=200)
    assert paired.loc[("R50-FPN - R50-C4", 0), "over images"] == "excludes 0"
    assert paired.loc[("R50-FPN - R50-C4", 0), "difference"] > 0
    assert paired.loc[("R50-FPN - R50-C4", 1), "over images"] == "includes 0"  # the same model twice
    assert multiseed.paired_text(paired).endswith("R50-FPN - R50-C4: 1 of 2 seeds.")
