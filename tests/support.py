"""Helpers shared by several test modules (plain functions and constants; fixtures live in conftest.py)."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from fashionseg.config import load_config, save_config
from fashionseg.evaluation.runs import speed_entry
from fashionseg.rundir import RunDir

# Debian's chromium package, driven by Playwright in the browser tests (.ci/run installs it)
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def torchrun_launcher(master_port: int, processes: int = 2) -> list[str]:
    """The command prefix that runs ``processes`` copies of a ``-m module`` under torchrun on this machine.

    Each test passes its own ``master_port``, so that two distributed tests never meet on one port.
    """
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        str(processes),
        "--master_port",
        str(master_port),
    ]


def run_folder(root: Path, arch: str, threads: int = 2, batch_size: int = 4) -> Path:
    """A run folder of the demo preset for ``arch`` under ``root``: config.yaml, env.json and the speed
    entry of metrics.json as evaluate_run writes it (:func:`fashionseg.evaluation.runs.speed_entry`)."""
    run = RunDir.of(root, arch)
    run.path.mkdir(parents=True)
    save_config(load_config("demo", {"model.arch": arch}), run.config_file)
    env = {"torch": "2.x", "torchvision": "0.y", "python": "3.11", "device": "cpu", "cpu_threads": threads}
    run.env_file.write_text(json.dumps({**env, "git_commit": "0123456789abcdef"}))
    log = [{"iteration": i, "time": 0.5} for i in (20, 40)]
    speed = speed_entry(log, model_seconds=0.4, images=40, device="cpu", batch_size=batch_size)
    run.metrics_file.write_text(json.dumps({"speed": speed}))
    return run.path


def fake_metrics(scale: float, ms: float) -> dict[str, Any]:
    """A metrics.json (ARCHITECTURE.md layout) whose values are ``scale`` times a fixed pattern."""
    family = {"AP": 10 * scale, "AP50": 20 * scale, "AP75": 5 * scale, "APs": -1.0, "APm": 1.0, "APl": 2.0}
    iou_type = {"coco": family, "iou": family, "iou_f1": {"AP": 6 * scale}, "f1": {"AP": 8 * scale}}
    return {
        "bbox": iou_type,
        "segm": {**iou_type, "coco": {**family, "AP": 9 * scale}},
        "per_category": {"dress": {"bbox_AP": 10 * scale, "segm_AP": 9 * scale}, "hat": {"segm_AP": -1.0}},
        "speed": {"train_s_per_iter": 0.5 * scale, "inference_ms_per_image": ms, "device": "cpu"},
    }


def tiny_overrides(root: Path, out: Path, **extra) -> dict:
    """A few-second run: 96-128 px, batch 2, small RPN/RoI sampling."""
    values = {
        "output_dir": str(out),
        "data.root": str(root),
        "data.synthetic": False,
        "data.min_size": 96,
        "data.max_size": 128,
        "model.rpn_pre_nms_top_n_train": 100,
        "model.rpn_post_nms_top_n_train": 50,
        "model.rpn_pre_nms_top_n_test": 100,
        "model.rpn_post_nms_top_n_test": 50,
        "model.box_batch_size_per_image": 32,
        "solver.ims_per_batch": 2,
        "solver.max_iter": 4,
        "solver.steps": [3],
        "solver.warmup_iters": 2,
        "solver.checkpoint_period": 2,
    }
    values.update(extra)
    return values


def gt_annotation(
    ann_id: int,
    image_id: int,
    category: int,
    mask: np.ndarray,
    segmentation: Any,
    crowd: bool,
    rng: np.random.Generator,
    pool: Sequence[int],
) -> dict[str, Any]:
    """A ground-truth annotation of the random evaluation datasets: ``mask`` (uint8 [H, W]) gives its box and
    area, ``segmentation`` is stored as given, and 0 to 3 attribute ids are drawn from ``pool``."""
    return {
        "id": ann_id,
        "image_id": image_id,
        "category_id": category,
        "bbox": [float(v) for v in mask_utils.toBbox(mask_utils.encode(np.asfortranarray(mask)))],
        "area": float(mask.sum()),
        "segmentation": segmentation,
        "iscrowd": int(crowd),
        "attribute_ids": sorted(int(a) for a in rng.choice(pool, int(rng.integers(0, 4)), False)),
    }
