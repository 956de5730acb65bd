"""Typed run configuration: frozen dataclasses, one YAML file per preset, dotted overrides.

A run is fully described by a :class:`RunConfig`. Presets (``demo``, ``seed``, ``1x``) live as YAML files in
``fashionseg/presets/``; any YAML file path works as a preset too. Single values are overridden with dotted
keys (``solver.max_iter=200``), from the CLI (``-p solver.max_iter=200``) and from notebook parameters,
which map onto the same keys.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fashionseg.errors import FashionsegError

PRESET_DIR = Path(__file__).parent / "presets"
# the architecture names, defined here only; models.detector maps each to its builder
ARCHITECTURES = ("R50-FPN", "R50-C4", "R50-DC5")


class ConfigError(FashionsegError, ValueError):
    """A configuration file or override names an unknown key or holds a value of the wrong type."""


@dataclass(frozen=True)
class DataConfig:
    """Where the annotations and images of each split are, and how images are prepared.

    Paths are relative to ``root`` unless absolute. The default is the embedded synthetic dataset, which
    ``fashionseg data synth`` (or the first training run) writes under ``root``.
    """

    root: str = "data/synthetic"
    train_annotations: str = "annotations/instances_attributes_train.json"
    train_images: str = "images/train"
    val_annotations: str = "annotations/instances_attributes_val.json"
    val_images: str = "images/val"
    synthetic: bool = True  # generate the data under root when it is missing
    synth_train: int = 240
    synth_val: int = 60
    synth_size: int = 160
    synth_seed: int = 0
    min_size: int = 160  # shortest image edge after resizing (detectron2 INPUT.MIN_SIZE_TRAIN)
    max_size: int = 192  # longest image edge after resizing (INPUT.MAX_SIZE_TRAIN)
    hflip_prob: float = 0.5
    max_images: int | None = None  # train on the first N images only
    categories: tuple[int, ...] | None = None  # keep only these category ids
    skip_bad: bool = True  # skip bad images/annotations with a warning instead of stopping
    num_workers: int = 0

    def path(self, relative: str) -> Path:
        p = Path(relative)
        return p if p.is_absolute() else Path(self.root) / p


@dataclass(frozen=True)
class ModelConfig:
    """The detector: architecture, depth, initial weights and the RPN/RoI sampling sizes."""

    arch: str = "R50-FPN"
    depth: int = 50
    weights: str = "none"  # none | trunk | imagenet | coco | path of a .safetensors trunk or a checkpoint
    norm: str = "auto"  # auto (frozen BN with pretrained weights, BN from scratch) | frozen_bn | bn | gn
    head_norm: str = "none"  # none | gn: GroupNorm in the FPN and the mask-head convs (from-scratch recipe)
    trainable_backbone_layers: int = 3
    # detectron2's MODEL.ANCHOR_GENERATOR.SIZES: one size per FPN level P2-P6, or all five on the one
    # stride-16 map of C4/DC5; the defaults are for ~800 px images
    anchor_sizes: tuple[int, ...] = (32, 64, 128, 256, 512)
    rpn_pre_nms_top_n_train: int = 2000
    rpn_post_nms_top_n_train: int = 1000
    rpn_pre_nms_top_n_test: int = 1000
    rpn_post_nms_top_n_test: int = 1000
    rpn_batch_size_per_image: int = 256
    box_batch_size_per_image: int = 512
    box_score_thresh: float = 0.05
    box_detections_per_img: int = 100
    # the attribute loss is summed over 294 attributes: at weight 1 it was 5-10x the detection losses of a
    # from-scratch model and halved its box AP at 400 iterations (measured on the demo); 0.1 balances them
    attribute_loss_weight: float = 0.1
    attribute_threshold: float = 0.5
    attribute_prior: float = 0.01  # initial sigmoid output of the attribute logits (low: rare attributes)


@dataclass(frozen=True)
class SolverConfig:
    """detectron2's SOLVER: SGD with momentum, linear warmup, multi-step decay, lr scaled with batch."""

    ims_per_batch: int = 16
    base_lr: float = 0.02  # for reference_batch images per iteration; scaled linearly to ims_per_batch
    reference_batch: int = 16
    momentum: float = 0.9
    weight_decay: float = 1e-4
    max_iter: int = 90000
    steps: tuple[int, ...] = (60000, 80000)
    gamma: float = 0.1
    warmup_iters: int = 1000
    warmup_factor: float = 0.001
    clip_grad_norm: float | None = None
    amp: bool = True  # mixed precision: float16 on CUDA, bfloat16 on CPUs with native bf16 (precision.py)
    checkpoint_period: int = 5000
    eval_period: int = 0  # evaluate on the val split every N iterations (learning_curve.jsonl); 0: never
    eval_images: int | None = None  # the first N val images for those evaluations (None: all)

    @property
    def lr(self) -> float:
        return self.base_lr * self.ims_per_batch / self.reference_batch


@dataclass(frozen=True)
class RunConfig:
    """Everything one training run needs; written as ``config.yaml`` next to its checkpoints."""

    name: str = ""  # the run folder's name; empty: the architecture's (load_config fills it in)
    output_dir: str = "runs"
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    seed: int = 0
    deterministic: bool = True
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    solver: SolverConfig = field(default_factory=SolverConfig)

    @property
    def run_dir(self) -> Path:
        return Path(self.output_dir) / (self.name or self.model.arch)


def _coerce(value: Any, annotation: Any, key: str) -> Any:
    """Convert a YAML/CLI value to the annotated type, or raise ConfigError naming the key."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            if type(None) in args:
                return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], key)
    if origin is tuple:
        if isinstance(value, str):
            value = [v for v in value.replace("(", "").replace(")", "").split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return tuple(_coerce(v, args[0], key) for v in value)
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "false", "0", "no"):
            return value.lower() in ("true", "1", "yes")
        raise ConfigError(f"{key}: expected true/false, got {value!r}")
    if annotation in (int, float, str):
        try:
            if annotation is int and isinstance(value, float) and not value.is_integer():
                raise ValueError
            if annotation is int and isinstance(value, str):
                return int(float(value)) if float(value).is_integer() else int(value)
            return annotation(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key}: expected {annotation.__name__}, got {value!r}") from None
    return value


def _from_dict(cls: type, values: dict[str, Any], prefix: str = "") -> Any:
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(
            f"unknown config key(s) {', '.join(prefix + u for u in unknown)}; valid keys under "
            f"'{prefix or '<top>'}': {', '.join(sorted(known))}"
        )
    kwargs = {}
    for name, value in values.items():
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            if not isinstance(value, dict):
                raise ConfigError(f"{prefix}{name}: expected a mapping, got {value!r}")
            kwargs[name] = _from_dict(hint, value, f"{prefix}{name}.")
        else:
            kwargs[name] = _coerce(value, hint, prefix + name)
    return cls(**kwargs)


def to_dict(cfg: Any) -> dict[str, Any]:
    """A plain, YAML-safe dict (tuples become lists)."""

    def plain(v: Any) -> Any:
        if isinstance(v, tuple):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return plain(dataclasses.asdict(cfg))


def from_dict(values: dict[str, Any]) -> RunConfig:
    return _from_dict(RunConfig, values)


def preset_path(preset: str | Path) -> Path:
    """The YAML file of a preset name (``demo``) or a path to any YAML file."""
    p = Path(preset)
    if p.suffix in (".yaml", ".yml"):
        if not p.is_file():
            raise ConfigError(f"preset file {p} does not exist")
        return p
    candidate = PRESET_DIR / f"{preset}.yaml"
    if not candidate.is_file():
        names = ", ".join(sorted(f.stem for f in PRESET_DIR.glob("*.yaml")))
        raise ConfigError(f"unknown preset {preset!r}; valid presets: {names} (or a path to a .yaml file)")
    return candidate


def list_presets() -> list[str]:
    return sorted(f.stem for f in PRESET_DIR.glob("*.yaml"))


def _set_dotted(tree: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    node = tree
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{key}: {part} is not a section")
    node[parts[-1]] = value


def flatten(tree: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """A nested mapping as ``(dotted key, value)`` pairs: ``{"solver": {"max_iter": 9}}`` ->
    ``[("solver.max_iter", 9)]``."""
    out: list[tuple[str, Any]] = []
    for key, value in tree.items():
        if isinstance(value, dict):
            out += flatten(value, f"{prefix}{key}.")
        else:
            out.append((f"{prefix}{key}", value))
    return out


def parse_override(text: str) -> tuple[str, Any]:
    """``solver.max_iter=200`` -> ("solver.max_iter", 200); the value is parsed as YAML."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like key=value, e.g. solver.max_iter=200")
    key, raw = text.split("=", 1)
    return key.strip(), yaml.safe_load(raw) if raw.strip() else None


def add_override_argument(parser: argparse.ArgumentParser, help: str | None = None) -> None:
    """The repeatable ``-p/--set KEY=VALUE`` option, collected as strings in ``args.overrides``."""
    parser.add_argument(
        "-p",
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=help or "override one config value, e.g. -p solver.max_iter=200 (repeatable)",
    )


def load_config(
    preset: str | Path = "demo",
    overrides: dict[str, Any] | list[str] | None = None,
) -> RunConfig:
    """Read a preset and apply dotted overrides (a dict, or ``key=value`` strings).

    A preset may hold a ``per_arch`` mapping (arch name -> config values) that adjusts it for the chosen
    architecture, e.g. fewer RoIs for R50-C4, whose res5 head runs once per RoI.
    """
    path = preset_path(preset)
    try:
        tree = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(tree, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    per_arch = tree.pop("per_arch", {}) or {}
    items = list(overrides.items() if isinstance(overrides, dict) else map(parse_override, overrides or []))
    for key, value in items:
        _set_dotted(tree, key, value)
    arch = tree.get("model", {}).get("arch", ModelConfig.arch)
    if arch in per_arch:
        # The preset's adjustments for this architecture; explicit overrides still win.
        for key, value in flatten(per_arch[arch]):
            _set_dotted(tree, key, value)
        for key, value in items:
            _set_dotted(tree, key, value)
    try:
        cfg = from_dict(tree)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    return with_run_name(cfg, source=str(path))


def with_run_name(cfg: RunConfig, source: str = "the configuration") -> RunConfig:
    """``cfg`` with its run name filled in: the architecture's unless one is given.

    A name that is another architecture's is refused: ``-p model.arch=R50-C4`` on a preset naming its run
    ``R50-FPN`` would otherwise train an R50-C4 into the R50-FPN run's folder.
    """
    if not cfg.name:
        return dataclasses.replace(cfg, name=cfg.model.arch)
    if cfg.name in ARCHITECTURES and cfg.name != cfg.model.arch:
        raise ConfigError(
            f"{source}: name={cfg.name!r} is the run folder of another architecture than "
            f"model.arch={cfg.model.arch!r}; drop `name` (the run is then named after its architecture) "
            "or give a name of your own"
        )
    return cfg


def save_config(cfg: RunConfig, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))


def read_config(path: str | Path) -> RunConfig:
    """Read back a ``config.yaml`` written by :func:`save_config`."""
    return with_run_name(from_dict(yaml.safe_load(Path(path).read_text())), source=str(path))
