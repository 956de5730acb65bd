"""Collections: metadata CSV checks, folder/CSV mismatches, the synthetic collection and its ground truth."""

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from fashionseg.errors import FashionsegError
from fashionseg.trends.collection import (
    PlantedTrends,
    ground_truth_predictions,
    make_synthetic_collection,
    open_collection,
    read_metadata,
)
from fashionseg.trends.stats import category_prevalence, feature_counts, group_codes


def write_csv(tmp_path, text: str, name: str = "meta.csv"):
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


def test_metadata_is_text_indexed_by_normalised_file(tmp_path):
    path = write_csv(tmp_path, '\ufefffile,season,brand\n./a.jpg,SS22,"Ace, Inc."\nsub\\b.jpg,AW22,\n\n')
    meta = read_metadata(path)
    assert meta.index.tolist() == ["a.jpg", "sub/b.jpg"]
    assert meta.loc["a.jpg", "brand"] == "Ace, Inc."
    assert meta.loc["sub/b.jpg", "season"] == "AW22"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("file,season\na.jpg,SS\nb.jpg,AW,extra\n", r"meta\.csv line 3: 3 fields, but the header has 2"),
        ("name,season\na.jpg,SS\n", r"meta\.csv line 1: no 'file' column \(columns: name, season\)"),
        ("file,season\na.jpg,SS\n./a.jpg,AW\n", r"meta\.csv line 3: 'a\.jpg' already has a row \(line 2\)"),
        ("file,season\n,SS\n", r"meta\.csv line 2: empty 'file' value"),
        ('file,season\na.jpg,"SS\n', r"meta\.csv line \d: not valid CSV"),
        ("file,file\na.jpg,b.jpg\n", r"meta\.csv line 1: column\(s\) file appear more than once"),
        ("\n\n", r"meta\.csv is empty"),
    ],
)
def test_malformed_metadata_names_file_and_line(tmp_path, text, message):
    with pytest.raises(FashionsegError, match=message):
        read_metadata(write_csv(tmp_path, text))


def test_non_utf8_and_missing_metadata(tmp_path):
    path = tmp_path / "meta.csv"
    path.write_bytes("file,season\ncaf\xe9.jpg,SS\n".encode("latin-1"))
    with pytest.raises(FashionsegError, match="meta.csv is not UTF-8"):
        read_metadata(path)
    with pytest.raises(FashionsegError, match="nope.csv does not exist"):
        read_metadata(tmp_path / "nope.csv")


def test_collection_reports_both_kinds_of_mismatch(tmp_path):
    images = tmp_path / "images"
    (images / "sub").mkdir(parents=True)
    for name in ("a.png", "b.png", "sub/c.png"):
        Image.new("RGB", (8, 8)).save(images / name)
    (images / "notes.txt").write_text("not an image suffix")
    meta = write_csv(tmp_path, "image,season\na.png,SS\nsub/c.png,AW\nmissing.png,AW\n")
    collection = open_collection(images, meta, file_column="image")
    assert collection.files == ("a.png", "b.png", "sub/c.png")
    assert collection.images_without_metadata == ("b.png",)
    assert collection.rows_without_image == ("missing.png",)
    assert collection.report()["metadata_rows"] == 3
    (tmp_path / "empty").mkdir()
    with pytest.raises(FashionsegError, match="no images found under"):
        open_collection(tmp_path / "empty")
    with pytest.raises(FashionsegError, match="does not exist"):
        open_collection(tmp_path / "nowhere")


def test_quotas_sum_to_images_per_season_and_follow_the_design():
    planted = PlantedTrends()
    quotas = planted.quotas(40)
    assert (quotas.sum(axis=(1, 2)) == 40).all()
    assert quotas[:, 0].sum(axis=1).tolist() == [round(40 * h) for h in planted.hat]
    skirt_images = quotas[:, :, :3].sum(axis=(1, 2))
    assert skirt_images.tolist() == [20] * 4
    assert np.allclose(quotas[:, :, 0].sum(axis=1) / skirt_images, planted.stripe, atol=0.05)


def test_synthetic_collection_matches_its_design(tmp_path):
    planted = PlantedTrends()
    out = make_synthetic_collection(tmp_path / "coll", images_per_season=10, seed=1, show_progress=False)
    collection = open_collection(out / "images", out / "metadata.csv")
    assert len(collection.files) == 40 and not collection.images_without_metadata
    truth = ground_truth_predictions(out / "annotations.json")
    assert sorted(truth.loc[truth["detection"] == -1, "file"]) == list(collection.files)
    counts = feature_counts(truth, 0.5, 0.5)
    codes, levels = group_codes(counts.files, collection.metadata, "season", order=planted.seasons)
    hat = counts.features.index[counts.features["feature"] == "hat"][0]
    hat_images = [counts.successes[codes == g, hat].sum() for g in range(4)]
    assert hat_images == planted.quotas(10)[:, 0].sum(axis=1).tolist()
    dates = pd.to_datetime(collection.metadata["date"])
    assert (dates.groupby(collection.metadata["season"]).min().sort_values().index.tolist()) == list(
        planted.seasons
    )
    assert category_prevalence(truth, 0.5).set_index("category_name").loc["skirt", "share"] == pytest.approx(
        0.5
    )
