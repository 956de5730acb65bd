"""Training engine: schedule, data order, exact resume after SIGKILL, torchrun with gloo, learning."""

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from support import tiny_overrides, torchrun_launcher

from fashionseg import train as train_module
from fashionseg.checkpoint import load
from fashionseg.config import load_config
from fashionseg.data.ontology import LabelSpace, ontology_json
from fashionseg.errors import FashionsegError
from fashionseg.evaluation.runs import evaluate_run
from fashionseg.models import build_model
from fashionseg.train import NonFiniteLossError, TrainingSampler, lr_factor, train


def test_lr_factor_warms_up_then_steps():
    assert lr_factor(0, 10, 0.001, (20, 30), 0.1) == pytest.approx(0.001)
    assert lr_factor(5, 10, 0.001, (20, 30), 0.1) == pytest.approx(0.001 * 0.5 + 0.5)
    assert lr_factor(10, 10, 0.001, (20, 30), 0.1) == pytest.approx(1.0)
    assert lr_factor(25, 10, 0.001, (20, 30), 0.1) == pytest.approx(0.1)
    assert lr_factor(30, 10, 0.001, (20, 30), 0.1) == pytest.approx(0.01)


def test_cosine_lr_factor_warms_up_then_falls_to_zero_at_max_iter():
    def cosine(it):
        return lr_factor(it, 10, 0.001, (20, 30), 0.1, "WarmupCosineLR", 100)

    assert cosine(0) == pytest.approx(0.001)
    assert cosine(10) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.1)))
    assert cosine(50) == pytest.approx(0.5)  # steps and gamma play no part
    assert cosine(100) == pytest.approx(0.0, abs=1e-12)
    assert all(cosine(i) > cosine(i + 1) for i in range(10, 99))


@pytest.mark.parametrize("arch", ["R50-C4", "R50-DC5"])
def test_the_resnet_learns_at_its_lr_factor_and_the_heads_at_lr(arch):
    cfg = load_config(
        "demo",
        [
            f"model.arch={arch}",
            "model.weights=none",
            "solver.resnet_lr_factor=0.25",
            "solver.attribute_lr_factor=1",
        ],
    )
    model = build_model(cfg.model, LabelSpace.from_coco(ontology_json()), min_size=96, max_size=128)
    optimizer, _, _ = train_module.build_optimizer(model, cfg.solver, torch.device("cpu"))
    lr_of = {id(p): group["initial_lr"] for group in optimizer.param_groups for p in group["params"]}
    names = dict(model.named_parameters())
    resnet = {n for n in names if n in model.resnet_parameter_names}
    # R50-C4's res5 is its box head, yet still the ResNet's; the box predictor is a head
    assert any(n.startswith("roi_heads.box_head.") for n in resnet) == (arch == "R50-C4")
    assert {lr_of[id(names[n])] for n in resnet} == {cfg.solver.lr * 0.25}
    heads = set(names) - resnet
    assert "roi_heads.box_predictor.cls_score.weight" in heads
    assert {lr_of[id(names[n])] for n in heads} == {cfg.solver.lr}
    assert len(lr_of) == len(names)  # every parameter in exactly one group


def test_the_attribute_predictor_learns_at_its_own_lr_factor():
    overrides = ["model.weights=none", "solver.attribute_lr_factor=8", "solver.resnet_lr_factor=1"]
    cfg = load_config("demo", overrides)
    model = build_model(cfg.model, LabelSpace.from_coco(ontology_json()), min_size=96, max_size=128)
    optimizer, _, _ = train_module.build_optimizer(model, cfg.solver, torch.device("cpu"))
    groups = {id(p): group for group in optimizer.param_groups for p in group["params"]}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        expected = cfg.solver.lr * (8 if name.startswith("roi_heads.attribute_predictor.") else 1)
        assert groups[id(p)]["initial_lr"] == pytest.approx(expected), name
    bias = model.roi_heads.attribute_predictor.attribute_score.bias
    assert groups[id(bias)]["weight_decay"] == cfg.solver.weight_decay  # a linear bias decays, as before


def _take(sampler, n):
    it = iter(sampler)
    return [next(it) for _ in range(n)]


def test_deterministic_mode_keeps_the_kernels_but_not_the_nan_fill():
    # the NaN fill of new tensors costs a pass over memory and changes no result; the kernels stay
    fill = torch.utils.deterministic
    before = (torch.are_deterministic_algorithms_enabled(), fill.fill_uninitialized_memory)
    try:
        train_module.use_deterministic_algorithms()
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.is_deterministic_algorithms_warn_only_enabled()
        assert not fill.fill_uninitialized_memory
    finally:
        torch.use_deterministic_algorithms(before[0])
        fill.fill_uninitialized_memory = before[1]


def test_sampler_is_a_function_of_seed_and_iteration():
    full = _take(TrainingSampler(10, 3, seed=1), 8)
    assert _take(TrainingSampler(10, 3, seed=1, start_iter=5), 3) == full[5:]
    assert full != _take(TrainingSampler(10, 3, seed=2), 8)
    first_pass = [i for batch in full for i in batch][:10]
    assert sorted(first_pass) == list(range(10))


def test_sampler_shards_are_disjoint_and_cover_the_batch():
    rank0 = _take(TrainingSampler(12, 2, seed=0, rank=0, world_size=2), 3)
    rank1 = _take(TrainingSampler(12, 2, seed=0, rank=1, world_size=2), 3)
    single = _take(TrainingSampler(12, 4, seed=0), 3)
    for a, b, s in zip(rank0, rank1, single, strict=True):
        assert not set(a) & set(b)
        assert sorted(a + b) == sorted(s)


class _NaNModel(torch.nn.Module):
    def __init__(self, *args, **kwargs):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(()))

    def forward(self, images, targets=None):
        return {"loss_classifier": self.w * 0.5, "loss_mask": self.w * float("nan")}


def test_non_finite_loss_stops_with_iteration_and_terms(synthetic_root, tmp_path, monkeypatch):
    monkeypatch.setattr(train_module, "build_model", _NaNModel)
    cfg = load_config("demo", tiny_overrides(synthetic_root, tmp_path))
    with pytest.raises(NonFiniteLossError, match=r"iteration 0: loss_classifier=0\.5, loss_mask=nan"):
        train(cfg, show_progress=False)


def _train_cmd(root: Path, out: Path, *extra: str) -> list[str]:
    overrides = [
        f"{k}={json.dumps(v) if isinstance(v, list) else v}" for k, v in tiny_overrides(root, out).items()
    ]
    args = [sys.executable, "-m", "fashionseg", "train", "--preset", "demo", "--no-eval"]
    for o in overrides + [*extra]:
        args += ["-p", o]
    return args


def _env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


@pytest.mark.slow
def test_a_finished_run_of_another_configuration_is_not_overwritten(synthetic_root, tmp_path):
    short = {"solver.max_iter": 2, "solver.steps": [1]}
    cfg = load_config("demo", tiny_overrides(synthetic_root, tmp_path, **short))
    run_dir = train(cfg, show_progress=False)
    final = (run_dir / "model_final.pt").read_bytes()
    config = (run_dir / "config.yaml").read_text()

    other = load_config("demo", tiny_overrides(synthetic_root, tmp_path, **{**short, "solver.max_iter": 3}))
    assert other.run_dir == run_dir
    with pytest.raises(FashionsegError, match=r"another configuration \(solver\.max_iter 2 -> 3\).*--force"):
        train(other, show_progress=False)
    assert (run_dir / "model_final.pt").read_bytes() == final  # nothing was touched
    assert (run_dir / "config.yaml").read_text() == config

    train(cfg, show_progress=False)  # the same configuration trains again in place
    train(other, show_progress=False, overwrite=True)
    assert "max_iter: 3" in (run_dir / "config.yaml").read_text()


def test_resume_after_sigkill_ends_with_the_same_weights(synthetic_root, tmp_path):
    """Also the learning curve: evaluating every 3 iterations neither shifts the random streams nor
    breaks resume, and the resumed run's curve equals the uninterrupted one's."""
    extra = ("solver.max_iter=8", "solver.steps=[5]", "solver.eval_period=3", "solver.eval_images=2")
    subprocess.run(
        _train_cmd(synthetic_root, tmp_path / "straight", *extra), env=_env(), check=True, timeout=600
    )

    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        _train_cmd(synthetic_root, killed, *extra),
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    last = killed / "R50-FPN" / "checkpoints" / "last.pt"
    deadline = time.time() + 600
    while not last.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    killed_at = load(last, required=("iteration",))["iteration"]
    assert 0 < killed_at < 8
    assert not (killed / "R50-FPN" / "model_final.pt").exists()

    subprocess.run(
        _train_cmd(synthetic_root, killed, *extra) + ["--resume"], env=_env(), check=True, timeout=600
    )
    a = load(tmp_path / "straight" / "R50-FPN" / "model_final.pt")["model"]
    b = load(killed / "R50-FPN" / "model_final.pt")["model"]
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"weights differ after resume at iteration {killed_at}: {different[:5]}"
    log = [json.loads(line) for line in (killed / "R50-FPN" / "metrics.jsonl").read_text().splitlines()]
    iterations = [r["iteration"] for r in log]
    assert iterations == sorted(set(iterations)) and iterations[-1] == 8

    def curve(run: Path) -> list[dict]:
        points = [
            json.loads(line) for line in (run / "R50-FPN" / "learning_curve.jsonl").read_text().splitlines()
        ]
        return [{k: v for k, v in p.items() if not k.endswith("seconds")} for p in points]

    assert [p["iteration"] for p in curve(tmp_path / "straight")] == [3, 6]  # the final point: evaluate_run
    assert curve(killed) == curve(tmp_path / "straight")
    assert all("segm_AP" in p and "bbox_AP" in p for p in curve(killed))


@pytest.mark.slow
def test_torchrun_two_processes_with_gloo(synthetic_root, tmp_path):
    cmd = _train_cmd(synthetic_root, tmp_path, "solver.max_iter=3", "solver.steps=[2]", "device=cpu")
    command = torchrun_launcher(29531) + ["-m", "fashionseg"] + cmd[3:]
    subprocess.run(command, env=_env(), check=True, timeout=600)
    run_dir = tmp_path / "R50-FPN"
    assert json.loads((run_dir / "env.json").read_text())["world_size"] == 2
    assert (run_dir / "model_final.pt").exists()
    log = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert log[-1]["iteration"] == 3


@pytest.mark.slow
@pytest.mark.training
def test_short_run_learns_the_training_images(synthetic_root, tmp_path):
    """Overfit a handful of images: the loss falls and the predicted masks match the ground truth."""
    cfg = load_config(
        "demo",
        tiny_overrides(
            synthetic_root,
            tmp_path,
            **{
                "data.max_images": 2,
                "data.val_annotations": "annotations/instances_attributes_train.json",
                "data.val_images": "images/train",
                "data.hflip_prob": 0.0,
                "solver.max_iter": 200,  # 80 iterations were too few (mask AP50 17 on these images)
                "solver.steps": [170],
                "solver.warmup_iters": 10,
                "solver.base_lr": 0.01,
                "solver.checkpoint_period": 1000,
            },
        ),
    )
    run_dir = train(cfg, show_progress=False)
    log = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert sum(r["loss"] for r in log[-3:]) / 3 < 0.5 * sum(r["loss"] for r in log[:3]) / 3
    metrics = evaluate_run(run_dir, max_images=2, show_progress=False)
    assert metrics["segm"]["coco"]["AP50"] > 50
    last = [json.loads(line) for line in (run_dir / "learning_curve.jsonl").read_text().splitlines()][-1]
    assert last["iteration"] == 200 and last["segm_AP50"] == metrics["segm"]["coco"]["AP50"]


def _first_step_losses(cfg, amp: bool) -> dict[str, float]:
    """The loss terms of one seeded training step of ``cfg``'s model at float32 or at solver.amp."""
    from fashionseg import precision
    from fashionseg.models import build_model

    dataset = train_module.build_train_dataset(cfg)
    torch.manual_seed(0)
    model = build_model(cfg.model, dataset.labels, min_size=cfg.data.min_size, max_size=cfg.data.max_size)
    model.train()
    images, targets = zip(*(dataset[i] for i in range(2)), strict=True)
    torch.manual_seed(1)  # the same RPN/RoI samples in both precisions
    with precision.autocast(torch.device("cpu"), amp):
        losses = model(list(images), [dict(t) for t in targets])
    return {k: float(v) for k, v in losses.items()}


# bfloat16 keeps 8 bits of mantissa (a relative step of 2^-8 = 0.4%). The RPN losses depend only on the
# anchors and the seeded anchor sample: measured within 0.1% of float32's. The RoI-head losses see another
# sample of proposals (bf16 reorders the young RPN's near-tied objectness scores), so only their sum is
# bounded: the total moved by 0.8-6.7% on this data (measured for the three architectures).
BF16_RPN_RTOL = 0.01
BF16_TOTAL_RTOL = 0.10


@pytest.mark.skipif(not __import__("fashionseg.precision").precision.cpu_has_bf16(), reason="no CPU bf16")
@pytest.mark.parametrize("arch", ["R50-FPN", "R50-C4", "R50-DC5"])
def test_bf16_step_losses_stay_close_to_float32(synthetic_root, tmp_path, arch):
    cfg = load_config("demo", tiny_overrides(synthetic_root, tmp_path, **{"model.arch": arch, "name": arch}))
    fp32 = _first_step_losses(cfg, amp=False)
    bf16 = _first_step_losses(cfg, amp=True)
    assert fp32.keys() == bf16.keys()
    for key in ("loss_objectness", "loss_rpn_box_reg"):
        assert bf16[key] == pytest.approx(fp32[key], rel=BF16_RPN_RTOL), key
    assert sum(bf16.values()) == pytest.approx(sum(fp32.values()), rel=BF16_TOTAL_RTOL)
    assert all(math.isfinite(v) for v in bf16.values())


def test_amp_falls_back_to_float32_where_the_cpu_has_no_bf16(monkeypatch):
    from fashionseg import precision

    cpu = torch.device("cpu")
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: False)
    assert precision.autocast_dtype(cpu, amp=True) is None
    assert "no native bfloat16" in precision.describe(cpu, amp=True)
    assert not precision.autocast(cpu, amp=True)._enabled
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: True)
    assert precision.autocast_dtype(cpu, amp=True) is torch.bfloat16
    assert precision.autocast_dtype(cpu, amp=False) is None
    assert precision.autocast_dtype(torch.device("cuda"), amp=True) is torch.float16


def test_resume_drops_log_lines_past_the_checkpoint_and_a_torn_last_line(tmp_path):
    from fashionseg.train import _trim_metrics_log

    log = tmp_path / "metrics.jsonl"
    lines = [json.dumps({"iteration": i, "loss": 1.0 / i}) for i in (1, 2, 3, 4)]
    log.write_text("\n".join(lines) + '\n{"iteration": 5, "lo')  # killed while appending iteration 5
    _trim_metrics_log(log, upto_iteration=3)
    assert log.read_text() == "".join(line + "\n" for line in lines[:3])
    _trim_metrics_log(log, upto_iteration=3)  # a whole log is kept as it is
    assert log.read_text() == "".join(line + "\n" for line in lines[:3])


def test_the_training_code_hash_covers_every_module_training_and_evaluation_import():
    """A module the training run or its evaluation imports decides its result (weights, metrics.json), so it
    must be in TRAINING_CODE; modules that only record or report (errors, runinfo, visualization) need not."""
    from fashionseg.train import TRAINING_CODE

    code = (
        "import sys, fashionseg.train, fashionseg.evaluation.runs; print('\\n'.join(sorted(m.__file__ "
        "for n, m in sys.modules.items() if n.startswith('fashionseg') and getattr(m, '__file__', None))))"
    )
    files = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    package = Path(train_module.__file__).parent
    exempt = {"__init__.py", "errors.py", "runinfo.py", "visualization.py"}
    uncovered = [
        rel
        for rel in (Path(f).relative_to(package).as_posix() for f in files.split())
        if rel not in exempt and not any(rel == part or rel.startswith(f"{part}/") for part in TRAINING_CODE)
    ]
    assert not uncovered, f"imported by training or evaluation but not in TRAINING_CODE: {uncovered}"
    # the analyses of saved predictions are not: editing them leaves finished runs reusable
    analyses = ("evaluation/per_image", "evaluation/bootstrap", "evaluation/attribute_groups")
    assert not any(part.startswith(analyses) for part in TRAINING_CODE)
