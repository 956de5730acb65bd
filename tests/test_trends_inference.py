"""Trend inference with a fake predictor: rows, boxes, resume, retry, sharding, the whole pipeline."""

import json
import socket

import numpy as np
import pandas as pd
import pytest
import torch
import torch.multiprocessing as mp
from PIL import Image

from fashionseg.data.ontology import LabelSpace
from fashionseg.distributed import init_from_env, shutdown
from fashionseg.errors import FashionsegError
from fashionseg.structures import Prediction
from fashionseg.trends.collection import open_collection
from fashionseg.trends.inference import InferenceSettings, infer_collection, load_predictions
from fashionseg.trends.pipeline import predict_and_analyse
from fashionseg.trends.stats import StatsSettings

SKIRT, HAT, DOT, STRIPE = 8, 14, 323, 328


class FakePredictor:
    """Stands in for Predictor: a skirt scoring the image's mean red value (box = the middle half of the
    image), plus a hat on landscape images. Counts the images it is asked to predict."""

    labels = LabelSpace((SKIRT, HAT), ("skirt", "hat"), (DOT, STRIPE), ("dot", "stripe"), (SKIRT,))

    def __init__(self, fail_after_calls: int | None = None):
        self.calls = self.images = 0
        self.fail_after_calls = fail_after_calls

    def predict(self, images: list[torch.Tensor], batch_size: int = 4) -> list[Prediction]:
        if self.fail_after_calls is not None and self.calls >= self.fail_after_calls:
            raise KeyboardInterrupt("simulated crash")
        self.calls += 1
        self.images += len(images)
        out = []
        for image in images:
            h, w = image.shape[-2:]
            n = 2 if w > h else 1
            out.append(
                Prediction(
                    boxes=np.tile(np.array([w / 4, h / 4, 3 * w / 4, 3 * h / 4], dtype=np.float32), (n, 1)),
                    scores=np.array([float(image[0].mean()), 0.9][:n], dtype=np.float32),
                    category_ids=np.array([SKIRT, HAT][:n]),
                    masks=np.zeros((n, h, w), dtype=bool),
                    attribute_scores=np.array([[0.9, 0.2], [0.9, 0.9]][:n], dtype=np.float32),
                    attribute_ids=[[DOT], [DOT, STRIPE]][:n],
                )
            )
        return out


def write_image(path, red: int, size=(48, 48)) -> None:
    Image.new("RGB", size, (red, 30, 30)).save(path)


@pytest.fixture
def folder(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for i, red in enumerate([200, 150, 100]):
        write_image(images / f"img{i}.png", red)
    write_image(images / "wide.png", 230, size=(120, 80))
    write_image(images / "faint.png", 5)  # skirt score 0.02: below the 0.05 store threshold
    (images / "broken.jpg").write_text("not an image")
    return images


FAST = InferenceSettings(batch_size=2, workers=0)


def rows_of(table: pd.DataFrame, file: str) -> pd.DataFrame:
    return table[table["file"] == file].sort_values("detection")


def test_rows_boxes_and_attributes(folder, tmp_path):
    out = tmp_path / "out"
    files = open_collection(folder).files
    settings = InferenceSettings(batch_size=2, workers=2, resize=(40, 60))
    summary = infer_collection(FakePredictor(), folder, files, out, settings, "fake")
    assert (summary.images_predicted, summary.images_unreadable) == (5, 1)
    table = pd.read_parquet(out / "predictions.parquet")
    images = table[table["detection"] == -1].set_index("file")
    assert sorted(images.index) == sorted(files)
    assert "broken.jpg" in images.loc["broken.jpg", "error"]
    assert images["error"].notna().sum() == 1
    assert len(rows_of(table, "faint.png")) == 1  # the image row only
    wide = rows_of(table, "wide.png")
    assert (wide["width"].iloc[0], wide["height"].iloc[0]) == (120, 80)
    skirt, hat = wide.iloc[1], wide.iloc[2]
    # predicted on the 60 x 40 resized image, stored in the original's pixels
    assert [skirt.x1, skirt.y1, skirt.x2, skirt.y2] == pytest.approx([30, 20, 90, 60], abs=1e-4)
    assert dict(zip(skirt.attribute_ids, skirt.attribute_scores, strict=True)) == pytest.approx(
        {DOT: 0.9, STRIPE: 0.2}
    )
    assert (hat.category_name, len(hat.attribute_ids)) == ("hat", 0)  # hats carry no attributes
    assert not list((out / "parts").glob("*.parquet"))


def test_second_run_skips_done_images_and_retries_unreadable(folder, tmp_path):
    out = tmp_path / "out"
    first = FakePredictor()
    infer_collection(first, folder, open_collection(folder).files, out, FAST, "fake")
    assert first.images == 5
    write_image(folder / "broken.jpg", 120)  # repaired
    write_image(folder / "new.png", 90)
    again = FakePredictor()
    summary = infer_collection(again, folder, open_collection(folder).files, out, FAST, "fake")
    assert again.images == 2 and summary.images_done_before == 5
    table = load_predictions(out)
    images = table[table["detection"] == -1]
    assert images["error"].isna().all()
    assert sorted(images["file"]) == sorted(open_collection(folder).files)


def test_interrupted_run_resumes_from_its_parts(folder, tmp_path):
    out = tmp_path / "out"
    files = open_collection(folder).files
    settings = InferenceSettings(batch_size=1, workers=0, flush_every=1)
    with pytest.raises(KeyboardInterrupt):
        infer_collection(FakePredictor(fail_after_calls=2), folder, files, out, settings, "fake")
    assert not (out / "predictions.parquet").exists()
    assert len(list((out / "parts").glob("*.parquet"))) >= 2
    again = FakePredictor()
    infer_collection(again, folder, files, out, settings, "fake")
    assert again.images == 3  # 6 files: 2 predicted before the crash, the unreadable one is read again
    table = pd.read_parquet(out / "predictions.parquet")
    assert table[table["detection"] == -1]["file"].value_counts().max() == 1
    assert not list((out / "parts").glob("*.parquet"))


def test_resume_refuses_other_settings(folder, tmp_path):
    out = tmp_path / "out"
    files = open_collection(folder).files
    infer_collection(FakePredictor(), folder, files, out, FAST, "fake")
    with pytest.raises(FashionsegError, match="min_score: 0.05 then, 0.2 now"):
        infer_collection(FakePredictor(), folder, files, out, InferenceSettings(min_score=0.2), "fake")
    with pytest.raises(FashionsegError, match="model.*--restart"):
        infer_collection(FakePredictor(), folder, files, out, FAST, "another model")


def test_restart_starts_over_when_the_model_changed(folder, tmp_path, capsys):
    out = tmp_path / "out"
    files = open_collection(folder).files
    infer_collection(FakePredictor(), folder, files, out, FAST, "model A")
    before = len(pd.read_parquet(out / "predictions.parquet"))
    summary = infer_collection(FakePredictor(), folder, files, out, FAST, "model B", restart=True)
    assert "starting over" in capsys.readouterr().out
    assert summary.images_done_before == 0  # nothing of model A was reused
    assert len(pd.read_parquet(out / "predictions.parquet")) == before  # and nothing of it is left
    assert json.loads((out / "inference.json").read_text())["model"] == "model B"
    again = infer_collection(FakePredictor(), folder, files, out, FAST, "model B", restart=True)
    assert again.images_predicted == 0  # the same model resumes


def test_checkpoint_id_is_the_content_not_the_path(tmp_path):
    from fashionseg.trends.pipeline import checkpoint_id

    a, b, c = tmp_path / "a" / "model_final.pt", tmp_path / "b.pt", tmp_path / "c.pt"
    a.parent.mkdir()
    a.write_bytes(b"weights" * 1000)
    b.write_bytes(b"weights" * 1000)
    c.write_bytes(b"weights" * 999 + b"weightz")
    assert checkpoint_id(a.parent) == checkpoint_id(a) == checkpoint_id(b)  # a run folder, a copy elsewhere
    assert checkpoint_id(c) != checkpoint_id(b)
    assert str(tmp_path) not in checkpoint_id(a)


def _shard(rank: int, world_size: int, port: int, folder: str, out: str) -> None:
    import os
    from pathlib import Path

    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world_size)
    )
    torch.set_num_threads(1)
    info = init_from_env("cpu")
    predictor = FakePredictor()
    files = open_collection(folder).files
    infer_collection(predictor, Path(folder), files, Path(out), FAST, "fake", info)
    (Path(out) / f"rank{rank}.json").write_text(json.dumps({"images": predictor.images}))
    shutdown(info)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_sharded_run_with_two_processes(folder, tmp_path):
    out = tmp_path / "out"
    # fork, as DataLoader workers do: spawn would re-import torch and the package in each child (~10 s)
    mp.start_processes(_shard, args=(2, free_port(), str(folder), str(out)), nprocs=2, start_method="fork")
    per_rank = [json.loads((out / f"rank{r}.json").read_text())["images"] for r in range(2)]
    assert per_rank == [2, 3]  # 6 files, every other one per rank; broken.jpg (rank 0's) is not predicted
    table = pd.read_parquet(out / "predictions.parquet")
    images = table[table["detection"] == -1]
    assert sorted(images["file"]) == sorted(open_collection(folder).files)
    assert images["file"].is_unique
    assert not list((out / "parts").glob("*.parquet"))


def test_pipeline_reports_bad_input_and_writes_outputs(folder, tmp_path):
    meta = tmp_path / "meta.csv"
    meta.write_text(
        "file,season\nimg0.png,SS\nimg1.png,AW\nimg2.png,SS\nwide.png,AW\nbroken.jpg,SS\ngone.png,AW\n"
    )
    out = tmp_path / "out"
    collection = open_collection(folder, meta)
    settings = StatsSettings(by="season", order=("SS", "AW"), n_boot=50, n_perm=99, min_count=1)
    report, stats = predict_and_analyse(FakePredictor(), collection, out, FAST, settings, "fake")
    assert report == json.loads((out / "report.json").read_text())
    assert [u["file"] for u in report["images_unreadable"]] == ["broken.jpg"]
    assert report["images_without_metadata"] == ["faint.png"]
    assert report["rows_without_image"] == ["gone.png"]
    assert report["images_predicted"] == 5
    assert report["groups"] == {"SS": 2, "AW": 2} and report["images_without_group"] == 1
    prevalence = pd.read_csv(out / "stats" / "category_prevalence.csv").set_index("category_name")
    # skirts score 0.78, 0.59, 0.39, 0.9 (wide), 0.02: 3 of the 5 readable images reach 0.5
    assert prevalence.loc["skirt", "images_with"] == 3
    assert prevalence.loc["hat", "share"] == pytest.approx(1 / 5)
    assert len(pd.read_csv(out / "stats" / "trend_change.csv")) == len(stats.trend.change)
    assert {p.name for p in (out / "plots").glob("*.png")} >= {"category_prevalence.png", "trend_heatmap.png"}


def test_analysis_threshold_below_the_store_threshold_keeps_every_detection(folder, tmp_path):
    collection = open_collection(folder)
    _, stats = predict_and_analyse(
        FakePredictor(), collection, tmp_path / "out", FAST, StatsSettings(0.01), "fake"
    )
    # faint.png's skirt scores 0.02: below the default store threshold (0.05), above the analysis one
    assert stats.category_prevalence.set_index("category_name").loc["skirt", "images_with"] == 5
