"""The run folder: one training run's files, their names and their readers, in one place.

Training writes ``config.yaml``, ``env.json``, ``metrics.jsonl``, ``checkpoints/last.pt`` and
``model_final.pt``; :func:`fashionseg.evaluation.runs.evaluate_run` writes ``predictions_<split>.json``,
``metrics.json`` and the last point of ``learning_curve.jsonl`` (layouts in ARCHITECTURE.md). Everything
that reads a run (evaluation, the report, the study's reuse check, pretraining's manifest, reproduction)
goes through :class:`RunDir`, so a file name is written once. :data:`METRICS` names the paths into
``metrics.json`` that the book, the seed comparison and the learning curve read.

Plain files only: no torch and no pandas here (the report turns these records into tables).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fashionseg.config import RunConfig, read_config
from fashionseg.errors import FashionsegError

CONFIG_FILE = "config.yaml"
ENV_FILE = "env.json"
METRICS_FILE = "metrics.json"
LOG_FILE = "metrics.jsonl"
CURVE_FILE = "learning_curve.jsonl"
CHECKPOINTS = "checkpoints"
LAST_CHECKPOINT = "last.pt"
MODEL_FILE = "model_final.pt"
SEED_FOLDER = "seed-{seed}"  # results/<preset>/seed-<k>/<arch>: the runs of a seed other than the main one

# Where the numbers the book reads live in metrics.json: name -> path of keys
METRICS: dict[str, tuple[str, ...]] = {
    "box_AP": ("bbox", "coco", "AP"),
    "mask_AP": ("segm", "coco", "AP"),
    "box_AP50": ("bbox", "coco", "AP50"),
    "mask_AP50": ("segm", "coco", "AP50"),
    "box_AP75": ("bbox", "coco", "AP75"),
    "mask_AP75": ("segm", "coco", "AP75"),
    "mask_APs": ("segm", "coco", "APs"),
    "mask_APm": ("segm", "coco", "APm"),
    "mask_APl": ("segm", "coco", "APl"),
    "box_AP_iou_f1": ("bbox", "iou_f1", "AP"),
    "mask_AP_iou_f1": ("segm", "iou_f1", "AP"),
    "box_AP_f1": ("bbox", "f1", "AP"),
    "mask_AP_f1": ("segm", "f1", "AP"),
    "mask_AP_garments": ("per_supercategory", "outerwear", "segm_AP"),
    "mask_AP_accessories": ("per_supercategory", "accessory", "segm_AP"),
    "mask_AP_parts": ("per_supercategory", "part", "segm_AP"),
    "train_s_per_iter": ("speed", "train_s_per_iter"),
    "inference_ms_per_image": ("speed", "inference_ms_per_image"),
}
# learning_curve.jsonl's columns: column -> name in METRICS (the IoU type spelled as metrics.json spells it)
CURVE_COLUMNS: dict[str, str] = {
    "bbox_AP": "box_AP",
    "bbox_AP50": "box_AP50",
    "bbox_AP75": "box_AP75",
    "bbox_AP_iou_f1": "box_AP_iou_f1",
    "segm_AP": "mask_AP",
    "segm_AP50": "mask_AP50",
    "segm_AP75": "mask_AP75",
    "segm_AP_iou_f1": "mask_AP_iou_f1",
}

_MISSING = object()


def metric_entry(metrics: dict[str, Any], name: str, default: Any = None) -> Any:
    """The value of :data:`METRICS` entry ``name`` in a ``metrics.json`` dict as stored, or ``default``
    where the path does not exist."""
    node: Any = metrics
    for key in METRICS[name]:
        if not isinstance(node, dict) or key not in node:
            return default
        node = node[key]
    return node


def metric(metrics: dict[str, Any], name: str) -> float:
    """:func:`metric_entry` as a plain float: NaN where it is missing or null (pycocotools' "no ground
    truth"), so that a table shows a gap and glue stores ``3.1``, not ``np.float64(3.1)``."""
    value = metric_entry(metrics, name)
    return math.nan if value is None else float(value)


def curve_point(iteration: int, train_seconds: float, metrics: dict[str, Any]) -> dict[str, Any]:
    """One line of ``learning_curve.jsonl``: validation AP (:data:`CURVE_COLUMNS`) after ``iteration``
    iterations and ``train_seconds`` of training (evaluation time excluded)."""
    point: dict[str, Any] = {"iteration": iteration, "train_seconds": round(train_seconds, 2)}
    for column, name in CURVE_COLUMNS.items():
        value = metric_entry(metrics, name, _MISSING)
        if value is not _MISSING:
            point[column] = value
    return point


def _json_lines(path: Path) -> list[dict[str, Any]]:
    """One record per non-empty line of a JSON-lines file; none when the file does not exist."""
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@dataclass(frozen=True)
class RunDir:
    """One run folder (``<output_dir>/<name>``): where each file is and how it is read."""

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    @classmethod
    def of(cls, results_dir: str | Path, arch: str) -> RunDir:
        """The run of ``arch`` under a results folder (``results_dir/<arch>``)."""
        return cls(Path(results_dir) / arch)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def config_file(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def env_file(self) -> Path:
        return self.path / ENV_FILE

    @property
    def metrics_file(self) -> Path:
        return self.path / METRICS_FILE

    @property
    def log_file(self) -> Path:
        return self.path / LOG_FILE

    @property
    def curve_file(self) -> Path:
        return self.path / CURVE_FILE

    @property
    def last_checkpoint(self) -> Path:
        return self.path / CHECKPOINTS / LAST_CHECKPOINT

    @property
    def model_file(self) -> Path:
        return self.path / MODEL_FILE

    def predictions_file(self, split: str = "val") -> Path:
        return self.path / f"predictions_{split}.json"

    def has(self, *files: str) -> bool:
        """Whether every one of ``files`` (names inside the folder) exists."""
        return all((self.path / f).is_file() for f in files)

    def config(self) -> RunConfig:
        return read_config(self.config_file)

    def env(self) -> dict[str, Any]:
        """``env.json`` (what ran the run), empty where the run has none."""
        return json.loads(self.env_file.read_text()) if self.env_file.is_file() else {}

    def metrics(self) -> dict[str, Any]:
        return json.loads(self.metrics_file.read_text())

    def log(self) -> list[dict[str, Any]]:
        """``metrics.jsonl``: one record per logged iteration (empty when there is no log)."""
        return _json_lines(self.log_file)

    def curve(self) -> list[dict[str, Any]]:
        """``learning_curve.jsonl``: one record per evaluation (empty before the first)."""
        return _json_lines(self.curve_file)

    def predictions(self, split: str = "val") -> list[dict[str, Any]]:
        return json.loads(self.predictions_file(split).read_text())


def seed_folder(results_dir: str | Path, seed: int) -> Path:
    """Where ``fashionseg study --seeds`` puts the runs of a seed other than the main one."""
    return Path(results_dir) / SEED_FOLDER.format(seed=seed)


def finished_runs(
    results_dir: str | Path, archs: Iterable[str], needed: str = METRICS_FILE
) -> dict[str, Path]:
    """The run folder of each backbone under ``results_dir`` that holds ``needed`` (``metrics.json`` for the
    comparison, ``model_final.pt`` where the models are run again).

    Raises FashionsegError naming the folder and what to run first when no backbone has one, so that a
    notebook executed before any training stops with that message rather than a bare ``StopIteration``.
    """
    archs = list(archs)
    runs = {arch: RunDir.of(results_dir, arch).path for arch in archs}
    runs = {arch: path for arch, path in runs.items() if RunDir(path).has(needed)}
    if not runs:
        preset = Path(results_dir).name
        files = ", ".join(f"{a}/{needed}" for a in archs)
        raise FashionsegError(
            f"no finished run under {results_dir}: none of {files} exists; train first with "
            f"`fashionseg study --preset {preset}` (or execute notebooks/02_train_backbone.ipynb with "
            f"output_dir={str(results_dir)!r} for each backbone)"
        )
    return runs


def read_run_metrics(results_dir: str | Path, archs: Iterable[str]) -> dict[str, dict[str, Any]]:
    """``metrics.json`` of each backbone's run folder under ``results_dir`` that has one (others are left
    out, so a failed backbone does not stop the comparison)."""
    runs = (RunDir.of(results_dir, arch) for arch in archs)
    return {run.name: run.metrics() for run in runs if run.has(METRICS_FILE)}


def read_run_configs(results_dir: str | Path, archs: Iterable[str]) -> dict[str, RunConfig]:
    """The ``config.yaml`` of each backbone's run folder under ``results_dir`` that has one."""
    runs = (RunDir.of(results_dir, arch) for arch in archs)
    return {run.name: run.config() for run in runs if run.has(CONFIG_FILE)}
