"""`fashionseg trends run` and notebook 05 with a real two-iteration checkpoint; 1 process vs torchrun."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import papermill
import pytest
from papermill.iorw import load_notebook_node
from support import torchrun_launcher

from fashionseg.config import load_config
from fashionseg.predict import Predictor
from fashionseg.train import train
from fashionseg.trends.collection import make_synthetic_collection

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trends_run(synthetic_root, tmp_path_factory):
    """A two-iteration R50-FPN that keeps every box (score threshold 0), so it does detect things."""
    cfg = load_config(
        "demo",
        {
            "output_dir": str(tmp_path_factory.mktemp("trends_run")),
            "device": "cpu",
            "data.root": str(synthetic_root),
            "data.synthetic": False,
            "data.min_size": 96,
            "data.max_size": 128,
            "model.box_score_thresh": 0.0,
            "model.box_detections_per_img": 8,
            "solver.ims_per_batch": 2,
            "solver.max_iter": 2,
            "solver.steps": [],
            "solver.warmup_iters": 1,
        },
    )
    return train(cfg, show_progress=False)


@pytest.fixture(scope="module")
def collection(tmp_path_factory):
    root = make_synthetic_collection(
        tmp_path_factory.mktemp("collection"), images_per_season=2, size=128, show_progress=False
    )
    (root / "images" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    return root


def trends_command(collection, run_dir, out) -> list[str]:
    return [
        "trends", "run", str(collection / "images"), "--weights", str(run_dir), "--out", str(out),
        "--metadata", str(collection / "metadata.csv"), "--by", "season", "--order", "SS22,AW22,SS23,AW23",
        "--score-threshold", "0", "--batch-size", "1", "--workers", "1", "--device", "cpu",
        "--bootstrap", "50", "--permutations", "99", "--min-count", "1",
    ]  # fmt: skip


def run_fashionseg(args: list[str], launcher: list[str]) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # the same arithmetic in both runs: 1 thread each
    subprocess.run([*launcher, "-m", "fashionseg", *args], env=env, check=True, timeout=900)


def test_one_process_and_torchrun_agree(trends_run, collection, tmp_path):
    single, sharded = tmp_path / "single", tmp_path / "sharded"
    run_fashionseg(trends_command(collection, trends_run, single), [sys.executable])
    run_fashionseg(trends_command(collection, trends_run, sharded), torchrun_launcher(29547))

    report = json.loads((single / "report.json").read_text())
    assert report["images_found"] == 9 and report["images_predicted"] == 8
    assert [u["file"] for u in report["images_unreadable"]] == ["broken.png"]
    assert report["rows_without_image"] == [] and report["images_without_metadata"] == ["broken.png"]
    assert report["groups"] == {"SS22": 2, "AW22": 2, "SS23": 2, "AW23": 2}

    a = pd.read_parquet(single / "predictions.parquet")
    b = pd.read_parquet(sharded / "predictions.parquet")
    dets = a[a["detection"] >= 0]
    assert len(dets) > 0
    labels = Predictor.from_checkpoint(trends_run, device="cpu").labels
    assert set(dets["category_id"]) <= set(labels.category_ids)
    assert (dets[["x1", "x2"]].to_numpy() >= -1e-3).all() and (
        dets[["x1", "x2"]].to_numpy() <= 128 + 1e-3
    ).all()
    pd.testing.assert_frame_equal(
        a.drop(columns=["score", "attribute_scores"]), b.drop(columns=["score", "attribute_scores"])
    )
    assert np.allclose(a["score"], b["score"], equal_nan=True, atol=1e-5)
    assert {p.name for p in (sharded / "stats").glob("*.csv")} == {
        p.name for p in (single / "stats").glob("*.csv")
    }


def test_notebook_runs_and_glues_every_value_the_chapter_shows(trends_run, collection, tmp_path):
    root = Path(__file__).resolve().parents[1]
    chapter = (root / "book" / "trends.md").read_text()
    wanted = set(re.findall(r"05_trends\.ipynb::(\w+)", chapter)) | set(
        re.findall(r"\{glue\} (\w+)", chapter)
    )
    executed = tmp_path / "05_trends.ipynb"
    parameters = {
        "images_dir": str(collection / "images"),
        "metadata": str(collection / "metadata.csv"),
        "annotations": str(collection / "annotations.json"),
        "results_dir": str(trends_run.parent),  # the model is results_dir/arch, outputs results_dir/trends
        "arch": trends_run.name,
        "score_threshold": 0.0,
        "workers": 0,
        "device": "cpu",
        "n_boot": 50,
        "n_perm": 99,
    }
    papermill.execute_notebook(
        str(root / "notebooks" / "05_trends.ipynb"), str(executed), parameters=parameters, cwd=str(root),
        kernel_name="python3", progress_bar=False,
    )  # fmt: skip
    glued = {
        output["metadata"]["scrapbook"]["name"]
        for cell in load_notebook_node(str(executed)).cells
        for output in cell.get("outputs", [])
        if "scrapbook" in output.get("metadata", {})
    }
    assert wanted and wanted <= glued, f"glued by the notebook: {sorted(glued)}"
    assert (trends_run.parent / "trends" / "ground_truth" / "stats" / "trend_change.csv").is_file()
    assert (trends_run.parent / "trends" / "plots" / "planted_vs_recovered.png").is_file()
