"""Our AP^IoU+F1 against the official Fashionpedia evaluator: every key equal, and how much faster.

The official tool (``pip install fashionpedia scikit-learn scikit-image``, with ``numpy.float = float`` set
before it runs) is a benchmark-only dependency: it runs in its own virtual environment, given with
``--official-python``, never imported here::

    python3 -m venv /tmp/fpvenv
    /tmp/fpvenv/bin/pip install numpy pycocotools fashionpedia scikit-learn scikit-image
    .venv/bin/python benchmarks/eval_vs_official.py --official-python /tmp/fpvenv/bin/python

It generates random ground truth and predictions over the 46 categories and 294 attributes (boxes and RLE /
polygon masks of all sizes, crowd regions, clusters of overlapping same-category instances, detections
jittered from the ground truth with attributes dropped and added, false positives, tied scores, images with
more than 100 detections), evaluates both, and compares every number on the 0-100 scale. Two datasets: an
"edge" one (dense clusters, annotation id 0, which pycocotools reads as "unmatched") and the timed "main"
one (``--images`` x about 20 detections). Use ``--official-images`` to run the official tool on the first N
images only when it is too slow; its time on all images is then extrapolated and labelled so.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from fashionseg.data import ontology
from fashionseg.evaluation import eval_supercategories, evaluate
from fashionseg.evaluation.attribute_ap import FAMILIES, accumulate, family_metrics, summary_value
from fashionseg.evaluation.results import load_ground_truth, load_predictions

TOLERANCE = 1e-6

# Runs inside the official tool's environment: argv = gt, predictions, output, iou types (comma separated).
OFFICIAL_RUNNER = r"""
import contextlib, io, json, sys, time
import numpy as np
np.float = float  # the one-line shim: fashionpedia 1.1 still calls np.float, removed in numpy 1.24
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from fashionpedia.fp import Fashionpedia
from fashionpedia.fp_eval import FPEval

gt_path, pred_path, out_path, iou_types = sys.argv[1:5]
out = {}
for iou_type in iou_types.split(","):
    tic, cpu = time.perf_counter(), time.process_time()
    preds = json.load(open(pred_path))
    if iou_type == "segm":  # mask area, not box area, for the area ranges (as fashionseg and detectron2)
        preds = [{k: v for k, v in p.items() if k != "bbox"} for p in preds]
    with contextlib.redirect_stdout(io.StringIO()):
        fp_gt = Fashionpedia(gt_path)
        fp_eval = FPEval(fp_gt, fp_gt.loadRes([dict(p) for p in preds]), iou_type)
        fp_eval.run()
        fp_eval.summarize_class()
    seconds, cpu_seconds = time.perf_counter() - tic, time.process_time() - cpu
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO(gt_path)
        coco_eval = COCOeval(coco_gt, coco_gt.loadRes([dict(p) for p in preds]), iou_type)
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    out[iou_type] = {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "iou_f1": fp_eval.results,
        "iou": fp_eval.resultDet,
        "f1": fp_eval.resultF1,
        "per_class": fp_eval.results_per_class,
        "coco": [float(x) for x in coco_eval.stats[:6]],
    }
json.dump(out, open(out_path, "w"), default=float)
"""


def make_dataset(
    num_images: int, seed: int, dense: bool = False, first_id: int = 1
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Random Fashionpedia-format ground truth and predictions (about 20 detections an image).

    ``dense``: more same-category clusters, crowd regions, and a few images with 130 detections.
    """
    rng = np.random.default_rng(seed)
    onto = ontology.ontology_json()
    with_attributes = set(ontology.attribute_category_ids())
    attribute_ids = np.array([a["id"] for a in onto["attributes"]])
    images, annotations, predictions = [], [], []
    for image_id in range(1, num_images + 1):
        height, width = (int(x) for x in rng.integers(120, 400, size=2))
        images.append({"id": image_id, "height": height, "width": width, "file_name": f"{image_id}.jpg"})
        image_gts: list[dict[str, Any]] = []
        for _ in range(int(np.clip(rng.poisson(9 if dense else 7), 1, 25))):
            if image_gts and rng.random() < (0.5 if dense else 0.25):  # an overlapping same-category instance
                near = image_gts[rng.integers(len(image_gts))]
                category = near["category_id"]
                box = _jitter(near["box"], rng, 0.35, width, height)
            else:
                category = int(rng.integers(46))
                box = _random_box(rng, width, height)
            crowd = rng.random() < (0.05 if dense else 0.02)
            pool = attribute_ids[: 40 + category * 5]  # category-dependent pools: overlaps are common
            atts = (
                sorted(int(a) for a in rng.choice(pool, size=rng.integers(0, 7), replace=False))
                if category in with_attributes
                else []
            )
            mask = _shape_mask(box, rng, width, height)
            rle = mask_utils.encode(np.asfortranarray(mask))
            ann = {
                "id": first_id + len(annotations),
                "image_id": image_id,
                "category_id": category,
                "attribute_ids": atts,
                "area": float(mask_utils.area(rle)),
                "bbox": [float(v) for v in mask_utils.toBbox(rle)],
                "iscrowd": int(crowd),
                "box": box,
            }
            if crowd:
                ann["segmentation"] = _uncompressed(mask)
            elif rng.random() < 0.5:
                ann["segmentation"] = {"size": [height, width], "counts": rle["counts"].decode()}
            else:
                ann["segmentation"] = [_ellipse_polygon(box)]
                ann["area"] = float(
                    mask_utils.area(
                        mask_utils.merge(mask_utils.frPyObjects(ann["segmentation"], height, width))
                    )
                )
            if ann["area"] == 0 or ann["bbox"][2] == 0:
                continue
            image_gts.append(ann)
            annotations.append(ann)
        image_dts = []
        for ann in image_gts:
            for _ in range(rng.choice([0, 1, 1, 1, 2, 3])):  # missed, found, found twice (duplicates)
                category = ann["category_id"] if rng.random() < 0.9 else int(rng.integers(46))
                keep = [a for a in ann["attribute_ids"] if rng.random() > rng.choice([0.0, 0.2, 0.5])]
                extra = rng.choice(
                    attribute_ids, size=rng.poisson(rng.choice([0.2, 1.0, 3.0])), replace=False
                )
                image_dts.append(
                    (
                        category,
                        _jitter(ann["box"], rng, rng.choice([0.03, 0.1, 0.3]), width, height),
                        sorted(set(keep) | {int(a) for a in extra}),
                    )
                )
        target = 130 if dense and rng.random() < 0.05 else int(rng.integers(12, 28))
        while len(image_dts) < target:
            image_dts.append(
                (
                    int(rng.integers(46)),
                    _random_box(rng, width, height),
                    sorted(int(a) for a in rng.choice(attribute_ids, size=rng.integers(0, 5), replace=False)),
                )
            )
        for category, box, atts in image_dts:
            rle = mask_utils.encode(np.asfortranarray(_shape_mask(box, rng, width, height)))
            predictions.append(
                {
                    "image_id": image_id,
                    "category_id": category,
                    "bbox": [round(v, 2) for v in box],
                    "score": round(float(rng.random()), 2),  # two decimals: ties across images
                    "segmentation": {"size": [height, width], "counts": rle["counts"].decode()},
                    "attribute_ids": atts,
                    "attribute_scores": [round(float(rng.random()), 3) for _ in atts],
                }
            )
    for ann in annotations:
        del ann["box"]
    gt = {
        "info": {"description": f"random, seed {seed}"},
        "images": images,
        "annotations": annotations,
        "categories": onto["categories"],
        "attributes": onto["attributes"],
        "licenses": [],
    }
    return gt, predictions


def _random_box(rng: np.random.Generator, width: int, height: int) -> list[float]:
    side = math.exp(rng.uniform(math.log(6), math.log(0.9 * min(width, height))))  # small, medium and large
    w, h = side * rng.uniform(0.5, 1.5), side * rng.uniform(0.5, 1.5)
    w, h = min(w, width - 1.0), min(h, height - 1.0)
    return [float(rng.uniform(0, width - w)), float(rng.uniform(0, height - h)), float(w), float(h)]


def _jitter(
    box: list[float], rng: np.random.Generator, amount: float, width: int, height: int
) -> list[float]:
    x, y, w, h = box
    w2 = float(np.clip(w * (1 + rng.normal(0, amount)), 2, width - 1))
    h2 = float(np.clip(h * (1 + rng.normal(0, amount)), 2, height - 1))
    x2 = float(np.clip(x + rng.normal(0, amount) * w, 0, width - w2))
    y2 = float(np.clip(y + rng.normal(0, amount) * h, 0, height - h2))
    return [x2, y2, w2, h2]


def _shape_mask(box: list[float], rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """An ellipse or a rectangle filling the box, uint8 [height, width]."""
    x, y, w, h = box
    ys, xs = np.mgrid[0:height, 0:width]
    if rng.random() < 0.5:
        inside = ((xs + 0.5 - x - w / 2) / (w / 2)) ** 2 + ((ys + 0.5 - y - h / 2) / (h / 2)) ** 2 <= 1
    else:
        inside = (xs >= int(x)) & (xs < int(x + w)) & (ys >= int(y)) & (ys < int(y + h))
    return inside.astype(np.uint8)


def _ellipse_polygon(box: list[float]) -> list[float]:
    x, y, w, h = box
    angles = np.linspace(0, 2 * np.pi, 16, endpoint=False)
    return [
        round(float(v), 2) for a in angles for v in (x + w / 2 * (1 + np.cos(a)), y + h / 2 * (1 + np.sin(a)))
    ]


def _uncompressed(mask: np.ndarray) -> dict[str, Any]:
    flat = mask.flatten(order="F")
    changes = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.r_[0, changes, flat.size]
    runs = np.diff(bounds).tolist()
    if flat[0] == 1:
        runs = [0] + runs
    return {"size": list(mask.shape), "counts": runs}


def ours_fashionpedia_only(gt_path: Path, pred_path: Path, iou_types: tuple[str, ...]) -> None:
    """The same work as the official run: read both files, the AP^IoU+F1 families and per-class tables."""
    attribute_ids = ontology.attribute_category_ids()
    gt = load_ground_truth(gt_path, iou_types, attribute_ids)
    predictions = load_predictions(pred_path, gt, iou_types)
    supercategories = eval_supercategories(gt["categories"])
    for acc in accumulate(gt, predictions, iou_types, attribute_ids).values():
        for family in FAMILIES:
            family_metrics(acc, family, supercategories)
            for c in acc.category_ids:
                summary_value(acc, family, [c])


def timed(work: Callable[..., Any], *args: Any, repeat: int = 1) -> tuple[float, float]:
    """Median (wall, CPU) seconds of ``repeat`` calls; CPU time is the steadier number on a shared machine."""
    runs = []
    for _ in range(repeat):
        tic, cpu = time.perf_counter(), time.process_time()
        work(*args)
        runs.append((time.perf_counter() - tic, time.process_time() - cpu))
    return float(np.median([r[0] for r in runs])), float(np.median([r[1] for r in runs]))


def write_files(
    work: Path, name: str, gt: dict[str, Any], predictions: list[dict[str, Any]]
) -> tuple[Path, Path]:
    gt_path, pred_path = work / f"{name}_gt.json", work / f"{name}_pred.json"
    gt_path.write_text(json.dumps(gt))
    pred_path.write_text(json.dumps(predictions))
    return gt_path, pred_path


def run_official(python: str, gt_path: Path, pred_path: Path, iou_types: tuple[str, ...], out: Path) -> dict:
    subprocess.run(
        [python, "-c", OFFICIAL_RUNNER, str(gt_path), str(pred_path), str(out), ",".join(iou_types)],
        check=True,
    )
    return json.loads(out.read_text())


def compare(
    ours: dict[str, Any], official: dict[str, Any], iou_types: tuple[str, ...]
) -> dict[str, tuple[int, float]]:
    """Per key family: (number of keys compared, max |ours - official x 100|); None must meet -1."""
    names = {c["id"]: c["name"] for c in ontology.ontology_json()["categories"]}
    pairs: dict[str, list[tuple[float | None, float]]] = {}
    for iou_type in iou_types:
        off = official[iou_type]
        for family in FAMILIES:
            assert set(ours[iou_type][family]) == set(off[family]), (
                family,
                set(ours[iou_type][family]) ^ set(off[family]),
            )
            pairs.setdefault(f"{family} (headline)", []).extend(
                (ours[iou_type][family][k], off[family][k]) for k in off[family]
            )
        for key, value in zip(("AP", "AP50", "AP75", "APs", "APm", "APl"), off["coco"], strict=True):
            pairs.setdefault("coco", []).append((ours[iou_type]["coco"][key], value))
        for name, tables in off["per_class"].items():
            group = "per supercategory" if name.startswith("supercls-") else "per category"
            row = (
                ours["per_supercategory"][name[9:]]
                if name.startswith("supercls-")
                else ours["per_category"][name]
            )
            for family, official_family in (
                ("iou", "iou"),
                ("iou_f1", "iou + f1"),
                ("iou_f1", "iou_f1"),
                ("f1", "f1"),
            ):
                if official_family in tables:
                    pairs.setdefault(group, []).append(
                        (row[f"{iou_type}_AP_{family}"], tables[official_family]["AP"])
                    )
    assert set(names.values()) <= set(ours["per_category"])
    report = {}
    for group, values in pairs.items():
        worst = 0.0
        for mine, theirs in values:
            if theirs == -1 or mine is None:
                worst = max(worst, 0.0 if (theirs == -1 and mine is None) else math.inf)
            else:
                worst = max(worst, abs(mine - 100 * theirs))
        report[group] = (len(values), worst)
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--official-python", help="python of a venv with fashionpedia, scikit-learn, scikit-image"
    )
    parser.add_argument("--images", type=int, default=1000, help="images of the timed dataset (default 1000)")
    parser.add_argument(
        "--official-images", type=int, help="run the official tool on the first N images only"
    )
    parser.add_argument("--edge-images", type=int, default=150, help="images of the edge-case dataset")
    parser.add_argument("--iou-types", default="bbox,segm")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    iou_types = tuple(args.iou_types.split(","))
    if not args.official_python or not Path(args.official_python).exists():
        print(
            "skipped: the official tool needs its own venv; pass --official-python PATH, e.g.\n"
            "  python3 -m venv /tmp/fpvenv && /tmp/fpvenv/bin/pip install numpy pycocotools fashionpedia "
            "scikit-learn scikit-image\n  then --official-python /tmp/fpvenv/bin/python"
        )
        return 0
    work = Path(tempfile.mkdtemp(prefix="fashionseg-eval-bench-"))
    num_checked = min(args.official_images or args.images, args.images)

    rows: list[tuple[str, str, int, float]] = []
    for label, num_images, seed, dense, first_id in [
        ("edge", args.edge_images, args.seed + 1, True, 0),
        ("main", args.images, args.seed, False, 1),
    ]:
        gt, predictions = make_dataset(num_images, seed, dense=dense, first_id=first_id)
        sizes = f"{len(gt['annotations'])} ground truths, {len(predictions)} detections"
        print(f"[{label}] {num_images} images, {sizes}")
        full_paths = write_files(work, label, gt, predictions)
        checked_paths = full_paths
        if label == "main" and num_checked < num_images:
            checked_paths = write_files(
                work, f"{label}_first{num_checked}", *subset(gt, predictions, num_checked)
            )
        official = run_official(
            args.official_python, *checked_paths, iou_types, work / f"{label}_official.json"
        )
        ours = evaluate(*checked_paths, iou_types, show_progress=False)
        rows += [(label, group, n, worst) for group, (n, worst) in compare(ours, official, iou_types).items()]

    timings = [
        (
            f"official FPEval, {num_checked} images",
            *(sum(official[t][k] for t in iou_types) for k in ("seconds", "cpu_seconds")),
        ),
        (
            f"fashionseg, {num_checked} images (median of 3)",
            *timed(ours_fashionpedia_only, *checked_paths, iou_types, repeat=3),
        ),
    ]
    if num_checked < args.images:
        scale = args.images / num_checked
        timings.append(
            (
                f"official FPEval, {args.images} images, EXTRAPOLATED x{scale:g}",
                *(x * scale for x in timings[0][1:]),
            )
        )
        timings.append(
            (
                f"fashionseg, {args.images} images (median of 3)",
                *timed(ours_fashionpedia_only, *full_paths, iou_types, repeat=3),
            )
        )
    evaluate_seconds = timed(evaluate, *full_paths, iou_types, None, False)

    print(f"\nEvery key against the official tool (x100), tolerance {TOLERANCE:g}:")
    print(f"{'dataset':8} {'keys':22} {'compared':>8} {'max |diff|':>12}")
    for label, group, n, worst in rows:
        print(f"{label:8} {group:22} {n:8d} {worst:12.3g}")
    print(
        f"\nSeconds, {'+'.join(iou_types)}, from the JSON files (read, AP^IoU+F1 families, per-class tables):"
    )
    print(f"  {'':52} {'wall':>8} {'CPU':>8}")
    for name, wall, cpu in timings:
        print(f"  {name:52} {wall:8.2f} {cpu:8.2f}")
    (official_name, official_wall, official_cpu), (ours_name, ours_wall, ours_cpu) = timings[-2:]
    speed_up = f"{official_wall / ours_wall:.1f}x wall, {official_cpu / ours_cpu:.1f}x CPU"
    print(f"  speed-up ({ours_name} vs {official_name}): {speed_up}")
    wall, cpu = evaluate_seconds
    print(f"  fashionseg evaluate(), {args.images} images, COCOeval included: {wall:.2f} wall, {cpu:.2f} CPU")
    ok = all(worst <= TOLERANCE for *_, worst in rows)
    print("\nALL KEYS EQUAL" if ok else "\nMISMATCH")
    return 0 if ok else 1


def subset(gt: dict[str, Any], predictions: list[dict[str, Any]], num_images: int) -> tuple[dict, list]:
    """The first ``num_images`` images of a dataset with their annotations and predictions."""
    keep = {im["id"] for im in gt["images"][:num_images]}
    annotations = [a for a in gt["annotations"] if a["image_id"] in keep]
    return {**gt, "images": gt["images"][:num_images], "annotations": annotations}, [
        p for p in predictions if p["image_id"] in keep
    ]


if __name__ == "__main__":
    sys.exit(main())
