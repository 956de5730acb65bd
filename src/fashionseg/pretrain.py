"""``fashionseg pretrain``: the study's own pretrained ResNet-50 trunk, made once and shipped.

The seed study ran detectron2's configs, which fine-tune a pretrained ResNet-50; the embedded study does the
same from a trunk pretrained here, on a synthetic split of its own seed that shares no image with the study's
splits (checked by content hash). A pretext is a training run of an ordinary preset (``pretrain``: R50-FPN
detection) or, with ``model.pretext_archs`` (preset ``pretrain_joint``), the listed designs' heads trained
together on one shared ResNet (``models.joint``), each design then evaluated with its own heads. A run may
continue a trunk (``model.weights`` naming one); the manifest then records it as ``initial_trunk``. The
shipped trunk has two stages (``make pretrain``): R50-FPN detection from random weights
(``weights/r50-gn-fpn-trunk.safetensors``), then the three designs' heads together
(``weights/r50-gn-trunk.safetensors``, the default ``--out``). Each stage's ResNet, stem to res5, is written
with a manifest beside it: the recipe, the data, the iterations, the time, the CPU kind, the learning curve
and the file's SHA-256. Training is the ordinary loop, so the pretraining is deterministic on one CPU kind,
shows a progress bar, and a killed ``make pretrain`` continues where its last checkpoint left off.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from fashionseg import checkpoint
from fashionseg.config import (
    DataConfig,
    RunConfig,
    add_override_argument,
    joint_run_name,
    list_presets,
    load_config,
    project_root,
    to_dict,
)
from fashionseg.data.ontology import LabelSpace
from fashionseg.data.synthetic import SPLITS, ensure_synthetic
from fashionseg.distributed import resolve_device
from fashionseg.errors import FashionsegError
from fashionseg.evaluation import runs
from fashionseg.models import build_model
from fashionseg.models.joint import design_state, joint_trunk_state
from fashionseg.models.trunk import (
    TRUNK_FILE,
    is_trunk,
    read_manifest,
    resolve_trunk_path,
    save_trunk,
    trunk_state,
)
from fashionseg.predict import Predictor
from fashionseg.rundir import RunDir
from fashionseg.train import refuse_to_overwrite, train

PRETEXT = "R50-FPN detection and segmentation (Mask R-CNN with attributes) on a separate synthetic split"
JOINT_PRETEXT = (
    "{designs} detection and segmentation (Mask R-CNN with attributes) trained together on one shared "
    "ResNet, their losses summed each iteration, on a separate synthetic split"
)
LOSS_EVERY = 100  # iterations between the loss points kept in the manifest


class OverlapError(FashionsegError):
    """The pretraining split shares images with the study's splits: the study would evaluate on them."""


def image_hashes(data: DataConfig, show_progress: bool = True) -> dict[str, Path]:
    """SHA-256 of every image's decoded RGB pixels (and size) in ``data``'s train and val splits -> file."""
    hashes: dict[str, Path] = {}
    for split in SPLITS:
        folder = data.path(getattr(data, f"{split}_images"))
        files = sorted(folder.glob("*.png"))
        for path in tqdm(files, desc=f"hash {folder}", disable=not show_progress, dynamic_ncols=True):
            with Image.open(path) as image:
                pixels = np.asarray(image.convert("RGB"))
            digest = hashlib.sha256(str(pixels.shape).encode() + pixels.tobytes()).hexdigest()
            hashes.setdefault(digest, path)
    return hashes


def check_disjoint(pretrain: DataConfig, study: DataConfig, show_progress: bool = True) -> dict[str, int]:
    """Raise :class:`OverlapError` if any image of the pretraining splits is also in the study's splits
    (same decoded pixels); return the counts compared."""
    ours = image_hashes(pretrain, show_progress)
    theirs = image_hashes(study, show_progress)
    shared = sorted(ours.keys() & theirs.keys())
    if shared:
        first = shared[0]
        raise OverlapError(
            f"{len(shared)} pretraining image(s) also appear in the study's data, e.g. {ours[first]} = "
            f"{theirs[first]}; give the pretraining split another seed (-p data.synth_seed=...)"
        )
    return {"pretrain_images": len(ours), "study_images": len(theirs), "shared": 0}


def _loss_curve(run_dir: Path) -> list[dict[str, float]]:
    """Every ``LOSS_EVERY``-th line of the run's ``metrics.jsonl``: iteration, total loss, lr, seconds."""
    points = []
    for record in RunDir(run_dir).log():
        if record["iteration"] % LOSS_EVERY == 0:
            keep = ("iteration", "loss", "lr", "train_seconds")
            points.append({k: record[k] for k in keep})
    return points


def evaluate_designs(run_dir: Path, show_progress: bool = True) -> dict[str, dict[str, float]]:
    """Each design's val box and mask AP, with its own heads on the shared ResNet of a joint run's
    ``model_final.pt``: ``{arch: {"bbox_AP": .., "segm_AP": ..}}``."""
    run = RunDir(run_dir)
    cfg = run.config()
    final = checkpoint.load(run.model_file, required=("model", "labels"))
    labels = LabelSpace.from_dict(final["labels"])
    device = resolve_device(cfg.device)
    val = {}
    for arch in cfg.model.pretext_archs:
        # weights=none: the checkpoint fills every weight, the trunk file is not read
        model_cfg = dataclasses.replace(cfg.model, arch=arch, pretext_archs=(), weights="none")
        model = build_model(model_cfg, labels, min_size=cfg.data.min_size, max_size=cfg.data.max_size)
        model.load_state_dict(design_state(final["model"], arch))
        design_cfg = to_dict(dataclasses.replace(cfg, name=arch, model=model_cfg))
        predictor = Predictor(model, labels, design_cfg, device)
        metrics, *_ = runs.evaluate_predictor(predictor, cfg.data, "val", show_progress=show_progress)
        val[arch] = {"bbox_AP": metrics["bbox"]["coco"]["AP"], "segm_AP": metrics["segm"]["coco"]["AP"]}
    return val


def _initial_trunk(cfg: RunConfig, out: Path) -> dict[str, Any] | None:
    """The trunk the pretraining continues (``model.weights`` naming one): that value and the trunk's
    SHA-256, pretext and iterations, for the manifest; None when it starts from other weights. Refuses
    ``out`` as that trunk: a resumed run would read back its own result, and the manifest would record the
    wrong start."""
    if not is_trunk(cfg.model.weights):
        return None
    start = resolve_trunk_path(cfg.model.weights)
    if start.resolve() == Path(out).resolve():
        raise FashionsegError(
            f"pretrain: model.weights={cfg.model.weights} continues the trunk {start}, which is also the "
            "file to write; write the new trunk elsewhere (--out), or copy the starting trunk and its "
            "manifest and name the copy in model.weights"
        )
    manifest = read_manifest(start)
    keep = ("pretext", "iterations", "sha256")
    return {"weights": cfg.model.weights, **{k: manifest.get(k) for k in keep}}


def manifest_for(
    cfg: RunConfig,
    run_dir: Path,
    overlap: dict[str, int],
    val: dict[str, Any],
    initial_trunk: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What the trunk's manifest records, from the finished pretraining run in ``run_dir``. A joint run's
    ``val`` holds each design's APs (``{arch: {bbox_AP, segm_AP}}``); a single run's, its detector's."""
    run = RunDir(run_dir)
    env, last = run.env(), run.log()[-1]
    archs = cfg.model.pretext_archs
    if archs:
        pretext, design = JOINT_PRETEXT.format(designs=", ".join(archs)), {"designs": list(archs)}
        val = {arch: val[arch] for arch in archs}
    else:
        pretext, design = PRETEXT, {}
        val = {"bbox_AP": val["bbox"]["coco"]["AP"], "segm_AP": val["segm"]["coco"]["AP"]}
    start = {"initial_trunk": initial_trunk} if initial_trunk else {}
    return {
        "pretext": pretext,
        "arch": joint_run_name(archs) or cfg.model.arch,
        **design,
        **start,
        "depth": cfg.model.depth,
        "norm": cfg.model.norm,
        "stages": "stem, res2, res3, res4, res5 (torchvision ResNet names; no FPN or head weights)",
        "data": {
            "synth_seed": cfg.data.synth_seed,
            "synth_train": cfg.data.synth_train,
            "synth_val": cfg.data.synth_val,
            "synth_size": cfg.data.synth_size,
            "disjoint_from_study": overlap,
        },
        "iterations": last["iteration"],
        "train_seconds": last["train_seconds"],
        "cpu": env["cpu"],
        "cpu_threads": env["cpu_threads"],
        "torch": env["torch"],
        "git_commit": env["git_commit"],
        "training_code": env["training_code"],
        "val": val,
        "learning_curve": run.curve(),
        "loss_curve": _loss_curve(run_dir),
        "recipe": to_dict(cfg),
    }


def pretrain(
    cfg: RunConfig, out: Path, study_data: DataConfig, overwrite: bool = False, show_progress: bool = True
) -> dict[str, Any]:
    """Pretrain as ``cfg`` says (continuing a killed run), export its trunk to ``out``: the manifest."""
    if cfg.model.norm == "auto":
        raise FashionsegError("pretrain: set model.norm (gn, bn) explicitly: the manifest records it")
    initial_trunk = _initial_trunk(cfg, out)
    ensure_synthetic(cfg.data, show_progress)
    if study_data.synthetic:
        ensure_synthetic(study_data, show_progress)
    overlap = check_disjoint(cfg.data, study_data, show_progress)
    if not overwrite:
        refuse_to_overwrite(cfg)
    run_dir = train(cfg, resume=True, show_progress=show_progress, overwrite=overwrite)
    state = checkpoint.load(RunDir(run_dir).model_file)["model"]
    archs = cfg.model.pretext_archs
    if archs:
        val = evaluate_designs(run_dir, show_progress)
        trunk = joint_trunk_state(state, archs)
    else:
        val = runs.evaluate_run(run_dir, show_progress=show_progress)
        trunk = trunk_state(state, cfg.model.arch)
    return save_trunk(trunk, out, manifest_for(cfg, run_dir, overlap, val, initial_trunk))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--preset",
        "-f",
        default="pretrain_joint",
        help=(
            f"the pretext's preset ({', '.join(list_presets())}, or a YAML file); default pretrain_joint,"
            " the shipped trunk's last stage (make pretrain runs both)"
        ),
    )
    add_override_argument(parser)
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"the trunk file to write (default {TRUNK_FILE} in the project); the manifest goes beside it",
    )
    parser.add_argument(
        "--study-preset",
        default="demo",
        help="the study whose train and val images the pretraining split must not contain (demo)",
    )
    parser.add_argument(
        "--force", action="store_true", help="replace a finished pretraining run of another configuration"
    )
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")


def run(args: argparse.Namespace) -> int:
    import yaml

    from fashionseg.report.pretraining import pretext_ap_text

    cfg = load_config(args.preset, list(args.overrides))
    if args.print_config:
        print(yaml.safe_dump(to_dict(cfg), sort_keys=False))
        return 0
    out = args.out or project_root() / TRUNK_FILE
    manifest = pretrain(cfg, out, load_config(args.study_preset).data, overwrite=args.force)
    print(
        f"trunk {out} ({manifest['bytes'] / 1e6:.1f} MB, sha256 {manifest['sha256'][:12]}...): "
        f"{manifest['iterations']} iterations in {manifest['train_seconds'] / 60:.1f} min; the pretext's val "
        f"box / mask AP {pretext_ap_text(manifest['val'])}"
    )
    return 0
