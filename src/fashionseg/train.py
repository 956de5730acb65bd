"""Training: detectron2's schedule on a torchvision model, exact resume, one code path for 1..N processes.

``train(cfg)`` runs SGD (momentum, weight decay, none on norm layers) with linear warmup and multi-step
decay; the learning rate is ``base_lr`` scaled by ``ims_per_batch / reference_batch``. Under ``torchrun`` the
same loop runs with DistributedDataParallel (NCCL on GPUs, gloo on the CPU); ``ims_per_batch`` is the total
over all processes.

Exact resume: every random draw of the loop (the flip augmentation and the model's RPN/RoI sampling) comes
from the main process's global torch generator, whose state is saved with each checkpoint; the data order is
a pure function of (seed, iteration); data-loader workers only decode and resize, which is deterministic. A
run killed at any point and resumed with ``resume=True`` therefore ends with the same weights as a run that
was never interrupted (on the CPU; cuDNN kernels are not bit-deterministic).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler
from tqdm.auto import tqdm

from fashionseg import checkpoint, precision
from fashionseg.config import (
    RunConfig,
    add_override_argument,
    flatten,
    list_presets,
    load_config,
    read_config,
    save_config,
    to_dict,
)
from fashionseg.data.dataset import FashionpediaDataset
from fashionseg.data.synthetic import ensure_synthetic
from fashionseg.data.transforms import Resize
from fashionseg.distributed import DistInfo, barrier, init_from_env, resolve_device, shutdown
from fashionseg.errors import FashionsegError
from fashionseg.models import build_model
from fashionseg.precision import autocast_dtype


class NonFiniteLossError(FashionsegError):
    """Training produced a NaN or infinite loss; the message names the iteration and every loss term."""


def lr_factor(
    iteration: int, warmup_iters: int, warmup_factor: float, steps: tuple[int, ...], gamma: float
) -> float:
    """detectron2's WarmupMultiStepLR: linear warmup from ``warmup_factor`` to 1, then ``gamma`` per step."""
    decay = gamma ** sum(iteration >= s for s in steps)
    if iteration >= warmup_iters:
        return decay
    alpha = iteration / warmup_iters
    return decay * (warmup_factor * (1 - alpha) + alpha)


class TrainingSampler(Sampler[list[int]]):
    """An endless stream of batches whose content depends only on (seed, iteration, rank).

    Each pass over the dataset is a fresh permutation seeded by ``seed + pass``; process ``rank`` of
    ``world_size`` takes every ``world_size``-th index, so the processes see disjoint shards.
    """

    def __init__(
        self,
        size: int,
        batch_per_rank: int,
        seed: int,
        start_iter: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ):
        if size == 0:
            raise FashionsegError("the training set is empty: nothing to train on")
        self.size, self.batch, self.seed = size, batch_per_rank, seed
        self.start_iter, self.rank, self.world_size = start_iter, rank, world_size

    def _indices(self) -> Iterator[int]:
        epoch = 0
        while True:
            g = torch.Generator().manual_seed(self.seed + epoch)
            yield from torch.randperm(self.size, generator=g).tolist()
            epoch += 1

    def __iter__(self) -> Iterator[list[int]]:
        stream = self._indices()
        per_iter = self.batch * self.world_size
        for _ in range(self.start_iter * per_iter):
            next(stream)
        while True:
            chunk = [next(stream) for _ in range(per_iter)]
            yield chunk[self.rank :: self.world_size]


def _param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """detectron2's default: no weight decay on normalisation layers."""
    norm_types = (torch.nn.modules.batchnorm._BatchNorm, torch.nn.GroupNorm, torch.nn.LayerNorm)
    decay, no_decay, seen = [], [], set()
    for module in model.modules():
        for p in module.parameters(recurse=False):
            if not p.requires_grad or id(p) in seen:
                continue
            seen.add(id(p))
            (no_decay if isinstance(module, norm_types) else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


# the package's parts that decide what a training run produces: a change to any of them makes a finished
# run stale (fashionseg study retrains it), a change elsewhere (app, trends, book) does not
TRAINING_CODE = (
    "config.py",
    "checkpoint.py",
    "precision.py",
    "train.py",
    "data",
    "models",
    "evaluation",
    "presets",
)


def training_code_hash() -> str:
    """SHA-256 over the source files of :data:`TRAINING_CODE` (paths and bytes, sorted): the code's
    version as far as training results go, the same in every clone of one commit."""
    package = Path(__file__).parent
    digest = hashlib.sha256()
    for part in TRAINING_CODE:
        path = package / part
        files = sorted(path.rglob("*")) if path.is_dir() else [path]
        for f in files:
            if f.is_file() and f.suffix in (".py", ".yaml", ".json"):
                digest.update(f.relative_to(package).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return digest.hexdigest()


def environment(device: torch.device, cfg: RunConfig, world_size: int) -> dict[str, Any]:
    """What ran this: versions, device, CPU kind, seed, host and commit (written as ``env.json``)."""
    import torchvision

    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=Path(__file__).parent
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "host": socket.gethostname(),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor(),
        "cpu": precision.cpu_kind(),
        "cpu_threads": torch.get_num_threads(),
        "world_size": world_size,
        "seed": cfg.seed,
        "git_commit": commit or None,
        "training_code": training_code_hash(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def build_train_dataset(cfg: RunConfig) -> FashionpediaDataset:
    """The training split with its resize transform (the flip happens in the loop; see module docstring)."""
    return FashionpediaDataset(
        cfg.data.path(cfg.data.train_annotations),
        cfg.data.path(cfg.data.train_images),
        transforms=Resize(cfg.data.min_size, cfg.data.max_size),
        skip_bad=cfg.data.skip_bad,
        max_images=cfg.data.max_images,
        categories=cfg.data.categories,
    )


def _flip(images: list[torch.Tensor], targets: list[dict[str, Any]], prob: float) -> None:
    """Horizontal flip in place, drawn from the global torch generator (saved in checkpoints)."""
    for i, (image, target) in enumerate(zip(images, targets, strict=True)):
        if prob <= 0 or torch.rand(()) >= prob:
            continue
        width = image.shape[-1]
        images[i] = image.flip(-1)
        if "masks" in target:
            target["masks"] = target["masks"].flip(-1)
        boxes = target["boxes"].clone()
        boxes[:, 0], boxes[:, 2] = width - target["boxes"][:, 2], width - target["boxes"][:, 0]
        target["boxes"] = boxes


def _trim_metrics_log(path: Path, upto_iteration: int) -> None:
    """After a resume, drop log lines of iterations that the restored checkpoint had not reached."""
    if not path.exists():
        return
    keep = [
        line
        for line in path.read_text().splitlines()
        if line and json.loads(line)["iteration"] <= upto_iteration
    ]
    checkpoint.write_text_atomic(path, "".join(line + "\n" for line in keep))


def train(cfg: RunConfig, resume: bool = False, show_progress: bool = True, overwrite: bool = False) -> Path:
    """Train one model as ``cfg`` describes; return its run folder (``cfg.output_dir / cfg.name``).

    Writes ``config.yaml``, ``env.json``, ``metrics.jsonl``, ``checkpoints/last.pt`` (every
    ``solver.checkpoint_period`` iterations) and ``model_final.pt``. With ``resume=True`` it continues from
    ``checkpoints/last.pt`` when one exists. A finished run of another configuration in the folder is
    replaced only with ``overwrite=True`` (or ``resume=True``, which continues it under ``cfg``).
    """
    if not (resume or overwrite):
        refuse_to_overwrite(cfg)
    device_type = (
        "cuda"
        if cfg.device.startswith("cuda") or (cfg.device == "auto" and torch.cuda.is_available())
        else "cpu"
    )
    info = init_from_env(device_type)
    try:
        return _train(cfg, resume, show_progress, info)
    finally:
        shutdown(info)


def refuse_to_overwrite(cfg: RunConfig) -> None:
    """Raise if ``cfg.run_dir`` holds a finished run (``model_final.pt``) of another configuration."""
    run_dir = cfg.run_dir
    if not (run_dir / "model_final.pt").is_file() or not (run_dir / "config.yaml").is_file():
        return
    try:
        stored = dict(flatten(to_dict(read_config(run_dir / "config.yaml"))))
    except FashionsegError:
        stored = {}
    wanted = dict(flatten(to_dict(cfg)))
    changed = [k for k in sorted(wanted.keys() | stored.keys()) if stored.get(k) != wanted.get(k)]
    if changed:
        shown = ", ".join(f"{k} {stored.get(k)!r} -> {wanted.get(k)!r}" for k in changed[:4])
        more = f" and {len(changed) - 4} more" if len(changed) > 4 else ""
        raise FashionsegError(
            f"{run_dir} holds a finished run of another configuration ({shown}{more}); train into another "
            "folder (-p output_dir=... or -p name=...; `fashionseg study --results DIR`), or replace it "
            "with --force (`fashionseg train`, `fashionseg study`; overwrite=True in 02_train_backbone)"
        )


def _train(cfg: RunConfig, resume: bool, show_progress: bool, info: DistInfo) -> Path:
    device = resolve_device(cfg.device, info.local_rank)
    solver = cfg.solver
    if solver.ims_per_batch % info.world_size:
        raise FashionsegError(
            f"solver.ims_per_batch={solver.ims_per_batch} must be divisible by the number of processes "
            f"({info.world_size})"
        )
    run_dir = cfg.run_dir
    last_ckpt = run_dir / "checkpoints" / "last.pt"
    if info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        if cfg.data.synthetic:
            ensure_synthetic(cfg.data)
    barrier(info)

    torch.manual_seed(cfg.seed + info.rank)
    if cfg.deterministic and device.type == "cpu":
        torch.use_deterministic_algorithms(True, warn_only=True)

    dataset = build_train_dataset(cfg)
    labels = dataset.labels
    model = build_model(cfg.model, labels, min_size=cfg.data.min_size, max_size=cfg.data.max_size).to(device)
    # fused: one pass over each tensor instead of four; on the CPU the default per-tensor loop took 1.3 s of
    # R50-DC5's step (172M weights) against 0.06 s fused (measured here)
    optimizer = torch.optim.SGD(
        _param_groups(model, solver.weight_decay),
        lr=solver.lr,
        momentum=solver.momentum,
        fused=device.type in ("cpu", "cuda"),
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda it: lr_factor(it, solver.warmup_iters, solver.warmup_factor, solver.steps, solver.gamma),
    )
    # float16 needs loss scaling; bfloat16 (the CPU's autocast dtype) has float32's range and does not
    scaler = torch.amp.GradScaler("cuda", enabled=autocast_dtype(device, solver.amp) == torch.float16)
    if info.is_main and show_progress:
        print(precision.describe(device, solver.amp))

    start_iter, train_seconds = 0, 0.0
    if resume and last_ckpt.exists():
        state = checkpoint.load(last_ckpt, required=("model", "optimizer", "scheduler", "iteration", "rng"))
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        start_iter = int(state["iteration"])
        train_seconds = float(state.get("train_seconds", 0.0))
        checkpoint.set_rng_state(state["rng"][info.rank] if isinstance(state["rng"], list) else state["rng"])
    elif resume and info.is_main:
        print(f"resume: no checkpoint at {last_ckpt}; starting from iteration 0")

    metrics_log = run_dir / "metrics.jsonl"
    if info.is_main:
        save_config(cfg, run_dir / "config.yaml")
        env = json.dumps(environment(device, cfg, info.world_size), indent=2)
        checkpoint.write_text_atomic(run_dir / "env.json", env)
        if start_iter:
            _trim_metrics_log(metrics_log, start_iter)
            _trim_metrics_log(run_dir / LEARNING_CURVE, start_iter)
        else:
            metrics_log.unlink(missing_ok=True)
            (run_dir / LEARNING_CURVE).unlink(missing_ok=True)

    train_model = model
    if info.enabled:
        train_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )

    batch_per_rank = solver.ims_per_batch // info.world_size
    sampler = TrainingSampler(len(dataset), batch_per_rank, cfg.seed, start_iter, info.rank, info.world_size)
    loader = DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=cfg.data.num_workers,
        collate_fn=lambda batch: tuple(zip(*batch, strict=True)),
        pin_memory=device.type == "cuda",
        persistent_workers=cfg.data.num_workers > 0,
        # the loader draws its workers' base seed when an iterator starts: from its own generator, so
        # that a resumed run does not shift the global generator the flip and the model sample from
        generator=torch.Generator().manual_seed(cfg.seed + info.rank),
    )

    model.train()
    progress = tqdm(
        total=solver.max_iter,
        initial=start_iter,
        desc=f"train {cfg.name}",
        disable=not (show_progress and info.is_main),
        dynamic_ncols=True,
    )
    batches = iter(loader)
    log_period = max(1, min(20, solver.max_iter // 50))
    tic, logged_iter = time.perf_counter(), start_iter
    for iteration in range(start_iter, solver.max_iter):
        images, targets = next(batches)
        images, targets = list(images), [dict(t) for t in targets]
        _flip(images, targets, cfg.data.hflip_prob)
        images = [im.to(device, non_blocking=True) for im in images]
        targets = [
            {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in t.items()}
            for t in targets
        ]

        with precision.autocast(device, solver.amp):
            loss_dict = train_model(images, targets)
        losses = sum(v.float() for v in loss_dict.values())
        loss_values = {k: float(v.detach()) for k, v in loss_dict.items()}
        total_loss = float(losses.detach())
        if not math.isfinite(total_loss):
            raise NonFiniteLossError(
                f"non-finite loss at iteration {iteration}: "
                + ", ".join(f"{k}={v:.4g}" for k, v in loss_values.items())
                + f" (lr={scheduler.get_last_lr()[0]:.4g}). Lower solver.base_lr, raise solver.warmup_iters, "
                "or set solver.clip_grad_norm."
            )
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(losses).backward()
        if solver.clip_grad_norm:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), solver.clip_grad_norm)
        scaler.step(optimizer)
        scaler.update()
        lr = scheduler.get_last_lr()[0]
        scheduler.step()

        done = iteration + 1
        if info.is_main:
            progress.update(1)
            progress.set_postfix(loss=f"{total_loss:.3f}", lr=f"{lr:.2g}", refresh=False)
            if done % log_period == 0 or done == solver.max_iter:
                toc = time.perf_counter()
                seconds = (toc - tic) / (done - logged_iter)
                train_seconds += toc - tic
                tic, logged_iter = toc, done
                record = {
                    "iteration": done,
                    "loss": total_loss,
                    **loss_values,
                    "lr": lr,
                    "time": seconds,
                    "train_seconds": round(train_seconds, 3),
                }
                with metrics_log.open("a") as f:
                    f.write(json.dumps(record) + "\n")
        if solver.eval_period and done % solver.eval_period == 0 and done < solver.max_iter:
            # the final point comes from evaluate_run; the clock restarts after, so evaluating is not
            # counted as training time
            pause = time.perf_counter()
            if info.is_main:
                elapsed = train_seconds + pause - tic
                _evaluate_during_training(model, labels, cfg, device, done, elapsed, run_dir)
            barrier(info)
            tic += time.perf_counter() - pause
        if done % solver.checkpoint_period == 0 or done == solver.max_iter:
            elapsed = train_seconds + time.perf_counter() - tic
            _save_training_state(last_ckpt, model, optimizer, scheduler, scaler, done, info, elapsed)
    progress.close()

    if info.is_main:
        final = {"model": model.state_dict(), "labels": labels.to_dict(), "config": to_dict(cfg)}
        checkpoint.save_atomic(final, run_dir / "model_final.pt")
    barrier(info)
    return run_dir


def _evaluate_during_training(
    model: torch.nn.Module,
    labels: Any,
    cfg: RunConfig,
    device: torch.device,
    iteration: int,
    train_seconds: float,
    run_dir: Path,
) -> None:
    """One learning-curve point: box and mask AP of the current weights on ``solver.eval_images`` val
    images. Eval mode draws no random numbers, and the RNG state is restored anyway (exact resume)."""
    from fashionseg.predict import Predictor

    rng = checkpoint.rng_state()
    tic = time.perf_counter()
    model.eval()
    try:
        predictor = Predictor(model, labels, to_dict(cfg), device)
        metrics, *_ = evaluate_predictor(
            predictor, cfg.data, "val", max_images=cfg.solver.eval_images, show_progress=False
        )
    finally:
        model.train()
        checkpoint.set_rng_state(rng)
    point = {
        **curve_point(iteration, train_seconds, metrics),
        "eval_seconds": round(time.perf_counter() - tic, 2),
    }
    _write_curve_point(run_dir, point)
    tqdm.write(
        f"iteration {iteration}: val box AP {point.get('bbox_AP', float('nan')):.1f}, "
        f"mask AP {point.get('segm_AP', float('nan')):.1f}"
    )


def _save_training_state(
    path: Path,
    model,
    optimizer,
    scheduler,
    scaler,
    iteration: int,
    info: DistInfo,
    train_seconds: float = 0.0,
) -> None:
    """Checkpoint with every process's RNG state (gathered to rank 0, which writes the file)."""
    rng = checkpoint.rng_state()
    if info.enabled:
        gathered: list[Any] = [None] * info.world_size
        torch.distributed.all_gather_object(gathered, rng)
        rng = gathered
    if info.is_main:
        state = {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict(),
            "iteration": iteration,
            "train_seconds": train_seconds,
            "rng": rng,
        }
        checkpoint.save_atomic(state, path)
    barrier(info)


def evaluate_predictor(
    predictor: Any,
    data_cfg: Any,
    split: str = "val",
    batch_size: int = 4,
    max_images: int | None = None,
    show_progress: bool = True,
    iou_types: tuple[str, ...] = ("bbox", "segm"),
) -> tuple[dict[str, Any], list[dict[str, Any]], float, int]:
    """Predict a split with ``predictor`` and evaluate it: (metrics, COCO results, model seconds, images).

    The ground truth is cut to the predictor's categories and to the first ``max_images`` images.
    """
    from fashionseg.data.images import read_image
    from fashionseg.evaluation import evaluate

    annotations = data_cfg.path(getattr(data_cfg, f"{split}_annotations"))
    images_dir = data_cfg.path(getattr(data_cfg, f"{split}_images"))
    gt = json.loads(annotations.read_text())
    images = gt["images"][:max_images] if max_images else gt["images"]
    keep_cats = set(predictor.labels.category_ids)
    keep_imgs = {im["id"] for im in images}
    gt = {
        **gt,
        "images": images,
        "categories": [c for c in gt["categories"] if c["id"] in keep_cats],
        "annotations": [
            a for a in gt["annotations"] if a["image_id"] in keep_imgs and a["category_id"] in keep_cats
        ],
    }
    results: list[dict[str, Any]] = []
    model_seconds = 0.0
    for start in tqdm(
        range(0, len(images), batch_size),
        desc=f"predict {split}",
        disable=not show_progress,
        dynamic_ncols=True,
        leave=False,
    ):
        batch = images[start : start + batch_size]
        pil_images = [read_image(images_dir / im["file_name"]) for im in batch]
        tic = time.perf_counter()
        preds = predictor.predict(pil_images, batch_size=batch_size)
        model_seconds += time.perf_counter() - tic
        for im, pred in zip(batch, preds, strict=True):
            results += predictor.to_coco_results(pred, im["id"])
    metrics = evaluate(gt, results, iou_types=iou_types, show_progress=False)
    return metrics, results, model_seconds, len(images)


LEARNING_CURVE = "learning_curve.jsonl"


def curve_point(iteration: int, train_seconds: float, metrics: dict[str, Any]) -> dict[str, Any]:
    """One line of ``learning_curve.jsonl``: validation AP after ``iteration`` iterations and
    ``train_seconds`` of training (evaluation time excluded)."""
    point: dict[str, Any] = {"iteration": iteration, "train_seconds": round(train_seconds, 2)}
    for iou_type in ("bbox", "segm"):
        coco = metrics.get(iou_type, {}).get("coco", {})
        for key in ("AP", "AP50", "AP75"):
            if key in coco:
                point[f"{iou_type}_{key}"] = coco[key]
        iou_f1 = metrics.get(iou_type, {}).get("iou_f1", {})
        if "AP" in iou_f1:
            point[f"{iou_type}_AP_iou_f1"] = iou_f1["AP"]
    return point


def _write_curve_point(run_dir: Path, point: dict[str, Any]) -> None:
    """Add (or replace) the learning-curve point of ``point['iteration']``, keeping the file sorted."""
    path = run_dir / LEARNING_CURVE
    points = [json.loads(line) for line in path.read_text().splitlines() if line] if path.exists() else []
    points = sorted(
        [p for p in points if p["iteration"] != point["iteration"]] + [point], key=lambda p: p["iteration"]
    )
    checkpoint.write_text_atomic(path, "".join(json.dumps(p) + "\n" for p in points))


def evaluate_run(
    run_dir: str | Path,
    split: str = "val",
    batch_size: int = 4,
    max_images: int | None = None,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Predict on a split with ``model_final.pt``; write ``predictions_<split>.json`` and ``metrics.json``.

    Returns the metrics dict (layout in ARCHITECTURE.md) with a ``speed`` entry: the median training
    seconds per iteration from ``metrics.jsonl`` and the model's inference milliseconds per image. The
    result is also the last point of the run's learning curve (``learning_curve.jsonl``).
    """
    from fashionseg.predict import Predictor

    run_dir = Path(run_dir)
    cfg = read_config(run_dir / "config.yaml")
    predictor = Predictor.from_checkpoint(run_dir / "model_final.pt", device=cfg.device)
    metrics, results, model_seconds, n_images = evaluate_predictor(
        predictor, cfg.data, split, batch_size, max_images, show_progress
    )
    checkpoint.write_text_atomic(run_dir / f"predictions_{split}.json", json.dumps(results))
    log = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line]
    times = [r["time"] for r in log]
    metrics["speed"] = {
        "train_s_per_iter": float(np.median(times[1:] if len(times) > 1 else times)) if times else None,
        "inference_ms_per_image": 1000 * model_seconds / max(1, n_images),
        "device": str(predictor.device),
        "images": n_images,
    }
    checkpoint.write_text_atomic(run_dir / "metrics.json", json.dumps(metrics, indent=1))
    if split == "val" and log and log[-1]["iteration"] == cfg.solver.max_iter:
        _write_curve_point(
            run_dir, curve_point(cfg.solver.max_iter, log[-1].get("train_seconds", 0.0), metrics)
        )
    return metrics


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--preset",
        "-f",
        default="demo",
        help=f"preset name ({', '.join(list_presets())}) or a YAML file path",
    )
    parser.add_argument(
        "--arch", help="R50-FPN, R50-C4 or R50-DC5 (= -p model.arch=...; the run is named after it)"
    )
    add_override_argument(parser)
    parser.add_argument("--resume", action="store_true", help="continue from RUN/checkpoints/last.pt")
    parser.add_argument(
        "--force", action="store_true", help="replace a finished run of another configuration in RUN"
    )
    parser.add_argument("--no-eval", action="store_true", help="skip the evaluation on the val split")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and exit")


def run(args: argparse.Namespace) -> int:
    overrides = list(args.overrides)
    if args.arch:
        overrides.append(f"model.arch={args.arch}")
    cfg = load_config(args.preset, overrides)
    if args.print_config:
        import yaml

        print(yaml.safe_dump(to_dict(cfg), sort_keys=False))
        return 0
    run_dir = train(cfg, resume=args.resume, overwrite=args.force)
    print(f"trained {cfg.name}: {run_dir}")
    if not args.no_eval and int(os.environ.get("RANK", "0")) == 0:
        metrics = evaluate_run(run_dir)
        print(
            f"val: box AP {metrics['bbox']['coco']['AP']:.1f}, mask AP {metrics['segm']['coco']['AP']:.1f}; "
            f"written to {run_dir / 'metrics.json'}"
        )
    return 0
