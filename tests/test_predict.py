"""`fashionseg predict` and the Predictor on a tiny trained checkpoint."""

import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pycocotools.mask as mask_utils
import pytest
from PIL import Image

from fashionseg.checkpoint import CheckpointError
from fashionseg.cli import main
from fashionseg.predict import Predictor
from fashionseg.structures import to_coco_results


def test_predictor_outputs_follow_the_contract(tiny_run, synthetic_root):
    predictor = Predictor.from_checkpoint(tiny_run, device="cpu")
    image = Image.open(next((synthetic_root / "images" / "val").glob("*.png"))).convert("RGB")
    (pred,) = predictor.predict([image])
    n = len(pred)
    assert pred.boxes.shape == (n, 4)
    assert pred.masks.shape == (n, image.height, image.width) and pred.masks.dtype == bool
    assert pred.attribute_scores.shape == (n, predictor.labels.num_attributes)
    assert set(pred.category_ids.tolist()) <= set(predictor.labels.category_ids)
    results = to_coco_results(pred, 7, predictor.labels)
    assert len(results) == n
    for r, mask in zip(results, pred.masks, strict=True):
        assert r["image_id"] == 7
        assert np.array_equal(
            mask_utils.decode({**r["segmentation"], "counts": r["segmentation"]["counts"]}), mask
        )
        assert len(r["attribute_ids"]) == len(r["attribute_scores"])


@pytest.fixture(scope="module")
def fp32_predictor(tiny_run):
    """The tiny model in float32 with its own threshold at 0: the 2-iteration model scores every class
    near 1/K, so every image gives many detections, many of them with equal or nearly equal scores. At
    most 20 per image keeps the 50 runs below quick."""
    predictor = Predictor.from_checkpoint(tiny_run, device="cpu", amp=False)
    predictor.model.roi_heads.score_thresh = 0.0
    predictor.model.roi_heads.detections_per_img = 20
    return predictor


@pytest.fixture(scope="module")
def unfiltered(fp32_predictor, synthetic_root):
    """Each validation image with all its detections (no score floor), computed once, one image per call
    like the calls under test: a batch of four can round the scores differently in the last bit."""
    files = sorted((synthetic_root / "images" / "val").glob("*.png"))
    images = [Image.open(f).convert("RGB") for f in files]
    return [(image, fp32_predictor.predict([image])[0]) for image in images]


@pytest.mark.parametrize("seed", range(50))
def test_score_threshold_is_exact_before_the_mask_head(fp32_predictor, unfiltered, seed):
    """A detection reaches the mask head iff it is kept: iff its score is >= the threshold, with the
    threshold equal to a detection's score (a tie) or one float32 step above or below it."""
    rng = np.random.default_rng(seed)
    image, everything = unfiltered[rng.integers(len(unfiltered))]
    heads = fp32_predictor.model.roi_heads
    assert len(everything) >= 4
    score = np.float32(everything.scores[rng.integers(1, len(everything))])
    step = str(rng.choice(["tie", "above", "below"]))
    threshold = {
        "tie": score,
        "above": np.nextafter(score, np.float32(np.inf)),
        "below": np.nextafter(score, np.float32(-np.inf)),
    }[step]

    mask_head_rows: list[int] = []
    hook = heads.mask_predictor.register_forward_hook(lambda m, i, out: mask_head_rows.append(len(out)))
    try:
        (kept,) = fp32_predictor.predict([image], score_threshold=float(threshold))
    finally:
        hook.remove()

    expected = everything.scores >= threshold
    assert (score in kept.scores) == (step != "above")
    assert mask_head_rows == [len(kept)] == [int(expected.sum())]
    np.testing.assert_array_equal(kept.scores, everything.scores[expected])
    np.testing.assert_array_equal(kept.boxes, everything.boxes[expected])
    assert heads.min_score is None  # the call's floor does not outlive it


def test_threads_sharing_a_predictor_each_get_their_own_threshold(tiny_run, synthetic_root):
    """The app's sessions share one cached Predictor: a call's threshold must not leak into another's.
    (float32: bfloat16 scores can differ in the last bit between threads, which this test is not about.)"""
    predictor = Predictor.from_checkpoint(tiny_run, device="cpu", amp=False)
    predictor.model.roi_heads.score_thresh = 0.0
    image = Image.open(next((synthetic_root / "images" / "val").glob("*.png"))).convert("RGB")
    (everything,) = predictor.predict([image])
    threshold = float(np.sort(everything.scores)[len(everything) // 2])
    with ThreadPoolExecutor(max_workers=2) as pool:
        calls = [pool.submit(predictor.predict, [image], 1, t) for t in (0.0, threshold) * 3]
        counts = [len(call.result()[0]) for call in calls]
    assert counts == [len(everything), int((everything.scores >= threshold).sum())] * 3
    assert predictor.model.roi_heads.score_thresh == 0.0


def test_predict_cli_writes_results_and_skips_bad_images(tiny_run, synthetic_root, tmp_path, capsys):
    images = tmp_path / "in"
    images.mkdir()
    for src in sorted((synthetic_root / "images" / "val").glob("*.png"))[:2]:
        (images / src.name).write_bytes(src.read_bytes())
    (images / "broken.jpg").write_text("not an image")
    out = tmp_path / "out"
    code = main(
        [
            "predict",
            "--weights",
            str(tiny_run / "model_final.pt"),
            str(images),
            "--out",
            str(out),
            "--score-threshold",
            "0.0",
        ]
    )
    assert code == 0
    summary = json.loads((out / "images.json").read_text())
    assert len(summary["images"]) == 2
    assert [s["file"] for s in summary["skipped"]] == [str(images / "broken.jpg")]
    assert "broken.jpg" in capsys.readouterr().err
    results = json.loads((out / "predictions.json").read_text())
    assert {r["image_id"] for r in results} <= {1, 2}
    assert len(list((out / "overlays").glob("*.png"))) == 2


def test_checkpoint_that_needs_code_is_refused(tmp_path):
    import pickle

    bad = tmp_path / "model_final.pt"
    bad.write_bytes(pickle.dumps({"model": Image.new("RGB", (2, 2))}))
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        Predictor.from_checkpoint(bad)


def test_missing_checkpoint_names_the_file(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        Predictor.from_checkpoint(tmp_path / "nope.pt")
