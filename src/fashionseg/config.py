"""Typed run configuration: frozen dataclasses, one YAML file per preset, dotted overrides.

A run is fully described by a :class:`RunConfig`. Presets (``demo``, ``seed``, ``1x``) live as YAML files in
``fashionseg/presets/``; any YAML file path works as a preset too. Single values are overridden with dotted
keys (``solver.max_iter=200``), from the CLI (``-p solver.max_iter=200``) and from notebook parameters,
which map onto the same keys.

Every value is checked as the configuration is loaded (:func:`validate`), before any work starts: ranges,
choices and the rules between keys. An error names the key, the value, what is valid and where the value
came from (``-p``, the notebook parameter, or the preset file, named relative to the project).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import os
import re
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fashionseg.config_validation import (
    DEPTHS,
    DEVICES,
    HEAD_NORMS,
    LR_SCHEDULERS,
    NORMS,
    RANGES,
    WEIGHT_NAMES,
)
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
    # the pretext of `fashionseg pretrain`: these designs' heads trained together on one shared ResNet (their
    # losses summed every iteration; models.joint); empty: an ordinary run of `arch`, which is then unused
    pretext_archs: tuple[str, ...] = ()
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
    # detectron2's ROI_HEADS.POSITIVE_FRACTION: the most of those RoIs that may be foreground; the mask and
    # attribute heads train on the foreground ones only
    box_positive_fraction: float = 0.25
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
    resnet_lr_factor: float = 1.0  # the ResNet's weights learn at this times lr (the heads at lr)
    # the attribute predictor's weights learn at this times lr: its loss is scaled down (model.
    # attribute_loss_weight) so as not to disturb detection, which also slows the predictor itself
    attribute_lr_factor: float = 1.0
    max_iter: int = 90000
    # detectron2's SOLVER.LR_SCHEDULER_NAME: WarmupMultiStepLR (gamma at each of `steps`) or WarmupCosineLR
    # (half a cosine from lr to 0 over max_iter; steps and gamma unused)
    lr_scheduler: str = "WarmupMultiStepLR"
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


class _BadValue(Exception):
    """A value of the wrong type; :func:`_from_dict` adds the key and the value's origin."""


def _coerce(value: Any, annotation: Any) -> Any:
    """Convert a YAML/CLI value to the annotated type; raises :class:`_BadValue` saying what was expected."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            if type(None) in args:
                return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0])
    if origin is tuple:
        if isinstance(value, str):
            value = [v for v in value.replace("(", "").replace(")", "").split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise _BadValue(f"a list of {args[0].__name__}")
        try:
            return tuple(_coerce(v, args[0]) for v in value)
        except _BadValue:
            raise _BadValue(f"a list of {args[0].__name__}") from None
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "false", "0", "no"):
            return value.lower() in ("true", "1", "yes")
        raise _BadValue("true or false")
    if annotation is str:
        # a list, a mapping or nothing (`-p data.root=`) would otherwise become the text "[...]" or "None"
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise _BadValue("a text value")
        return str(value)
    if annotation in (int, float):
        expected = "an integer" if annotation is int else "a number"
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise _BadValue(expected)
        try:
            if annotation is int and isinstance(value, float) and not value.is_integer():
                raise ValueError
            if annotation is int and isinstance(value, str):
                return int(float(value)) if float(value).is_integer() else int(value)
            return annotation(value)
        except (TypeError, ValueError, OverflowError):
            raise _BadValue(expected) from None
    return value


def _from_dict(cls: type, values: dict[str, Any], prefix: str = "", origins: Origins | None = None) -> Any:
    origins = origins or Origins()
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(str(u) for u in set(values) - known)
    if unknown:
        keys = [prefix + u for u in unknown]
        raise ConfigError(
            f"unknown config key(s) {', '.join(keys)} ({origins.of(keys[0])}); valid keys under "
            f"'{prefix or '<top>'}': {', '.join(sorted(known))}"
        )
    kwargs = {}
    for name, value in values.items():
        hint = hints[name]
        key = prefix + name
        if dataclasses.is_dataclass(hint):
            if not isinstance(value, dict):
                raise ConfigError(f"{key}={_show(value)} ({origins.of(key)}): expected a mapping of keys")
            kwargs[name] = _from_dict(hint, value, f"{key}.", origins)
            continue
        try:
            kwargs[name] = _coerce(value, hint)
        except _BadValue as exc:
            raise ConfigError(f"{key}={_show(value)} ({origins.of(key)}): expected {exc}") from None
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


def from_dict(values: dict[str, Any], origins: Origins | None = None) -> RunConfig:
    """A :class:`RunConfig` of a nested mapping, types converted; not range-checked (see :func:`validate`)."""
    if not isinstance(values, dict):
        where = origins.of("") if origins else "the configuration"
        raise ConfigError(f"{where}: expected a mapping of config keys, got {type(values).__name__}")
    return _from_dict(RunConfig, values, "", origins)


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


def file_label(path: str | Path) -> str:
    """How errors name a configuration file: ``presets/demo.yaml`` for a shipped preset, else the path
    relative to the project (or the working folder), else as given."""
    path = Path(path)
    resolved = path.resolve()
    for base, shown in (
        (PRESET_DIR.resolve(), Path("presets")),
        (project_root(), Path()),
        (Path.cwd(), Path()),
    ):
        if resolved.is_relative_to(base):
            return (shown / resolved.relative_to(base)).as_posix()
    return str(path)


def project_root() -> Path:
    """The checkout this package runs from (an editable install), else the working folder: where the
    shipped trunk (``weights/``) and relative preset paths are looked up."""
    here = Path(__file__).resolve().parents[2]
    return here if (here / "pyproject.toml").is_file() else Path.cwd().resolve()


class Origins:
    """Where each dotted key's value came from (a preset file, its ``per_arch`` section, an override or a
    stored ``config.yaml``), so that an error can say which line to fix; unset keys are the defaults."""

    def __init__(self, default: str = "the default") -> None:
        self._by_key: dict[str, str] = {}
        self._overridden: set[str] = set()
        self._default = default

    def set(self, key: str, origin: str, override: bool = False) -> None:
        """``key`` (dotted) and every key under it came from ``origin`` (an override, or a file)."""
        below = [k for k in self._by_key if k.startswith(key + ".")]
        for k in below:
            del self._by_key[k]
            self._overridden.discard(k)
        self._by_key[key] = origin
        if override:
            self._overridden.add(key)
        else:
            self._overridden.discard(key)

    def set_tree(self, tree: dict[str, Any], origin: str, prefix: str = "") -> None:
        """Every key of ``tree`` (sections too, empty ones included) came from ``origin``."""
        for key, value in tree.items():
            self.set(f"{prefix}{key}", origin)
            if isinstance(value, dict):
                self.set_tree(value, origin, f"{prefix}{key}.")

    def _owner(self, key: str) -> str | None:
        """``key`` itself when it has an origin, else its closest section that has one."""
        parts = key.split(".")
        for end in range(len(parts), 0, -1):
            if ".".join(parts[:end]) in self._by_key:
                return ".".join(parts[:end])
        # a section named by the keys under it only (an unknown section `x` of `-p x.y=1`)
        return next((k for k in self._by_key if k.startswith(key + ".")), None)

    def of(self, key: str) -> str:
        """``from <origin>`` of ``key``, or the default's description."""
        owner = self._owner(key)
        return self._default if owner is None else f"from {self._by_key[owner]}"

    def overridden(self, key: str) -> bool:
        """Whether ``key``'s value came from an override (``-p``, a notebook parameter)."""
        return self._owner(key) in self._overridden


def _set_dotted(tree: dict[str, Any], key: str, value: Any, origin: str = "the override") -> None:
    parts = key.split(".")
    node = tree
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"{key} ({origin}): {part} is not a section of keys")
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
    """``solver.max_iter=200`` -> ("solver.max_iter", 200); the value is parsed as YAML (text that is not
    YAML, such as ``[1``, stays text, and the key's type check then names it)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like key=value, e.g. solver.max_iter=200")
    key, raw = text.split("=", 1)
    if not raw.strip():
        return key.strip(), None
    try:
        return key.strip(), yaml.safe_load(raw)
    except yaml.YAMLError:
        return key.strip(), raw.strip()


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


def _in_notebook() -> bool:
    """Whether this runs inside a Jupyter kernel: there, the overrides are the notebook's parameters."""
    kernelapp = sys.modules.get("ipykernel.kernelapp")
    return bool(kernelapp and kernelapp.IPKernelApp.initialized())


def load_config(
    preset: str | Path = "demo",
    overrides: dict[str, Any] | list[str] | None = None,
    *,
    override_origin: str | None = None,
) -> RunConfig:
    """Read a preset, apply dotted overrides (a dict, or ``key=value`` strings) and :func:`validate` it.

    A preset may hold a ``per_arch`` mapping (arch name -> config values) that adjusts it for the chosen
    architecture, e.g. fewer RoIs for R50-C4, whose res5 head runs once per RoI. ``override_origin`` names
    where the overrides came from in errors; by default ``-p`` for strings, the notebook parameter inside a
    Jupyter kernel, else the override.
    """
    path = preset_path(preset)
    label = file_label(path)
    try:
        tree = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{label}: not a UTF-8 text file ({exc})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{label}: not valid YAML: {' '.join(str(exc).split())}") from None
    except OSError as exc:
        raise ConfigError(f"{label}: cannot be read ({exc.strerror})") from None
    if not isinstance(tree, dict):
        raise ConfigError(f"{label}: expected a mapping of config keys at the top level")
    per_arch = tree.pop("per_arch", {}) or {}
    if not isinstance(per_arch, dict) or not all(isinstance(v, dict) for v in per_arch.values()):
        raise ConfigError(f"{label}: per_arch must map architecture names to config values")
    strange = sorted(str(a) for a in per_arch if a not in ARCHITECTURES)
    if strange:
        raise ConfigError(
            f"{label}: per_arch.{strange[0]} is not an architecture; valid: {', '.join(ARCHITECTURES)}"
        )
    origins = Origins()
    origins.set_tree(tree, label)
    if isinstance(overrides, dict):
        items = list(overrides.items())
        origin = override_origin or ("the notebook parameter" if _in_notebook() else "the override")
    else:
        items = [parse_override(text) for text in overrides or []]
        origin = override_origin or "-p"
    for key, value in items:
        _set_dotted(tree, key, value, f"from {origin}")
        origins.set(key, origin, override=True)
    model = tree.get("model")
    arch = model.get("arch", ModelConfig.arch) if isinstance(model, dict) else ModelConfig.arch
    if isinstance(arch, str) and arch in per_arch:
        # The preset's adjustments for this architecture; explicit overrides still win.
        section = f"{label}, per_arch.{arch}"
        for key, value in flatten(per_arch[arch]):
            _set_dotted(tree, key, value, f"from {section}")
            origins.set(key, section)
        for key, value in items:
            _set_dotted(tree, key, value, f"from {origin}")
            origins.set(key, origin, override=True)
    cfg = with_run_name(from_dict(tree, origins), source=label)
    validate(cfg, origins)
    return cfg


def with_run_name(cfg: RunConfig, source: str = "the configuration") -> RunConfig:
    """``cfg`` with its run name filled in: the architecture's unless one is given.

    A name that is another architecture's is refused: ``-p model.arch=R50-C4`` on a preset naming its run
    ``R50-FPN`` would otherwise train an R50-C4 into the R50-FPN run's folder.
    """
    if not cfg.name:
        return dataclasses.replace(cfg, name=joint_run_name(cfg.model.pretext_archs) or cfg.model.arch)
    if cfg.name in ARCHITECTURES and cfg.name != cfg.model.arch:
        raise ConfigError(
            f"{source}: name={cfg.name!r} is the run folder of another architecture than "
            f"model.arch={cfg.model.arch!r}; drop `name` (the run is then named after its architecture) "
            "or give a name of your own"
        )
    return cfg


def joint_run_name(archs: tuple[str, ...]) -> str:
    """The run folder of a joint pretext run: its designs joined by ``+`` (``R50-FPN+R50-C4``)."""
    return "+".join(archs)


def save_config(cfg: RunConfig, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))


def read_config(path: str | Path) -> RunConfig:
    """Read back a ``config.yaml`` written by :func:`save_config`, checked by :func:`validate`."""
    label = file_label(path)
    try:
        tree = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(
            f"{label}: cannot be read as a configuration ({' '.join(str(exc).split())})"
        ) from None
    origins = Origins(default=f"from {label}")
    cfg = with_run_name(from_dict(tree, origins), source=label)
    validate(cfg, origins, stored=True)
    return cfg


# --- validation: every value checked when the configuration is loaded, before any work starts -----------

# dotted key -> its valid values
CHOICES: dict[str, tuple[Any, ...]] = {
    "model.arch": ARCHITECTURES,
    "model.depth": DEPTHS,
    "model.norm": NORMS,
    "model.head_norm": HEAD_NORMS,
    "solver.lr_scheduler": LR_SCHEDULERS,
}
# text values that name a file or folder: empty text would silently mean the working folder
PATHS = (
    "output_dir",
    "data.root",
    "data.train_annotations",
    "data.train_images",
    "data.val_annotations",
    "data.val_images",
)


def validate(cfg: RunConfig, origins: Origins | None = None, *, stored: bool = False) -> None:
    """Check every value of ``cfg`` and the rules between them; raise one :class:`ConfigError` listing each
    problem with its key, value, valid range or choices and origin (``origins``).

    ``stored``: ``cfg`` is a finished run's ``config.yaml``. What depends on this machine (a weights file,
    the number of processes) is not checked then, nor the schedule's end (see :func:`_schedule_problems`).
    """
    origins = origins or Origins()
    problems: list[str] = []

    def bad(key: str, need: str) -> None:
        problems.append(f"{key}={_show(value_of(cfg, key))} ({origins.of(key)}): {need}")

    for key, valid in RANGES.items():
        value = value_of(cfg, key)
        values = value if isinstance(value, tuple) else () if value is None else (value,)
        wrong = [v for v in values if v not in valid]
        if wrong:
            each = "each value must be " if isinstance(value, tuple) else "must be "
            bad(key, each + str(valid))
    for key, choices in CHOICES.items():
        if value_of(cfg, key) not in choices:
            bad(key, f"not one of {', '.join(map(str, choices))}")
    for key in PATHS:
        if not str(value_of(cfg, key)).strip():
            bad(key, "must name a file or folder, not be empty")
    if cfg.name and (
        cfg.name.strip() != cfg.name or cfg.name in (".", "..") or re.search(r"[/\\]", cfg.name)
    ):
        bad("name", "must be one folder name (no / or \\, no surrounding spaces), or empty for the arch's")
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", cfg.device):
        bad("device", f"not one of {', '.join(DEVICES)}")
    data, model, solver = cfg.data, cfg.model, cfg.solver
    if data.min_size > data.max_size:
        bad("data.min_size", f"must be at most data.max_size={data.max_size} ({origins.of('data.max_size')})")
    if data.categories is not None:
        if not data.categories:
            bad("data.categories", "must list at least one category id (or be null for all)")
        elif len(set(data.categories)) != len(data.categories):
            bad("data.categories", "lists a category id twice")
    if len(model.anchor_sizes) != 5:
        bad("model.anchor_sizes", "must be five sizes (one per FPN level P2-P6, or C4/DC5's 5 sizes)")
    problems += _pretext_problems(cfg, origins)
    problems += _weights_problems(model, origins, stored)
    problems += _schedule_problems(solver, origins, stored)
    if not stored:
        world_size = _world_size()
        if world_size > 1 and solver.ims_per_batch % world_size:
            bad("solver.ims_per_batch", f"must be divisible by the number of processes ({world_size})")
    if problems:
        raise ConfigError(
            problems[0] if len(problems) == 1 else "\n  ".join(["invalid configuration:", *problems])
        )


def _pretext_problems(cfg: RunConfig, origins: Origins) -> list[str]:
    """``model.pretext_archs``: distinct architectures, and what a joint run cannot do."""
    archs = cfg.model.pretext_archs
    where = f"model.pretext_archs={_show(archs)} ({origins.of('model.pretext_archs')})"
    if not archs:
        return []
    if any(a not in ARCHITECTURES for a in archs):
        return [f"{where}: each value must be one of {', '.join(ARCHITECTURES)}"]
    if len(set(archs)) != len(archs):
        return [f"{where}: lists a design twice"]
    if cfg.solver.eval_period:
        # the in-run learning curve evaluates one detector; `fashionseg pretrain` evaluates each design at
        # the end instead
        return [
            f"{where}: a joint pretext run has no learning curve; set solver.eval_period=0 "
            f"(now {cfg.solver.eval_period}, {origins.of('solver.eval_period')})"
        ]
    if cfg.model.weights == "coco" and archs != ("R50-FPN",):
        return [f"{where}: model.weights=coco exists only for R50-FPN; use weights=none or trunk"]
    return []


def _weights_problems(model: ModelConfig, origins: Origins, stored: bool) -> list[str]:
    """``model.weights``: a name, a ``.safetensors`` trunk or an existing checkpoint; and what it needs."""
    key, weights = "model.weights", model.weights
    where = f"model.weights={weights!r} ({origins.of(key)})"
    problems = []
    # a missing trunk file is the trunk loader's to report: its message says how to make one
    is_path = weights not in WEIGHT_NAMES and not weights.endswith(".safetensors")
    if not weights.strip():
        problems.append(f"{where}: must be one of {', '.join(WEIGHT_NAMES)} or a checkpoint path")
    elif is_path and not stored and not Path(weights).is_file():
        problems.append(
            f"{where}: not one of {', '.join(WEIGHT_NAMES)}, and no checkpoint file {weights} exists "
            "(a fashionseg model_final.pt or checkpoints/last.pt, or a .safetensors trunk)"
        )
    if weights == "coco" and (model.arch != "R50-FPN" or model.depth != 50):
        problems.append(
            f"{where}: exists only for model.arch=R50-FPN with model.depth=50, not {model.arch} with depth "
            f"{model.depth} ({origins.of('model.arch')}); use weights=imagenet"
        )
    if weights == "imagenet" and model.norm == "gn":
        problems.append(
            f"{where}: torchvision's ImageNet ResNets use BatchNorm, so model.norm=gn "
            f"({origins.of('model.norm')}) cannot start from them; use model.norm=frozen_bn or weights=none"
        )
    return problems


def _schedule_problems(solver: SolverConfig, origins: Origins, stored: bool) -> list[str]:
    """``solver.steps``: increasing and below ``solver.max_iter``.

    A preset's steps past an iteration count cut short by an override are left alone (never reached, as
    detectron2 drops them): ``-p solver.max_iter=200`` on the demo keeps working. Steps written together
    with the iteration count, or given by an override themselves, must lie below it.
    """
    steps, max_iter = solver.steps, solver.max_iter
    where = f"solver.steps={_show(steps)} ({origins.of('solver.steps')})"
    if any(b <= a for a, b in itertools.pairwise(steps)):
        return [f"{where}: must be strictly increasing"]
    steps_origin, max_iter_origin = origins.of("solver.steps"), origins.of("solver.max_iter")
    together = steps_origin == max_iter_origin or origins.overridden("solver.steps")
    if steps and steps[-1] >= max_iter and together and not stored:
        return [
            f"{where}: each step must lie below solver.max_iter={max_iter} ({max_iter_origin}); "
            "a step at or after the last iteration never decays the learning rate"
        ]
    return []


def _world_size() -> int:
    """The number of processes ``torchrun`` starts (``WORLD_SIZE``); 1 outside it."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 1


def value_of(cfg: Any, key: str) -> Any:
    """The value of a dotted key: ``value_of(cfg, "solver.max_iter")``."""
    for part in key.split("."):
        cfg = getattr(cfg, part)
    return cfg


def _show(value: Any) -> str:
    """A value as the error shows it: tuples as YAML lists, text quoted, long values shortened."""
    text = repr(list(value)) if isinstance(value, tuple) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
