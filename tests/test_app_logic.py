"""The app's logic without a server: uploads, run discovery, model card, detection table, exports, CLI."""

import argparse
import io
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pycocotools.mask as mask_utils
import pytest
import torch
from PIL import Image

from fashionseg.app import cli as app_cli
from fashionseg.app import logic
from fashionseg.config import load_config, save_config, to_dict
from fashionseg.data import ontology
from fashionseg.data.ontology import LabelSpace
from fashionseg.errors import FashionsegError
from fashionseg.structures import Prediction

LABELS = LabelSpace.from_coco(ontology.ontology_json())
SHIRT, PANTS, SLEEVE, ZIPPER = 0, 6, 31, 35
SYMMETRICAL = ontology.attribute_by_name("symmetrical").id
MINI = ontology.attribute_by_name("mini (length)").id


def encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def fake_prediction(height: int = 40, width: int = 60) -> Prediction:
    """Four detections: shirt 0.9, pants 0.6, sleeve 0.4, zipper 0.2; attributes at chosen probabilities."""
    boxes = np.array([[0, 0, 30, 20], [0, 20, 30, 40], [30, 0, 45, 20], [45, 20, 60, 40]], dtype=np.float32)
    masks = np.zeros((4, height, width), dtype=bool)
    for i, (x1, y1, x2, y2) in enumerate(boxes.astype(int)):
        masks[i, y1:y2, x1:x2] = True
    attribute_scores = np.zeros((4, LABELS.num_attributes), dtype=np.float32)
    sym, mini = LABELS.attribute_ids.index(SYMMETRICAL), LABELS.attribute_ids.index(MINI)
    attribute_scores[0, [sym, mini]] = [0.8, 0.35]
    attribute_scores[1, sym] = 0.6
    attribute_scores[3, sym] = 0.9  # zipper: no attributes in Fashionpedia, so never shown
    return Prediction(
        boxes=boxes,
        scores=np.array([0.9, 0.6, 0.4, 0.2], dtype=np.float32),
        category_ids=np.array([SHIRT, PANTS, SLEEVE, ZIPPER]),
        masks=masks,
        attribute_scores=attribute_scores,
        attribute_ids=[[SYMMETRICAL], [SYMMETRICAL], [], [SYMMETRICAL]],
    )


def test_parse_app_args_defaults_and_values():
    assert logic.parse_app_args([]) == logic.AppOptions()
    options = logic.parse_app_args(
        ["--weights", "w", "--results", "a", "--results", "b", "--max-upload-mb", "3"]
    )
    assert options == logic.AppOptions(Path("w"), (Path("a"), Path("b")), 3)


def test_read_upload_returns_rgb_of_the_right_size():
    image = logic.read_upload("photo.png", encode(Image.new("RGB", (64, 48), (10, 200, 30)), "PNG"))
    assert image.mode == "RGB" and image.size == (64, 48)
    assert image.getpixel((5, 5)) == (10, 200, 30)


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("notes.jpg", b"these are notes, not a photo", "notes.jpg is not a readable image"),
        ("empty.png", b"", "empty.png is empty"),
        ("anim.gif", b"GIF89a", "anim.gif: only jpg, jpeg, png, webp images are accepted"),
    ],
)
def test_read_upload_refuses_non_images(name, data, message):
    with pytest.raises(logic.UploadError, match=message):
        logic.read_upload(name, data)


def test_truncated_jpeg_is_refused_with_its_name():
    data = encode(Image.effect_noise((120, 80), 60).convert("RGB"), "JPEG")
    with pytest.raises(logic.UploadError, match="cut.jpg is truncated or corrupt") as info:
        logic.read_upload("cut.jpg", data[: len(data) // 2])
    assert "fashionseg-upload-" not in str(info.value)


def test_decompression_bomb_is_refused_before_decoding():
    header = struct.pack(">IIBBBBB", 30_000, 30_000, 8, 2, 0, 0, 0)  # 900 megapixels, RGB, a few bytes
    data = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
    with pytest.raises(logic.UploadError, match="bomb.png"):
        logic.read_upload("bomb.png", data)


def test_upload_over_the_size_limit_is_refused():
    data = encode(Image.effect_noise((900, 900), 80).convert("RGB"), "PNG")
    assert len(data) > 2**20
    with pytest.raises(logic.UploadError, match="over the 1 MB upload limit"):
        logic.read_upload("big.png", data, max_mb=1)


def test_sixteen_bit_cmyk_and_grayscale_become_rgb():
    ramp = np.tile(np.linspace(0, 65535, 32, dtype=np.uint16), (8, 1))
    sixteen = logic.read_upload("deep.png", encode(Image.fromarray(ramp), "PNG"))
    assert sixteen.mode == "RGB" and sixteen.getpixel((31, 0)) == (255, 255, 255)
    assert sixteen.getpixel((0, 0)) == (0, 0, 0)
    cmyk = logic.read_upload("print.jpg", encode(Image.new("CMYK", (16, 16), (0, 255, 255, 0)), "JPEG"))
    red, green, blue = cmyk.getpixel((8, 8))
    assert cmyk.mode == "RGB" and red > 200 and green < 60 and blue < 60
    gray = logic.read_upload("gray.webp", encode(Image.new("L", (16, 16), 128), "WEBP", lossless=True))
    assert gray.mode == "RGB" and gray.getpixel((3, 3)) == (128, 128, 128)


def test_exif_rotated_photo_is_upright():
    image = Image.new("RGB", (40, 20), (255, 0, 0))
    image.paste((0, 0, 255), (0, 0, 10, 20))  # blue on the left edge of the stored pixels
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise
    upright = logic.read_upload("phone.jpg", encode(image, "JPEG", exif=exif, quality=95))
    assert upright.size == (20, 40)
    assert upright.getpixel((10, 2))[2] > 200  # the blue stripe is now at the top


def test_large_photos_are_shrunk_to_max_side():
    image = logic.read_upload("wide.png", encode(Image.new("RGB", (3000, 600)), "PNG"))
    assert image.size == (logic.MAX_SIDE, round(600 * logic.MAX_SIDE / 3000))


def make_run(folder: Path, arch: str = "R50-FPN", metrics: dict | None = None) -> Path:
    folder.mkdir(parents=True)
    save_config(load_config("demo", {"name": arch, "model.arch": arch}), folder / "config.yaml")
    (folder / "model_final.pt").write_bytes(b"weights")
    if metrics is not None:
        (folder / "metrics.json").write_text(json.dumps(metrics))
    return folder


METRICS = {
    "bbox": {"coco": {"AP": 12.345}, "iou_f1": {"AP": 8.0}},
    "segm": {"coco": {"AP": 10.0}, "iou_f1": {"AP": 6.55}},
}


def test_discover_runs_finds_every_checkpoint_with_weights_first(tmp_path):
    fpn = make_run(tmp_path / "results" / "demo" / "R50-FPN", metrics=METRICS)
    c4 = make_run(tmp_path / "results" / "demo" / "R50-C4")
    extra = make_run(tmp_path / "elsewhere" / "R50-DC5", arch="R50-DC5")
    runs = logic.discover_runs([tmp_path / "results", tmp_path / "missing"], first=extra)
    assert [r.checkpoint for r in runs] == [p / "model_final.pt" for p in (extra, c4, fpn)]
    assert runs[2].metrics == METRICS and runs[1].metrics is None
    again = logic.discover_runs([tmp_path / "results"], first=fpn / "model_final.pt")
    assert [r.folder for r in again] == [fpn, c4]


def test_weights_that_do_not_exist_name_the_file(tmp_path):
    with pytest.raises(FashionsegError, match="model_final.pt does not exist"):
        logic.run_info(tmp_path)


def test_model_card_reads_config_and_metrics(tmp_path):
    card = dict(logic.model_card(logic.run_info(make_run(tmp_path / "demo" / "R50-C4", "R50-C4", METRICS))))
    assert card["architecture"] == "R50-C4"
    assert card["preset"] == "demo"
    solver = load_config("demo").solver
    assert card["iterations"] == f"{solver.max_iter} × {solver.ims_per_batch} images"
    assert card["training data"].startswith("synthetic")
    assert (card["box AP"], card["mask AP"]) == ("12.3", "10.0")
    assert (card["box AP^IoU+F1"], card["mask AP^IoU+F1"]) == ("8.0", "6.5")


def test_model_card_of_an_unevaluated_run(tmp_path):
    card = dict(logic.model_card(logic.run_info(make_run(tmp_path / "runs" / "seed" / "R50-FPN"))))
    assert card["accuracy"].startswith("not evaluated")
    assert "box AP" not in card
    assert card["preset"] == "seed"
    plain = dict(logic.model_card(logic.run_info(make_run(tmp_path / "runs" / "R50-DC5", "R50-DC5"))))
    assert plain["preset"] == "unknown"  # runs/<arch>: trained without a preset folder


def test_thresholds_and_category_filter_select_detections():
    pred = fake_prediction()
    shown = logic.select(pred, LABELS, logic.Controls(0.5, 0.5))
    assert shown.category_ids.tolist() == [SHIRT, PANTS]
    assert shown.attribute_ids == [[SYMMETRICAL], [SYMMETRICAL]]
    low = logic.select(pred, LABELS, logic.Controls(0.0, 0.3))
    assert low.category_ids.tolist() == [SHIRT, PANTS, SLEEVE, ZIPPER]
    assert low.attribute_ids == [[SYMMETRICAL, MINI], [SYMMETRICAL], [], []]
    only = logic.select(pred, LABELS, logic.Controls(0.0, 0.5, categories=(PANTS, ZIPPER)))
    assert only.category_ids.tolist() == [PANTS, ZIPPER]


def test_detection_floor_is_the_threshold_up_to_the_default():
    assert logic.detection_floor(0.2) == 0.2
    assert logic.detection_floor(logic.DEFAULT_SCORE_THRESHOLD) == logic.DEFAULT_SCORE_THRESHOLD
    assert logic.detection_floor(0.9) == logic.DEFAULT_SCORE_THRESHOLD  # higher thresholds re-select


def test_detections_table_groups_attributes():
    table = logic.detections_table(logic.select(fake_prediction(), LABELS, logic.Controls(0.3, 0.3)), LABELS)
    assert list(table.columns) == ["category", "supercategory", "confidence", "silhouette", "length"]
    assert table["category"].tolist() == ["shirt, blouse", "pants", "sleeve"]
    assert table["supercategory"].tolist() == ["upperbody", "lowerbody", "garment parts"]
    assert table["confidence"].tolist() == [0.9, 0.6, 0.4]
    assert table["silhouette"].tolist() == ["symmetrical 0.80", "symmetrical 0.60", ""]
    assert table["length"].tolist() == ["mini (length) 0.35", "", ""]
    strict = logic.detections_table(logic.select(fake_prediction(), LABELS, logic.Controls(0.3, 0.9)), LABELS)
    assert list(strict.columns) == ["category", "supercategory", "confidence"]


def test_detections_json_is_coco_results_with_attributes():
    pred = fake_prediction()
    shown = logic.select(pred, LABELS, logic.Controls(0.5, 0.3))
    results = json.loads(logic.detections_json(shown, LABELS, image_id=3))
    assert [r["category_id"] for r in results] == [SHIRT, PANTS]
    assert results[0]["bbox"] == [0.0, 0.0, 30.0, 20.0]
    assert results[0]["attribute_ids"] == [SYMMETRICAL, MINI]
    assert results[0]["attribute_scores"] == pytest.approx([0.8, 0.35])
    for r, mask in zip(results, shown.masks, strict=True):
        assert r["image_id"] == 3
        assert np.array_equal(mask_utils.decode(r["segmentation"]).astype(bool), mask)


def test_overlay_colours_only_the_shown_masks():
    image = Image.new("RGB", (60, 40), (128, 128, 128))
    drawn = logic.overlay(image, logic.select(fake_prediction(), LABELS, logic.Controls(0.5, 0.5)), LABELS)
    assert drawn.size == image.size
    assert drawn.getpixel((15, 30)) != (128, 128, 128)  # inside the pants mask
    assert drawn.getpixel((52, 35)) == (128, 128, 128)  # the zipper, below the threshold
    assert Image.open(io.BytesIO(logic.png_bytes(drawn))).size == (60, 40)


def test_download_names_are_plain_file_stems():
    assert logic.file_stem("street look.final.JPG") == "street_look.final"
    assert (
        logic.file_stem("Grace Hopper (photo shipped with matplotlib)")
        == "Grace_Hopper_photo_shipped_with_matplotlib"
    )
    assert logic.file_stem("../../etc/passwd") == "passwd"
    assert logic.file_stem("(((.png") == "image"


def test_examples_are_rgb_images():
    for name, load in logic.EXAMPLES.items():
        image = load()
        assert image.mode == "RGB" and min(image.size) >= 128, name


def test_real_predictor_output_flows_through_the_page_logic():
    """An untrained R50-FPN (every box kept) through select, table, JSON and overlay: shapes line up."""
    from fashionseg.models import build_model
    from fashionseg.predict import Predictor

    torch.manual_seed(0)
    torch.set_num_threads(1)
    cfg = load_config("demo", {"model.box_score_thresh": 0.0, "model.box_detections_per_img": 5})
    model = build_model(cfg.model, LABELS, min_size=96, max_size=128)
    predictor = Predictor(model, LABELS, to_dict(cfg), torch.device("cpu"))
    image = logic.EXAMPLES[next(iter(logic.EXAMPLES))]()
    (pred,) = predictor.predict([image])
    assert len(pred) == 5 and pred.masks.shape[1:] == (image.height, image.width)
    shown = logic.select(pred, LABELS, logic.Controls(0.0, 0.0))
    table = logic.detections_table(shown, LABELS)
    assert len(table) == len(json.loads(logic.detections_json(shown, LABELS))) == 5
    assert logic.overlay(image, shown, LABELS).size == image.size


def app_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fashionseg app")
    app_cli.add_arguments(parser)
    return parser


def test_cli_serves_localhost_headless_without_telemetry(tmp_path):
    args = app_parser().parse_args(["--port", "8600", "--weights", str(tmp_path)])
    command = app_cli.streamlit_command(args)
    assert command[1:5] == ["-m", "streamlit", "run", str(app_cli.PAGE)]
    for option in (
        "--server.address=127.0.0.1",
        "--server.port=8600",
        "--server.headless=true",
        "--server.maxUploadSize=20",
        "--browser.gatherUsageStats=false",
    ):
        assert option in command
    page_args = command[command.index("--") + 1 :]
    assert logic.parse_app_args(page_args) == logic.AppOptions(tmp_path, logic.DEFAULT_RESULTS, 20)


def test_cli_refuses_missing_weights_and_bad_port(tmp_path):
    parser = app_parser()
    with pytest.raises(FashionsegError, match="does not exist"):
        app_cli.run(parser.parse_args(["--weights", str(tmp_path / "nope")]))
    with pytest.raises(FashionsegError, match="not a TCP port"):
        app_cli.run(parser.parse_args(["--port", "70000"]))
