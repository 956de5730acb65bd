"""Seconds per 512 px image through the app's inference path: decode, detect, select, draw, tabulate, export.

Runs exactly the functions the page runs (``fashionseg.app.logic``) on a 512 px photo (scaled to 512 px on
its longer side and sent as JPEG bytes, as an upload would be), with the model run at the page's detection
floor for the score slider (``--score-threshold``). Without ``--weights`` it builds an untrained R50-FPN with
every box kept (``box_score_thresh=0``, slider at 0), the worst case: each image carries
``box_detections_per_img`` (50 in the demo preset; ``--detections``) detections through the mask head, the
overlay and the table.

    python benchmarks/app_latency.py                      # demo preset (model input 160-192 px)
    python benchmarks/app_latency.py --detections 10      # a typical photo rather than the worst case
    python benchmarks/app_latency.py --model-size 512     # the model sees the full 512 px
    python benchmarks/app_latency.py --weights results/demo/R50-FPN   # trained, slider at the default
    python benchmarks/app_latency.py --weights results/demo/R50-FPN --score-threshold 0
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from tqdm.auto import tqdm

from fashionseg.app import logic
from fashionseg.config import load_config, to_dict
from fashionseg.data import ontology
from fashionseg.data.ontology import LabelSpace
from fashionseg.distributed import resolve_device
from fashionseg.models import build_model
from fashionseg.predict import Predictor


def untrained_predictor(
    arch: str, preset: str, model_size: int | None, detections: int | None, device: str
) -> Predictor:
    """A randomly initialised model over the 46 Fashionpedia categories, keeping every box it proposes.

    ``detections`` caps the boxes per image (default: the preset's ``box_detections_per_img``); each one
    costs a pass through the mask head, the largest part of the model's time on a CPU.
    """
    torch.manual_seed(0)
    overrides: dict[str, Any] = {"model.arch": arch, "name": arch, "model.box_score_thresh": 0.0}
    if detections is not None:
        overrides["model.box_detections_per_img"] = detections
    if model_size is not None:
        overrides |= {"data.min_size": model_size, "data.max_size": model_size}
    cfg = load_config(preset, overrides)
    labels = LabelSpace.from_coco(ontology.ontology_json())
    model = build_model(cfg.model, labels, min_size=cfg.data.min_size, max_size=cfg.data.max_size)
    return Predictor(model, labels, to_dict(cfg), resolve_device(device))


def upload_bytes(side: int) -> bytes:
    """The example photo at ``side`` px on its longer side, as the JPEG bytes a browser would upload."""
    buffer = io.BytesIO()
    logic.fit_within(logic.photo_example(), side).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def app_path(predictor: Predictor, data: bytes, controls: logic.Controls) -> dict[str, tuple[float, float]]:
    """One image through the page's steps: (wall, CPU) seconds per step.

    CPU seconds (all threads of this process) show how much of the wall time went to waiting when other
    processes share the cores: on an idle machine, wall is about CPU / threads for the model step.
    """
    times: dict[str, tuple[float, float]] = {}

    def timed(step: str, fn: Callable[[], Any]) -> Any:
        wall, cpu = time.perf_counter(), time.process_time()
        value = fn()
        times[step] = (time.perf_counter() - wall, time.process_time() - cpu)
        return value

    image = timed("decode upload", lambda: logic.read_upload("photo.jpg", data))
    floor = logic.detection_floor(controls.score_threshold)  # as the page runs the model
    (pred,) = timed("model", lambda: predictor.predict([image], score_threshold=floor))
    shown = timed("select", lambda: logic.select(pred, predictor.labels, controls))
    drawn = timed("overlay", lambda: logic.overlay(image, shown, predictor.labels))
    timed("table", lambda: logic.detections_table(shown, predictor.labels))
    timed(
        "JSON + PNG export", lambda: (logic.detections_json(shown, predictor.labels), logic.png_bytes(drawn))
    )
    return times


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--weights", help="a run folder or model_final.pt (default: untrained, every box kept)"
    )
    parser.add_argument("--arch", default="R50-FPN", help="architecture of the untrained model")
    parser.add_argument("--preset", default="demo", help="preset of the untrained model")
    parser.add_argument("--model-size", type=int, help="the untrained model's min_size = max_size")
    parser.add_argument("--detections", type=int, help="the untrained model's detections per image")
    parser.add_argument(
        "--score-threshold",
        type=float,
        help="the page's score slider (default: 0 when untrained, the worst case; else the page's)",
    )
    parser.add_argument("--size", type=int, default=512, help="longer side of the test image")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.weights:
        predictor = Predictor.from_checkpoint(args.weights, device=args.device)
    else:
        predictor = untrained_predictor(args.arch, args.preset, args.model_size, args.detections, args.device)
    data = upload_bytes(args.size)
    # At a slider of 0 the page shows every detection: the most mask, drawing and tabulating work.
    threshold = args.score_threshold
    if threshold is None:
        threshold = logic.DEFAULT_SCORE_THRESHOLD if args.weights else 0.0
    controls = logic.Controls(score_threshold=threshold)
    app_path(predictor, data, controls)  # warm-up: first-call allocations and kernel selection
    runs = [app_path(predictor, data, controls) for _ in tqdm(range(args.repeats), desc="app latency")]
    image = logic.read_upload("photo.jpg", data)
    (pred,) = predictor.predict([image], score_threshold=logic.detection_floor(threshold))
    data_cfg = predictor.config["data"]
    print(
        f"{predictor.arch} ({args.weights or 'untrained'}), model input {data_cfg['min_size']}-"
        f"{data_cfg['max_size']} px, image {image.width}x{image.height}, "
        f"{len(pred)} detections at score >= {threshold}, device {predictor.device}, "
        f"{torch.get_num_threads()} threads, "
        f"{platform.processor() or platform.machine()}"
    )
    print(f"  {'step':<18} {'wall s':>8} {'CPU s':>8}   (medians of {args.repeats})")
    for step in runs[0]:
        wall = statistics.median(r[step][0] for r in runs)
        cpu = statistics.median(r[step][1] for r in runs)
        print(f"  {step:<18} {wall:8.3f} {cpu:8.3f}")
    walls = [sum(w for w, _ in r.values()) for r in runs]
    cpus = [sum(c for _, c in r.values()) for r in runs]
    print(
        f"  {'total':<18} {statistics.median(walls):8.3f} {statistics.median(cpus):8.3f}   goal: wall < 2 s"
    )
    print(f"  wall min {min(walls):.3f}, max {max(walls):.3f}; load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
