"""Property-based tests of every input surface: each generated input either works or raises
:class:`~fashionseg.errors.FashionsegError` naming the file (or key); never a traceback, never a partial
output file left as if complete.

Surfaces: annotation files (``data check`` and the dataset loader), predictions files (``evaluate``), trend
metadata CSVs, and images given to ``predict`` and the app (random bytes, truncated files, huge headers, odd
modes). Configuration overrides and preset YAML are fuzzed in ``test_config_validation.py``. The budget is
the ``ci`` profile's (tests/conftest.py), fixed so that CI time is bounded.
"""

from __future__ import annotations

import copy
import io
import json
import struct
import warnings
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image
from pycocotools import mask as mask_utils

from fashionseg import cli
from fashionseg.app.logic import MAX_SIDE, UploadError, read_upload
from fashionseg.data import ontology
from fashionseg.data.dataset import FashionpediaDataset
from fashionseg.data.images import ImageReadError, read_image
from fashionseg.data.ontology import LabelSpace
from fashionseg.errors import FashionsegError
from fashionseg.predict import IMAGE_SUFFIXES, predict_files
from fashionseg.structures import Prediction, to_coco_results
from fashionseg.trends.collection import read_metadata

HEIGHT, WIDTH = 24, 32
ONTOLOGY = ontology.ontology_json()
ATTRIBUTE_IDS = [a["id"] for a in ONTOLOGY["attributes"]]
SHIRT, SHOE, SLEEVE = 0, 23, 31  # with attributes, without (an accessory), with (a part)

# Any JSON value, plus the values that break parsers most often.
_EDGE = st.sampled_from(
    [0, -1, 1, 2**31, 2**63, 1e308, -0.0, "", "0", [], {}, [0, 0, 0, 0], [[1, 2, 3]], True]
)
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**64)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8)
    | _EDGE,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)


def _mutated(data: st.DataObject, doc: Any, most: int = 3) -> Any:
    """``doc`` with one to ``most`` values somewhere in it replaced by a random JSON value, or removed."""
    doc = copy.deepcopy(doc)
    for _ in range(data.draw(st.integers(1, most), label="mutations")):
        parent, key, node = None, None, doc
        while True:
            children = (
                list(node)
                if isinstance(node, dict)
                else list(range(len(node)))
                if isinstance(node, list)
                else []
            )
            if not children or data.draw(st.integers(0, 3), label="stop") == 0:
                break
            parent, key = node, data.draw(st.sampled_from(children), label="key")
            node = node[key]
        if parent is None:
            doc = copy.deepcopy(data.draw(JSON, label="document"))  # sampled values are shared objects
        elif data.draw(st.booleans(), label="remove"):
            parent.pop(key)
        else:
            parent[key] = copy.deepcopy(data.draw(JSON, label="value"))
    return doc


def _rle(x: int, y: int, w: int, h: int) -> dict[str, Any]:
    mask = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)
    mask[y : y + h, x : x + w] = 1
    return {"size": [HEIGHT, WIDTH], "counts": mask_utils.encode(np.asfortranarray(mask))["counts"].decode()}


def _annotation(ann_id: int, image_id: int, category: int, box: list[int], polygon: bool) -> dict[str, Any]:
    x, y, w, h = box
    segmentation = [[x, y, x + w, y, x + w, y + h, x, y + h]] if polygon else _rle(*box)
    attributes = [] if category == SHOE else ATTRIBUTE_IDS[ann_id : ann_id + 2]
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": category,
        "bbox": [float(v) for v in box],
        "area": float(w * h),
        "segmentation": segmentation,
        "iscrowd": 0,
        "attribute_ids": attributes,
    }


def _ground_truth() -> dict[str, Any]:
    """Two small images with a garment of each kind (polygon and RLE masks), the full ontology."""
    return {
        "images": [{"id": i, "width": WIDTH, "height": HEIGHT, "file_name": f"{i}.png"} for i in (1, 2)],
        "annotations": [
            _annotation(1, 1, SHIRT, [2, 3, 12, 10], polygon=True),
            _annotation(2, 1, SHOE, [18, 12, 8, 6], polygon=False),
            _annotation(3, 2, SLEEVE, [4, 4, 20, 14], polygon=False),
        ],
        "categories": ONTOLOGY["categories"],
        "attributes": ONTOLOGY["attributes"],
    }


@pytest.fixture(scope="module")
def images_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for i in (1, 2):
        Image.fromarray(rng.integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return folder


def _write_json(path: Path, doc: Any, data: st.DataObject) -> None:
    """``doc`` as JSON (NaN and Infinity as Python writes them), or now and then as random bytes."""
    if data.draw(st.integers(0, 9), label="bytes instead") == 0:
        path.write_bytes(data.draw(st.binary(max_size=40), label="raw bytes"))
    else:
        path.write_text(json.dumps(doc))


def _names(exc: BaseException, *paths: Path) -> bool:
    return any(str(p) in str(exc) or p.name in str(exc) for p in paths)


# --- annotation files: `data check` and the dataset loader ---------------------------------------------


@given(data=st.data())
def test_fuzzed_annotations_through_data_check(
    data: st.DataObject, images_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "fuzzed.json"
    _write_json(path, _mutated(data, _ground_truth()), data)
    argv = ["data", "check", str(path), "--images", str(images_dir)]
    argv += data.draw(st.sampled_from([[], ["--decode"], ["--categories", "0,23"], ["--max-images", "1"]]))
    code = cli.main(argv)
    out, err = capsys.readouterr()
    assert code in (0, 1, 2)
    if code == 2:
        assert err.startswith("error: ") and "fuzzed.json" in err, err
    else:
        assert out.rstrip().endswith(f"{path}: {'OK' if code == 0 else 'FAILED'}")


@given(data=st.data())
def test_fuzzed_annotations_through_the_dataset_loader(
    data: st.DataObject, images_dir: Path, tmp_path: Path
) -> None:
    path = tmp_path / "fuzzed.json"
    _write_json(path, _mutated(data, _ground_truth()), data)
    options = {
        "skip_bad": data.draw(st.booleans(), label="skip_bad"),
        "categories": data.draw(st.sampled_from([None, (0, 31), (23,)]), label="categories"),
        "max_images": data.draw(st.sampled_from([None, 1]), label="max_images"),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            dataset = FashionpediaDataset(path, images_dir, **options)
            items = [dataset[i] for i in range(len(dataset))]
        except FashionsegError as exc:
            assert _names(exc, path, images_dir), str(exc)
            return
    for image, target in items:  # the data contract of ARCHITECTURE.md
        assert image.dtype.is_floating_point and image.shape[0] == 3
        n = len(target["labels"])
        assert target["boxes"].shape == (n, 4) and target["masks"].shape == (n, *image.shape[1:])
        assert target["attributes"].shape == (n, dataset.labels.num_attributes)


# --- predictions files: `fashionseg evaluate` -------------------------------------------------------------


def _prediction(image_id: int, category: int, box: list[int], score: float) -> dict[str, Any]:
    return {
        "image_id": image_id,
        "category_id": category,
        "bbox": [float(v) for v in box],
        "segmentation": _rle(*box),
        "score": score,
        "attribute_ids": [] if category == SHOE else ATTRIBUTE_IDS[1:3],
    }


PREDICTIONS = [
    _prediction(1, SHIRT, [2, 3, 12, 10], 0.9),
    _prediction(1, SHOE, [17, 12, 8, 6], 0.6),
    _prediction(2, SLEEVE, [5, 4, 19, 14], 0.8),
]


@given(data=st.data())
def test_fuzzed_predictions_through_evaluate(data: st.DataObject, tmp_path: Path) -> None:
    gt, predictions, out = (
        tmp_path / "gt.json",
        tmp_path / "predictions.json",
        tmp_path / "eval" / "metrics.json",
    )
    out.unlink(missing_ok=True)
    entries = copy.deepcopy(PREDICTIONS)
    if data.draw(st.booleans(), label="plain COCO results"):
        for entry in entries:
            entry.pop("attribute_ids")
    if data.draw(st.integers(0, 4), label="keep predictions") > 0:
        entries = _mutated(data, entries)
    _write_json(predictions, entries, data)
    ground_truth = _ground_truth()
    if data.draw(st.integers(0, 3), label="mutate the ground truth") == 0:
        ground_truth = _mutated(data, ground_truth, most=1)
    gt.write_text(json.dumps(ground_truth))
    argv = [
        "evaluate",
        "--gt",
        str(gt),
        "--predictions",
        str(predictions),
        "--out",
        str(out),
        "--no-progress",
    ]
    argv += data.draw(st.sampled_from([[], ["--iou-types", "bbox"], ["--attribute-categories", "none"]]))
    try:
        code = _evaluate(argv)
    except FashionsegError as exc:
        assert _names(exc, gt, predictions), str(exc)
        assert not out.exists()  # nothing written that could pass for a result
        return
    assert code == 0
    metrics = json.loads(out.read_text())
    for iou_type in ("bbox",) if "--iou-types" in argv else ("bbox", "segm"):
        assert set(metrics[iou_type]) == {"coco", "iou_f1", "iou", "f1"}
        computed = metrics[iou_type]["iou"] is not None
        assert computed != ("not_computed" in metrics)


def _evaluate(argv: list[str]) -> int:
    """``fashionseg evaluate`` as the command line runs it, but raising its error instead of printing it."""
    args = cli.build_parser().parse_args(argv)
    return int(args._run(args) or 0)


def test_plain_coco_results_score_the_coco_keys_and_leave_the_families_out(tmp_path: Path) -> None:
    ground_truth = _ground_truth()
    plain = [{k: v for k, v in p.items() if k != "attribute_ids"} for p in PREDICTIONS]
    (tmp_path / "gt.json").write_text(json.dumps(ground_truth))
    (tmp_path / "plain.json").write_text(json.dumps(plain))
    (tmp_path / "full.json").write_text(json.dumps(PREDICTIONS))
    files = ["--gt", str(tmp_path / "gt.json"), "--no-progress", "--out"]
    assert (
        _evaluate(
            ["evaluate", *files, str(tmp_path / "p.json"), "--predictions", str(tmp_path / "plain.json")]
        )
        == 0
    )
    assert (
        _evaluate(
            ["evaluate", *files, str(tmp_path / "f.json"), "--predictions", str(tmp_path / "full.json")]
        )
        == 0
    )
    with_attributes = json.loads((tmp_path / "f.json").read_text())
    without = json.loads((tmp_path / "p.json").read_text())
    for iou_type in ("bbox", "segm"):
        assert without[iou_type]["coco"] == with_attributes[iou_type]["coco"]  # the same numbers
        assert without[iou_type]["iou_f1"] is None and without[iou_type]["f1"] is None
    assert set(without["not_computed"]) == {"iou_f1", "iou", "f1"}
    assert all(set(row) == {"bbox_AP", "segm_AP"} for row in without["per_category"].values())


def test_a_file_mixing_entries_with_and_without_attributes_names_one_of_each(tmp_path: Path) -> None:
    mixed = copy.deepcopy(PREDICTIONS)
    mixed[1].pop("attribute_ids")
    (tmp_path / "gt.json").write_text(json.dumps(_ground_truth()))
    (tmp_path / "mixed.json").write_text(json.dumps(mixed))
    argv = ["evaluate", "--gt", str(tmp_path / "gt.json"), "--predictions", str(tmp_path / "mixed.json")]
    with pytest.raises(FashionsegError) as error:
        _evaluate([*argv, "--no-progress"])
    message = str(error.value)
    assert (
        "mixed.json entry 1 (image_id 1): 'attribute_ids' is missing, but entry 0 (image_id 1) has them"
        in message
    )


def test_evaluate_prints_why_families_are_not_computed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plain = [{k: v for k, v in p.items() if k != "attribute_ids"} for p in PREDICTIONS]
    (tmp_path / "gt.json").write_text(json.dumps(_ground_truth()))
    (tmp_path / "plain.json").write_text(json.dumps(plain))
    argv = ["evaluate", "--gt", str(tmp_path / "gt.json"), "--predictions", str(tmp_path / "plain.json")]
    assert cli.main([*argv, "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "IoU+F1" in printed and "not computed" in printed
    note = [line for line in printed.splitlines() if line.startswith("not computed: ")]
    assert len(note) == 1 and "attribute_ids" in note[0]


# --- trend metadata CSVs -------------------------------------------------------------------------------

_CSV_TEXT = st.text(alphabet=st.sampled_from(list('file,season"\n\r\t x\x00\ufeff;é')), max_size=60)


@given(
    content=st.one_of(
        _CSV_TEXT.map(lambda t: t.encode("utf-8")),
        _CSV_TEXT.map(lambda t: ("file,season\n" + t).encode("utf-8")),
        st.binary(max_size=60),
        st.binary(max_size=60).map(lambda b: b"file,season\n" + b),
    )
)
def test_fuzzed_metadata_csv(content: bytes, tmp_path: Path) -> None:
    path = tmp_path / "metadata.csv"
    path.write_bytes(content)
    try:
        table = read_metadata(path)
    except FashionsegError as exc:
        assert _names(exc, path), str(exc)
        return
    assert table.index.name == "file" and table.index.is_unique
    assert all(str(dtype) == "string" for dtype in table.dtypes)


# --- images: `predict` and the app ---------------------------------------------------------------------

MODES = ("1", "L", "LA", "P", "PA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr", "LAB", "HSV", "I", "I;16", "F")
FORMATS = ("PNG", "JPEG", "TIFF", "WEBP", "BMP")
SUFFIX = {"PNG": ".png", "JPEG": ".jpg", "TIFF": ".tif", "WEBP": ".webp", "BMP": ".bmp"}


def _png_header(width: int, height: int, body: bytes) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` pixels, followed by ``body`` as its image data."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (
            struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


@st.composite
def image_files(draw: st.DrawFn) -> tuple[str, bytes]:
    """(suffix, bytes) of a file given as an image: valid in an odd mode, truncated, a huge header, noise."""
    kind = draw(st.sampled_from(["mode", "truncated", "huge header", "noise"]))
    if kind == "noise":
        return draw(st.sampled_from([".png", ".jpg", ".webp", ".tif"])), draw(st.binary(max_size=300))
    if kind == "huge header":
        side = st.sampled_from([1, 16, 10_001, 65_535, 2**31 - 1])  # products small or over 100 M pixels
        width, height = draw(side), draw(side)
        return ".png", _png_header(width, height, zlib.compress(draw(st.binary(max_size=64))))
    mode = draw(st.sampled_from(MODES))
    width, height = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    pixels = np.random.default_rng(draw(st.integers(0, 2**16))).integers(0, 256, (height, width, 3), np.uint8)
    if mode == "I;16":
        image = Image.fromarray(pixels[..., 0].astype(np.uint16) * 257)
    elif mode in ("LAB", "HSV", "YCbCr"):
        image = Image.frombytes(mode, (width, height), pixels.tobytes())
    else:
        image = Image.fromarray(pixels).convert(mode)
    buffer = io.BytesIO()
    for fmt in draw(st.permutations(FORMATS)):  # the first format Pillow can write this mode in
        try:
            image.save(buffer, fmt)
            break
        except (OSError, ValueError, KeyError):
            buffer = io.BytesIO()
    else:
        fmt = "PNG"
        image.convert("RGB").save(buffer, fmt)
    data = buffer.getvalue()
    if kind == "truncated":
        data = data[: draw(st.integers(0, max(0, len(data) - 1)))]
    return SUFFIX[fmt], data


@given(file=image_files())
def test_fuzzed_images_read_or_name_the_file(file: tuple[str, bytes], tmp_path: Path) -> None:
    suffix, data = file
    path = tmp_path / f"photo{suffix}"
    path.write_bytes(data)
    try:
        image = read_image(path)
    except ImageReadError as exc:
        assert _names(exc, path), str(exc)
        return
    assert image.mode == "RGB" and image.width >= 1 and image.height >= 1
    np.asarray(image)  # the pixels are there


@given(file=image_files())
def test_fuzzed_uploads_to_the_app(file: tuple[str, bytes]) -> None:
    suffix, data = file
    name = f"my photo{suffix}"
    try:
        image = read_upload(name, data)
    except UploadError as exc:
        assert name in str(exc), str(exc)
        return
    assert image.mode == "RGB" and max(image.size) <= MAX_SIDE


class _OneBoxPredictor:
    """A stand-in for :class:`~fashionseg.predict.Predictor`: one detection over each whole image."""

    labels = LabelSpace.from_coco(ONTOLOGY)

    def predict(self, images: list[Image.Image], batch_size: int, score_threshold: float) -> list[Prediction]:
        out = []
        for image in images:
            mask = np.ones((1, image.height, image.width), dtype=bool)
            out.append(
                Prediction(
                    boxes=np.array([[0, 0, image.width, image.height]], dtype=np.float32),
                    scores=np.array([0.9], dtype=np.float32),
                    category_ids=np.array([SHIRT]),
                    masks=mask,
                    attribute_scores=np.full((1, self.labels.num_attributes), 0.7, dtype=np.float32),
                    attribute_ids=[list(self.labels.attribute_ids[:2])],
                )
            )
        return out

    def to_coco_results(self, pred: Prediction, image_id: int) -> list[dict[str, Any]]:
        return to_coco_results(pred, image_id, self.labels)


@given(files=st.lists(image_files(), min_size=1, max_size=3))
def test_fuzzed_images_through_predict(files: list[tuple[str, bytes]], tmp_path: Path) -> None:
    folder, out = tmp_path / "in", tmp_path / "out"
    for stale in [*folder.glob("*"), *out.rglob("*")]:
        if stale.is_file():
            stale.unlink()
    folder.mkdir(exist_ok=True)
    paths = []
    for k, (suffix, data) in enumerate(files):
        assert suffix in IMAGE_SUFFIXES
        paths.append(folder / f"{k}{suffix}")
        paths[-1].write_bytes(data)
    summary = predict_files(_OneBoxPredictor(), paths, out, batch_size=2)
    assert len(summary["images"]) + len(summary["skipped"]) == len(paths)
    for skipped in summary["skipped"]:
        assert Path(skipped["file"]).name in skipped["error"]
    results = json.loads((out / "predictions.json").read_text())
    assert json.loads((out / "images.json").read_text()) == summary
    assert len(results) == summary["detections"] == len(summary["images"])
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]  # no half-written file left behind
    assert len(list((out / "overlays").glob("*.png"))) == len(summary["images"])


def test_the_huge_header_guard_names_the_file_and_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_header(2**31 - 1, 2**31 - 1, zlib.compress(b"\0" * 64)))
    with pytest.raises(ImageReadError, match=r"bomb\.png.*(pixels|decompression bomb)"):
        read_image(path)
