"""The Streamlit page under ``streamlit.testing.v1.AppTest``, with a fake predictor in place of a model."""

import io
import json
import sys

import numpy as np
import pytest
import streamlit as st
import torch
from PIL import Image
from streamlit.testing.v1 import AppTest

from fashionseg.app import cli as app_cli
from fashionseg.app import logic
from fashionseg.config import load_config, save_config, to_dict
from fashionseg.data import ontology
from fashionseg.data.ontology import LabelSpace
from fashionseg.predict import Predictor
from fashionseg.structures import Prediction

LABELS = LabelSpace.from_coco(ontology.ontology_json())
SHIRT, PANTS, ZIPPER = 0, 6, 35
SYMMETRICAL = ontology.attribute_by_name("symmetrical").id


class FakePredictor:
    """Stands in for ``Predictor``: three detections on any image (shirt 0.9, pants 0.6, zipper 0.3)."""

    def __init__(self) -> None:
        self.labels = LABELS
        self.config = to_dict(load_config("demo"))
        self.device = torch.device("cpu")
        self.images_seen = 0

    def predict(self, images: list[Image.Image], score_threshold: float = 0.0) -> list[Prediction]:
        self.images_seen += len(images)
        detections = [self._detections(im.width, im.height) for im in images]
        return [pred.select(pred.scores >= score_threshold) for pred in detections]

    def _detections(self, width: int, height: int) -> Prediction:
        boxes = np.array(
            [[0, 0, width / 2, height / 2], [0, height / 2, width / 2, height], [width / 2, 0, width, 9]]
        )
        masks = np.zeros((3, height, width), dtype=bool)
        for i, (x1, y1, x2, y2) in enumerate(boxes.astype(int)):
            masks[i, y1:y2, x1:x2] = True
        attribute_scores = np.zeros((3, LABELS.num_attributes), dtype=np.float32)
        attribute_scores[:, LABELS.attribute_ids.index(SYMMETRICAL)] = [0.7, 0.4, 0.0]
        return Prediction(
            boxes.astype(np.float32),
            np.array([0.9, 0.6, 0.3], dtype=np.float32),
            np.array([SHIRT, PANTS, ZIPPER]),
            masks,
            attribute_scores,
            [[SYMMETRICAL], [], []],
        )


METRICS = {
    "bbox": {"coco": {"AP": 31.25}, "iou_f1": {"AP": 22.5}},
    "segm": {"coco": {"AP": 28.0}, "iou_f1": {"AP": 20.0}},
}


@pytest.fixture
def results(tmp_path, monkeypatch):
    """results/demo/{R50-FPN (evaluated), R50-C4 (not)} with the fake predictor behind every checkpoint."""
    root = tmp_path / "results"
    for arch, metrics in (("R50-FPN", METRICS), ("R50-C4", None)):
        run = root / "demo" / arch
        run.mkdir(parents=True)
        save_config(load_config("demo", {"name": arch, "model.arch": arch}), run / "config.yaml")
        (run / "model_final.pt").write_bytes(b"never read: the fake predictor stands in")
        if metrics:
            (run / "metrics.json").write_text(json.dumps(metrics))
    fake = FakePredictor()
    loaded: list[str] = []

    def from_checkpoint(cls, path, device="auto"):
        loaded.append(str(path))
        return fake

    monkeypatch.setattr(Predictor, "from_checkpoint", classmethod(from_checkpoint))
    monkeypatch.setattr(sys, "argv", ["streamlit_app.py", "--results", str(root)])
    st.cache_resource.clear()
    yield root, fake, loaded
    st.cache_resource.clear()


def start() -> AppTest:
    return AppTest.from_file(str(app_cli.PAGE), default_timeout=60).run()


def png(width: int = 80, height: int = 60) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (90, 120, 150)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_thresholds_and_category_filter_change_the_table(results):
    at = start()
    assert not at.exception and not at.dataframe
    at.file_uploader(key="uploads").upload("look.png", png(), "image/png").run()
    table = at.dataframe[0].value
    assert table["category"].tolist() == ["shirt, blouse", "pants"]
    assert table["silhouette"].tolist() == ["symmetrical 0.70", ""]
    assert at.image[0].captions == ["2 of 2 detections shown"]  # the model ran at the default 0.5
    at.slider(key="score").set_value(0.0).run()
    assert at.dataframe[0].value["category"].tolist() == ["shirt, blouse", "pants", "zipper"]
    at.slider(key="attribute").set_value(0.3).run()
    assert at.dataframe[0].value["silhouette"].tolist() == ["symmetrical 0.70", "symmetrical 0.40", ""]
    at.multiselect(key="categories").set_value(["pants"]).run()
    assert at.dataframe[0].value["category"].tolist() == ["pants"]
    assert at.image[0].captions == ["1 of 3 detections shown"]


def test_model_loads_once_and_each_image_runs_once_per_detection_floor(results):
    _, fake, loaded = results
    at = start()
    at.file_uploader(key="uploads").upload("look.png", png(), "image/png").run()
    for value in (0.6, 0.7, 0.95, 0.5):  # at or above the default: the cached detections serve
        at.slider(key="score").set_value(value).run()
    assert len(loaded) == 1 and fake.images_seen == 1
    for value in (0.2, 0.7, 0.2):  # a lower floor runs the model once more, and is cached too
        at.slider(key="score").set_value(value).run()
    assert at.image[0].captions == ["3 of 3 detections shown"]
    assert len(loaded) == 1 and fake.images_seen == 2


def test_bad_upload_shows_the_error_and_the_good_one_still_runs(results):
    at = start()
    uploader = at.file_uploader(key="uploads")
    uploader.upload("notes.jpg", b"shopping list: socks", "image/jpeg")
    uploader.upload("look.png", png(), "image/png").run()
    assert len(at.error) == 1 and "notes.jpg is not a readable image" in at.error[0].value
    assert [s.value for s in at.subheader] == ["look.png"]
    assert len(at.dataframe) == 1


def start_error(name: str, data: bytes) -> list:
    """The errors the page shows for one uploaded file."""
    at = start()
    at.file_uploader(key="uploads").upload(name, data, "application/octet-stream").run()
    return list(at.error)


def test_truncated_upload_and_oversize_upload_are_explained(results, monkeypatch):
    whole = png(120, 90)
    errors = start_error("cut.png", whole[: len(whole) // 2])
    assert len(errors) == 1 and "cut.png is truncated or corrupt" in errors[0].value
    monkeypatch.setattr(sys, "argv", [*sys.argv, "--max-upload-mb", "1"])
    errors = start_error("huge.png", b"\x89PNG" + bytes(2**20))
    assert len(errors) == 1 and "over the 1 MB upload limit" in errors[0].value


def test_model_card_shows_metrics_or_not_evaluated(results):
    root, _, _ = results
    at = start()
    card = at.sidebar.markdown[0].value
    assert f"**run**: {root / 'demo' / 'R50-C4'}" in card
    assert "**accuracy**: not evaluated" in card  # R50-C4 sorts first and has no metrics.json
    at.selectbox(key="run").select(next(o for o in at.selectbox(key="run").options if "R50-FPN" in o)).run()
    card = at.sidebar.markdown[0].value
    assert "**architecture**: R50-FPN" in card
    assert "**box AP**: 31.2" in card and "**mask AP**: 28.0" in card
    assert "**box AP^IoU+F1**: 22.5" in card and "**mask AP^IoU+F1**: 20.0" in card


def test_example_photo_needs_no_upload(results):
    at = start()
    at.selectbox(key="example").select(next(iter(logic.EXAMPLES))).run()
    assert [s.value for s in at.subheader] == [next(iter(logic.EXAMPLES))]
    assert len(at.dataframe[0].value) == 2
    labels = [b.label for b in at.get("download_button")]
    assert labels == ["Detections (COCO-results JSON)", "Overlay (PNG)"]


def test_no_trained_run_explains_how_to_get_one(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["streamlit_app.py", "--results", str(tmp_path / "empty")])
    at = start()
    assert "No trained model found" in at.warning[0].value
    assert "fashionseg train --preset demo" in at.warning[0].value


def test_missing_weights_are_named(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["streamlit_app.py", "--weights", str(tmp_path / "gone")])
    at = start()
    assert f"{tmp_path / 'gone'} does not exist" in at.error[0].value
