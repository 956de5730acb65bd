"""Images per second of ``fashionseg trends run`` and the share of its time spent outside the model.

Builds a folder of photo-like JPEGs (the synthetic figures, upscaled to ``--photo-size`` px so decoding
and resizing cost what a camera photo costs), then runs the whole pipeline (:func:`predict_and_analyse`:
DataLoader decoding and resizing, batched prediction, Parquet, statistics, plots) once per ``--workers``.
"Model" time is the time inside ``Predictor.predict`` (forward pass, post-processing, masks to NumPy);
everything else in the inference loop (waiting for decoded images, building rows, writing Parquet) is
overhead. Without ``--weights`` the model is an untrained R50-FPN keeping every box it proposes
(``box_score_thresh=0``): the worst case, each image carrying ``box_detections_per_img`` detections.

    python benchmarks/trends_speed.py                         # 32 images, 0 and 2 loader workers
    python benchmarks/trends_speed.py --images 256 --photo-size 1024 --workers 2 4
    python benchmarks/trends_speed.py --weights results/demo/R50-FPN --device cuda
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from PIL import Image
from tqdm.auto import tqdm

from fashionseg.config import load_config, to_dict
from fashionseg.data import ontology
from fashionseg.data.ontology import LabelSpace
from fashionseg.data.synthetic import render_image
from fashionseg.distributed import resolve_device
from fashionseg.models import build_model
from fashionseg.predict import Predictor
from fashionseg.trends.collection import open_collection
from fashionseg.trends.inference import InferenceSettings
from fashionseg.trends.pipeline import predict_and_analyse
from fashionseg.trends.stats import StatsSettings


def untrained_predictor(preset: str, device: str) -> Predictor:
    """A randomly initialised R50-FPN over the 46 Fashionpedia categories, keeping every box it proposes."""
    torch.manual_seed(0)
    cfg = load_config(preset, {"model.box_score_thresh": 0.0})
    labels = LabelSpace.from_coco(ontology.ontology_json())
    model = build_model(cfg.model, labels, min_size=cfg.data.min_size, max_size=cfg.data.max_size)
    return Predictor(model, labels, to_dict(cfg), resolve_device(device))


def photo_folder(root: Path, count: int, side: int) -> Path:
    """``count`` synthetic figures as ``side`` px JPEGs in ``root/images``; four seasons in metadata.csv."""
    images = root / "images"
    images.mkdir(parents=True)
    for i in tqdm(range(count), desc="photos", unit="img"):
        pixels, _ = render_image(np.random.default_rng([0, i]), 160)
        Image.fromarray(pixels).resize((side, side), Image.Resampling.BICUBIC).save(
            images / f"photo_{i:05d}.jpg", quality=90
        )
    seasons = [f"S{i % 4}" for i in range(count)]
    files = [f"photo_{i:05d}.jpg" for i in range(count)]
    pd.DataFrame({"file": files, "season": seasons}).to_csv(root / "metadata.csv", index=False)
    return root


def measure(predictor: Predictor, root: Path, out: Path, workers: int, batch_size: int) -> dict[str, Any]:
    """One full pipeline run into a fresh ``out``; seconds per phase."""
    collection = open_collection(root / "images", root / "metadata.csv")
    data_cfg = predictor.config["data"]
    inference = InferenceSettings(
        batch_size=batch_size, workers=workers, resize=(data_cfg["min_size"], data_cfg["max_size"])
    )
    settings = StatsSettings(by="season", n_boot=1000, n_perm=1999)
    start = time.perf_counter()
    report, _ = predict_and_analyse(predictor, collection, out, inference, settings, "benchmark")
    total = time.perf_counter() - start
    this_run = report["this_run"]
    return {
        "workers": workers,
        "images": this_run["images_predicted"],
        "inference_s": this_run["seconds_total"],
        "model_s": this_run["seconds_model"],
        "stats_plots_s": total - this_run["seconds_total"],
        "total_s": total,
        "detections_per_image": report["detections_at_threshold"] / max(1, report["images_predicted"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--photo-size", type=int, default=640, help="side of the JPEG photos, in px")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2], help="loader workers to compare")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--weights", help="a trained run or model_final.pt (default: untrained, every box)")
    parser.add_argument("--preset", default="demo", help="model and input size of the untrained model")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    if args.weights:
        predictor = Predictor.from_checkpoint(args.weights, device=args.device)
    else:
        predictor = untrained_predictor(args.preset, args.device)
    data_cfg = predictor.config["data"]
    print(
        f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
        f"device {predictor.device}; {args.images} JPEG photos of {args.photo_size} px -> model input "
        f"{data_cfg['min_size']}-{data_cfg['max_size']} px; batch {args.batch_size}; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    with tempfile.TemporaryDirectory() as tmp:
        root = photo_folder(Path(tmp), args.images, args.photo_size)
        predictor.predict([torch.rand(3, data_cfg["min_size"], data_cfg["min_size"])])  # warm-up
        rows = [measure(predictor, root, Path(tmp) / f"out_w{w}", w, args.batch_size) for w in args.workers]
    print(
        f"\n{'workers':>7} {'img/s infer':>11} {'img/s all':>9} {'outside model':>13} "
        f"{'stats+plots s':>13} {'det/img':>7}"
    )
    for r in rows:
        print(
            f"{r['workers']:>7} {r['images'] / r['inference_s']:>11.2f} {r['images'] / r['total_s']:>9.2f} "
            f"{1 - r['model_s'] / r['inference_s']:>13.1%} {r['stats_plots_s']:>13.1f} "
            f"{r['detections_per_image']:>7.1f}"
        )


if __name__ == "__main__":
    main()
