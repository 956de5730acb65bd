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
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Sampler
from tqdm.auto import tqdm

from fashionseg import checkpoint, precision, runinfo
from fashionseg.allocator import keep_freed_memory
from fashionseg.config import (
    ARCHITECTURES,
    RunConfig,
    SolverConfig,
    add_override_argument,
    flatten,
    list_presets,
    load_config,
    project_root,
    save_config,
    to_dict,
)
from fashionseg.data.dataset import FashionpediaDataset, collate_fn
from fashionseg.data.ontology import LabelSpace
from fashionseg.data.synthetic import ensure_synthetic
from fashionseg.data.transforms import RandomHorizontalFlip, Resize
from fashionseg.distributed import DistInfo, barrier, init_from_env, resolve_device, shutdown
from fashionseg.errors import FashionsegError
from fashionseg.evaluation import runs
from fashionseg.models import build_model
from fashionseg.models.joint import JointPretextModel
from fashionseg.models.trunk import TRUNK_FILE, manifest_path, read_manifest
from fashionseg.precision import autocast_dtype
from fashionseg.predict import Predictor
from fashionseg.rundir import RunDir, curve_point


class NonFiniteLossError(FashionsegError):
    """Training produced a NaN or infinite loss; the message names the iteration and every loss term."""


def lr_factor(
    iteration: int,
    warmup_iters: int,
    warmup_factor: float,
    steps: tuple[int, ...],
    gamma: float,
    scheduler: str = "WarmupMultiStepLR",
    max_iter: int = 0,
) -> float:
    """detectron2's schedulers: linear warmup from ``warmup_factor`` to 1, then ``gamma`` per step
    (WarmupMultiStepLR) or half a cosine from 1 to 0 over ``max_iter`` (WarmupCosineLR)."""
    if scheduler == "WarmupCosineLR":
        decay = 0.5 * (1.0 + math.cos(math.pi * iteration / max_iter))
    else:
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


# the attribute head's module (models.roi_heads), whose parameters take solver.attribute_lr_factor
ATTRIBUTE_PREDICTOR = "roi_heads.attribute_predictor."


def _param_groups(model: torch.nn.Module, solver: SolverConfig) -> list[dict[str, Any]]:
    """detectron2's default: no weight decay on normalisation layers; the ResNet's weights (the pretrained
    trunk, when there is one) at ``solver.resnet_lr_factor`` times the heads' learning rate, the attribute
    predictor's at ``solver.attribute_lr_factor`` times it."""
    norm_types = (torch.nn.modules.batchnorm._BatchNorm, torch.nn.GroupNorm, torch.nn.LayerNorm)
    resnet_names = getattr(model, "resnet_parameter_names", frozenset())
    lr_factors = {"heads": 1.0, "resnet": solver.resnet_lr_factor, "attribute": solver.attribute_lr_factor}
    groups: dict[tuple[str, bool], list[torch.nn.Parameter]] = {
        (part, decays): [] for part in lr_factors for decays in (True, False)
    }
    seen: set[int] = set()
    for module_name, module in model.named_modules():
        for name, p in module.named_parameters(recurse=False):
            if not p.requires_grad or id(p) in seen:
                continue
            seen.add(id(p))
            full_name = f"{module_name}.{name}" if module_name else name
            if full_name in resnet_names:
                part = "resnet"
            elif full_name.startswith(ATTRIBUTE_PREDICTOR):
                part = "attribute"
            else:
                part = "heads"
            groups[(part, not isinstance(module, norm_types))].append(p)
    return [
        {
            "params": params,
            "weight_decay": solver.weight_decay if decays else 0.0,
            "lr": solver.lr * lr_factors[part],
        }
        for (part, decays), params in groups.items()
        if params
    ]


# the package's parts that decide what a training run produces (its weights, log, metrics.json and learning
# curve): a change to any of them makes a finished run stale (fashionseg study retrains it), a change
# elsewhere does not: the app, trends, book, the analyses of saved predictions (evaluation's per_image,
# bootstrap and attribute_groups, read by the notebooks after training), and the metric's two references,
# which the tests compare it with (evaluation's coco, pycocotools' own evaluator, and reference, its spec)
TRAINING_CODE = (
    "config.py",
    "allocator.py",
    "config_validation.py",
    "checkpoint.py",
    "precision.py",
    "distributed.py",
    "train.py",
    "rundir.py",
    "data",
    "models",
    "predict.py",
    "structures.py",
    "evaluation/__init__.py",
    "evaluation/params.py",
    "evaluation/instances.py",
    "evaluation/pairs.py",
    "evaluation/matching.py",
    "evaluation/curves.py",
    "evaluation/summary.py",
    "evaluation/fields.py",
    "evaluation/ground_truth.py",
    "evaluation/results.py",
    "evaluation/runs.py",
    "presets",
)


def training_code_hash() -> str:
    """SHA-256 over the source files of :data:`TRAINING_CODE` (paths and bytes, sorted) and the shipped
    trunk's SHA-256 (from its manifest, when there is one): the version of what decides training results,
    the same in every clone of one commit. A re-pretrained trunk makes the runs fine-tuned from it stale."""
    package = Path(__file__).parent
    digest = hashlib.sha256()
    for part in TRAINING_CODE:
        path = package / part
        files = sorted(path.rglob("*")) if path.is_dir() else [path]
        for f in files:
            if f.is_file() and f.suffix in (".py", ".yaml", ".json"):
                digest.update(f.relative_to(package).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    trunk_file = project_root() / TRUNK_FILE
    if manifest_path(trunk_file).is_file():
        digest.update(b"trunk\0" + read_manifest(trunk_file)["sha256"].encode())
    return digest.hexdigest()


def use_deterministic_algorithms() -> None:
    """torch's deterministic kernels (``cfg.deterministic``), without its filling of every new tensor.

    ``torch.use_deterministic_algorithms`` also sets ``torch.utils.deterministic.fill_uninitialized_memory``,
    which writes NaN into each tensor that ``torch.empty`` returns, so that a kernel reading memory it never
    wrote would read the same thing every run. Every kernel of the training step writes its whole output, so
    the fill changes no result (the study reproduces its committed results at tolerance 0 without it); it
    only costs a pass over memory per allocation, R50-DC5's 100M-weight box layer's gradient buffers among
    them: 1-6% of a bf16 step (an A/B in the README).
    """
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.utils.deterministic.fill_uninitialized_memory = False


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


def _trim_metrics_log(path: Path, upto_iteration: int) -> None:
    """After a resume, drop log lines of iterations that the restored checkpoint had not reached, and a
    last line torn by the kill."""
    if not path.exists():
        return
    lines = path.read_text().splitlines()
    if lines and not path.read_text().endswith("\n"):
        lines = lines[:-1]  # torn: the process died while appending it
    keep = [line for line in lines if line and json.loads(line)["iteration"] <= upto_iteration]
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
    keep_freed_memory()
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
    run = RunDir(cfg.run_dir)
    if not run.model_file.is_file() or not run.config_file.is_file():
        return
    try:
        stored = dict(flatten(to_dict(run.config())))
    except FashionsegError:
        stored = {}
    wanted = dict(flatten(to_dict(cfg)))
    changed = [k for k in sorted(wanted.keys() | stored.keys()) if stored.get(k) != wanted.get(k)]
    if changed:
        shown = ", ".join(f"{k} {stored.get(k)!r} -> {wanted.get(k)!r}" for k in changed[:4])
        more = f" and {len(changed) - 4} more" if len(changed) > 4 else ""
        raise FashionsegError(
            f"{run.path} holds a finished run of another configuration ({shown}{more}); train into another "
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
    run = RunDir(cfg.run_dir)
    run_dir, last_ckpt = run.path, run.last_checkpoint
    if info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        if cfg.data.synthetic:
            ensure_synthetic(cfg.data)
    barrier(info)

    torch.manual_seed(cfg.seed + info.rank)
    if cfg.deterministic and device.type == "cpu":
        use_deterministic_algorithms()

    dataset = build_train_dataset(cfg)
    labels = dataset.labels
    model = build_train_model(cfg, labels).to(device)
    optimizer, scheduler, scaler = build_optimizer(model, solver, device)
    if info.is_main and show_progress:
        print(precision.describe(device, solver.amp))

    start_iter, train_seconds = 0, 0.0
    if resume and last_ckpt.exists():
        start_iter, train_seconds = _restore(last_ckpt, model, optimizer, scheduler, scaler, info)
    elif resume and info.is_main:
        print(f"resume: no checkpoint at {last_ckpt}; starting from iteration 0")

    metrics_log = run.log_file
    if info.is_main:
        _start_run_files(cfg, device, info, start_iter)

    train_model = model
    if info.enabled:
        train_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    loader = build_train_loader(dataset, cfg, start_iter, info, device)

    model.train()
    progress = tqdm(
        total=solver.max_iter,
        initial=start_iter,
        desc=f"train {cfg.name}",
        disable=not (show_progress and info.is_main),
        dynamic_ncols=True,
    )
    batches = iter(loader)
    flip = RandomHorizontalFlip(cfg.data.hflip_prob)
    log_period = max(1, min(20, solver.max_iter // 50))
    tic, logged_iter = time.perf_counter(), start_iter
    for iteration in range(start_iter, solver.max_iter):
        images, targets = next(batches)
        total_loss, loss_values, lr = _train_step(
            train_model, model, images, targets, flip, solver, device, optimizer, scheduler, scaler, iteration
        )

        done = iteration + 1
        if info.is_main:
            progress.update(1)
            progress.set_postfix(loss=f"{total_loss:.3f}", lr=f"{lr:.2g}", refresh=False)
            if done % log_period == 0 or done == solver.max_iter:
                toc = time.perf_counter()
                seconds = (toc - tic) / (done - logged_iter)
                train_seconds += toc - tic
                tic, logged_iter = toc, done
                _log_iteration(metrics_log, done, total_loss, loss_values, lr, seconds, train_seconds)
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
        checkpoint.save_atomic(final, run.model_file)
    barrier(info)
    return run_dir


def build_train_model(cfg: RunConfig, labels: LabelSpace) -> torch.nn.Module:
    """The detector ``cfg.model`` describes, or, when ``model.pretext_archs`` lists designs, those designs on
    one shared ResNet (:class:`~fashionseg.models.joint.JointPretextModel`, the pretext of ``pretrain``)."""
    size = {"min_size": cfg.data.min_size, "max_size": cfg.data.max_size}
    if cfg.model.pretext_archs:
        return JointPretextModel(cfg.model, labels, **size)
    return build_model(cfg.model, labels, **size)


def build_optimizer(
    model: torch.nn.Module, solver: SolverConfig, device: torch.device
) -> tuple[torch.optim.SGD, torch.optim.lr_scheduler.LambdaLR, torch.amp.GradScaler]:
    """SGD with momentum (no weight decay on norm layers), the warmup + multi-step schedule and the
    float16 loss scaler (disabled unless autocast runs in float16)."""
    # fused: one pass over each tensor instead of four; on the CPU the default per-tensor loop took 1.3 s of
    # R50-DC5's step (172M weights) against 0.06 s fused (measured here)
    optimizer = torch.optim.SGD(
        _param_groups(model, solver),
        lr=solver.lr,
        momentum=solver.momentum,
        fused=device.type in ("cpu", "cuda"),
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda it: lr_factor(
            it,
            solver.warmup_iters,
            solver.warmup_factor,
            solver.steps,
            solver.gamma,
            solver.lr_scheduler,
            solver.max_iter,
        ),
    )
    # float16 needs loss scaling; bfloat16 (the CPU's autocast dtype) has float32's range and does not
    scaler = torch.amp.GradScaler("cuda", enabled=autocast_dtype(device, solver.amp) == torch.float16)
    return optimizer, scheduler, scaler


def _restore(path: Path, model, optimizer, scheduler, scaler, info: DistInfo) -> tuple[int, float]:
    """Load the training state of ``path`` (this process's RNG state included): (iteration, train seconds)."""
    state = checkpoint.load(path, required=("model", "optimizer", "scheduler", "iteration", "rng"))
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    scaler.load_state_dict(state["scaler"])
    checkpoint.set_rng_state(state["rng"][info.rank] if isinstance(state["rng"], list) else state["rng"])
    return int(state["iteration"]), float(state.get("train_seconds", 0.0))


def _start_run_files(cfg: RunConfig, device: torch.device, info: DistInfo, start_iter: int) -> None:
    """Write ``config.yaml`` and ``env.json``; cut the logs back to ``start_iter`` (a fresh run: delete)."""
    run = RunDir(cfg.run_dir)
    save_config(cfg, run.config_file)
    env = runinfo.environment(device, cfg, info.world_size, training_code_hash())
    checkpoint.write_text_atomic(run.env_file, json.dumps(env, indent=2))
    for log in (run.log_file, run.curve_file):
        if start_iter:
            _trim_metrics_log(log, start_iter)
        else:
            log.unlink(missing_ok=True)


def build_train_loader(
    dataset: FashionpediaDataset, cfg: RunConfig, start_iter: int, info: DistInfo, device: torch.device
) -> DataLoader:
    """This process's batches from iteration ``start_iter`` on (see :class:`TrainingSampler`)."""
    batch_per_rank = cfg.solver.ims_per_batch // info.world_size
    sampler = TrainingSampler(len(dataset), batch_per_rank, cfg.seed, start_iter, info.rank, info.world_size)
    return DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=cfg.data.num_workers,
        collate_fn=collate_fn,
        pin_memory=device.type == "cuda",
        persistent_workers=cfg.data.num_workers > 0,
        # the loader draws its workers' base seed when an iterator starts: from its own generator, so
        # that a resumed run does not shift the global generator the flip and the model sample from
        generator=torch.Generator().manual_seed(cfg.seed + info.rank),
    )


def _train_step(
    train_model: torch.nn.Module,
    model: torch.nn.Module,
    images: list[torch.Tensor],
    targets: list[dict[str, Any]],
    flip: RandomHorizontalFlip,
    solver: SolverConfig,
    device: torch.device,
    optimizer,
    scheduler,
    scaler,
    iteration: int,
) -> tuple[float, dict[str, float], float]:
    """One SGD iteration on a batch, flipped here (from the global generator, see the module docstring):
    (total loss, loss terms, the learning rate it stepped with). A non-finite loss raises
    :class:`NonFiniteLossError` before the step."""
    flipped = [flip(image, target) for image, target in zip(images, targets, strict=True)]
    images = [image.to(device, non_blocking=True) for image, _ in flipped]
    targets = [
        {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in target.items()}
        for _, target in flipped
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
    return total_loss, loss_values, lr


def _log_iteration(
    path: Path,
    iteration: int,
    total_loss: float,
    loss_values: dict[str, float],
    lr: float,
    seconds: float,
    train_seconds: float,
) -> None:
    """Append the line of ``iteration`` to ``metrics.jsonl`` (``seconds`` per iteration since the last
    line, ``train_seconds`` in all). Appended, not rewritten (a 90k-iteration log stays cheap): a kill can
    tear the last line, which :func:`_trim_metrics_log` drops on resume."""
    record = {
        "iteration": iteration,
        "loss": total_loss,
        **loss_values,
        "lr": lr,
        "time": seconds,
        "train_seconds": round(train_seconds, 3),
    }
    with path.open("a") as f:
        f.write(json.dumps(record) + "\n")


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
    rng = checkpoint.rng_state()
    tic = time.perf_counter()
    model.eval()
    try:
        predictor = Predictor(model, labels, to_dict(cfg), device)
        metrics, *_ = runs.evaluate_predictor(
            predictor, cfg.data, "val", max_images=cfg.solver.eval_images, show_progress=False
        )
    finally:
        model.train()
        checkpoint.set_rng_state(rng)
    point = {
        **curve_point(iteration, train_seconds, metrics),
        "eval_seconds": round(time.perf_counter() - tic, 2),
    }
    runs.write_curve_point(run_dir, point)
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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--preset",
        "-f",
        default="demo",
        help=f"preset name ({', '.join(list_presets())}) or a YAML file path",
    )
    parser.add_argument(
        "--arch",
        choices=ARCHITECTURES,
        help="R50-FPN, R50-C4 or R50-DC5 (= -p model.arch=...; the run is named after it)",
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
    if cfg.model.pretext_archs:
        print(
            "a joint pretext run: `fashionseg pretrain` evaluates each design and exports the shared ResNet"
        )
        return 0
    if not args.no_eval and int(os.environ.get("RANK", "0")) == 0:
        metrics = runs.evaluate_run(run_dir)
        print(
            f"val: box AP {metrics['bbox']['coco']['AP']:.1f}, mask AP {metrics['segm']['coco']['AP']:.1f}; "
            f"written to {RunDir(run_dir).metrics_file}"
        )
    return 0
