"""The method chapter's recipe table: each run's training recipe as its ``config.yaml`` and ``env.json``
record it."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from fashionseg.config import flatten, to_dict
from fashionseg.rundir import RunDir, read_run_configs

# The recipe the method chapter shows, as (row label, dotted config key); env.json's entries follow
RECIPE_KEYS: tuple[tuple[str, str], ...] = (
    ("data", "data.root"),
    ("synthetic data", "data.synthetic"),
    ("shortest / longest image edge (px)", "data.min_size|data.max_size"),
    ("horizontal flip probability", "data.hflip_prob"),
    ("initial weights", "model.weights"),
    ("backbone / head normalisation", "model.norm|model.head_norm"),
    ("iterations", "solver.max_iter"),
    ("images per batch", "solver.ims_per_batch"),
    ("base learning rate (for the reference batch)", "solver.base_lr|solver.reference_batch"),
    ("momentum / weight decay", "solver.momentum|solver.weight_decay"),
    ("warm-up iterations / start factor", "solver.warmup_iters|solver.warmup_factor"),
    ("learning-rate decays at / factor", "solver.steps|solver.gamma"),
    ("gradient-norm clip", "solver.clip_grad_norm"),
    ("bfloat16 autocast requested", "solver.amp"),
    ("evaluation every (iterations)", "solver.eval_period"),
    (
        "RPN proposals, training (pre / post NMS)",
        "model.rpn_pre_nms_top_n_train|model.rpn_post_nms_top_n_train",
    ),
    ("RPN proposals, test (pre / post NMS)", "model.rpn_pre_nms_top_n_test|model.rpn_post_nms_top_n_test"),
    ("anchors sampled per training image", "model.rpn_batch_size_per_image"),
    (
        "RoIs sampled per training image / most foreground share",
        "model.box_batch_size_per_image|model.box_positive_fraction",
    ),
    ("detections kept per image", "model.box_detections_per_img"),
    (
        "attribute loss weight / attribute predictor's lr factor",
        "model.attribute_loss_weight|solver.attribute_lr_factor",
    ),
    ("seed", "seed"),
)


RECIPE_ENV = {
    "torch": "torch",
    "torchvision": "torchvision",
    "python": "python",
    "device": "device",
    "CPU threads": "cpu_threads",
    "git commit": "git_commit",
}


def _recipe_value(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(map(str, value))
    return f"{value:g}" if isinstance(value, float) else str(value)


def recipe_table(results_dir: str | Path, archs: Iterable[str]) -> pd.DataFrame:
    """The training recipe of each run as its ``config.yaml`` and ``env.json`` record it: one row per
    setting of :data:`RECIPE_KEYS` and :data:`RECIPE_ENV`, one column per backbone (values as text; a
    ``|`` in a key joins two values with " / ")."""
    columns = {}
    for arch, cfg in read_run_configs(results_dir, archs).items():
        flat, env = dict(flatten(to_dict(cfg))), RunDir.of(results_dir, arch).env()
        column = {
            label: " / ".join(_recipe_value(flat[k]) for k in keys.split("|")) for label, keys in RECIPE_KEYS
        }
        for label, key in RECIPE_ENV.items():
            value = env.get(key)
            column[label] = "" if value is None else str(value)[:10] if key == "git_commit" else str(value)
        columns[arch] = column
    table = pd.DataFrame(columns)
    table.index.name = "setting"
    return table
