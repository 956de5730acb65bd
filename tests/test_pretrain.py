"""The pretrained trunk: ``fashionseg pretrain`` on a tiny split, the shipped file against its manifest,
and ``model.weights`` loading a trunk into each design or refusing a bad one with an error saying
what to do."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from fashionseg import checkpoint
from fashionseg.config import load_config, project_root
from fashionseg.data.ontology import LabelSpace, ontology_json
from fashionseg.errors import FashionsegError
from fashionseg.models import build_model
from fashionseg.models.trunk import (
    FIRST_STAGE_FILE,
    TRUNK_FILE,
    TRUNK_PREFIXES,
    TrunkError,
    manifest_path,
    read_manifest,
    save_trunk,
    sha256_file,
    trunk_state,
)
from fashionseg.pretrain import OverlapError, check_disjoint, pretrain
from fashionseg.rundir import RunDir

SIZE = {"min_size": 128, "max_size": 128}
MAX_TRUNK_BYTES = 50 * 10**6


@pytest.fixture(scope="module")
def labels() -> LabelSpace:
    return LabelSpace.from_coco(ontology_json())


@pytest.fixture(scope="module")
def trunk_file(tmp_path_factory: pytest.TempPathFactory, labels: LabelSpace) -> Path:
    """A trunk exported from a freshly initialised R50-FPN (random weights: the plumbing, not the values)."""
    torch.manual_seed(0)
    cfg = load_config("scratch")
    model = build_model(cfg.model, labels, **SIZE)
    path = tmp_path_factory.mktemp("trunk") / "t.safetensors"
    save_trunk(trunk_state(model.state_dict(), "R50-FPN"), path, {"depth": 50, "norm": "gn"})
    return path


@pytest.mark.parametrize(
    ("arch", "res5_key"),
    [
        ("R50-FPN", "backbone.body.layer4.2.conv3.weight"),
        ("R50-C4", "roi_heads.box_head.2.conv3.weight"),  # res5 is R50-C4's box head
        ("R50-DC5", "backbone.body.layer4.2.conv3.weight"),
    ],
)
def test_a_trunk_fills_the_resnet_of_each_design(trunk_file, labels, arch, res5_key):
    from safetensors.torch import load_file

    stored = load_file(str(trunk_file))
    cfg = load_config("scratch", {"model.arch": arch, "model.weights": str(trunk_file)})
    model = build_model(cfg.model, labels, **SIZE)
    state = model.state_dict()
    assert torch.equal(state[res5_key], stored["layer4.2.conv3.weight"].float())
    assert torch.equal(state["backbone.body.conv1.weight"], stored["conv1.weight"].float())
    assert torch.equal(state["backbone.body.layer3.5.bn2.weight"], stored["layer3.5.bn2.weight"].float())
    # pretrained: the stem and res2 stay frozen (detectron2's FREEZE_AT=2), res3 on train
    assert not model.backbone.body.conv1.weight.requires_grad
    assert not model.backbone.body.layer1[0].conv1.weight.requires_grad
    assert model.backbone.body.layer2[0].conv1.weight.requires_grad
    if arch == "R50-DC5":
        assert model.backbone.body.layer4[0].conv2.dilation == (2, 2)


def test_the_manifest_records_the_file_it_describes(trunk_file):
    manifest = read_manifest(trunk_file)
    assert manifest["sha256"] == sha256_file(trunk_file)
    assert manifest["bytes"] == trunk_file.stat().st_size <= MAX_TRUNK_BYTES
    assert manifest["dtype"] == "float16"
    from safetensors import safe_open

    with safe_open(str(trunk_file), "pt") as f:
        keys = list(f.keys())
    assert len(keys) == manifest["tensors"]
    assert all(key.startswith(TRUNK_PREFIXES) for key in keys)  # the ResNet only: no fc, FPN or heads
    assert any(key.startswith("layer4.") for key in keys)


def _copy(trunk_file: Path, tmp_path: Path) -> Path:
    copy = tmp_path / trunk_file.name
    copy.write_bytes(trunk_file.read_bytes())
    manifest_path(copy).write_text(manifest_path(trunk_file).read_text())
    return copy


def _build(labels: LabelSpace, weights: str, **overrides: object) -> None:
    cfg = load_config("scratch", {"model.weights": weights, **overrides})
    build_model(cfg.model, labels, **SIZE)


def test_a_missing_trunk_names_the_file_and_make_pretrain(labels, tmp_path):
    with pytest.raises(TrunkError, match=r"nothing\.safetensors does not exist.*make pretrain"):
        _build(labels, str(tmp_path / "nothing.safetensors"))


def test_a_corrupt_trunk_names_the_file_the_manifest_and_make_pretrain(trunk_file, labels, tmp_path):
    copy = _copy(trunk_file, tmp_path)
    data = bytearray(copy.read_bytes())
    data[-100] ^= 0xFF
    copy.write_bytes(bytes(data))
    with pytest.raises(TrunkError, match=r"t\.safetensors is corrupt.*t\.json.*make pretrain"):
        _build(labels, str(copy))


def test_a_trunk_without_its_manifest_is_refused(trunk_file, labels, tmp_path):
    copy = _copy(trunk_file, tmp_path)
    manifest_path(copy).unlink()
    with pytest.raises(TrunkError, match=r"t\.json is missing.*make pretrain"):
        _build(labels, str(copy))


def test_a_groupnorm_trunk_does_not_fill_a_batchnorm_resnet(trunk_file, labels):
    with pytest.raises(TrunkError, match=r"norm gn.*t\.json.*model\.norm=bn.*make pretrain"):
        _build(labels, str(trunk_file), **{"model.norm": "bn"})


def _tiny_pretrain_config(root: Path, out: Path, seed: int, preset: str = "pretrain", **overrides: object):
    return load_config(
        preset,
        {
            "output_dir": str(out),
            "data.root": str(root),
            "data.synth_train": 6,
            "data.synth_val": 2,
            "data.synth_size": 128,
            "data.synth_seed": seed,
            "data.min_size": 128,
            "data.max_size": 128,
            "solver.max_iter": 3,
            "solver.steps": [],
            "solver.warmup_iters": 1,
            "solver.eval_period": 2,
            "solver.checkpoint_period": 2,
            **overrides,
        },
    )


@pytest.mark.slow
def test_pretrain_writes_a_trunk_and_manifest_and_resumes(synthetic_data_config, tmp_path):
    cfg = _tiny_pretrain_config(tmp_path / "data", tmp_path / "runs", seed=7)
    out = tmp_path / "weights" / "trunk.safetensors"
    manifest = pretrain(cfg, out, synthetic_data_config, show_progress=False)
    assert manifest == json.loads(manifest_path(out).read_text())
    assert manifest["sha256"] == sha256_file(out)
    assert manifest["iterations"] == 3 and manifest["train_seconds"] > 0
    assert manifest["data"]["synth_seed"] == 7
    assert manifest["data"]["disjoint_from_study"]["shared"] == 0
    assert manifest["cpu"]["model"] and manifest["recipe"]["solver"]["max_iter"] == 3
    assert [p["iteration"] for p in manifest["learning_curve"]] == [2, 3]
    assert manifest["bytes"] <= MAX_TRUNK_BYTES
    # a finished run is continued, not retrained: the same weights, so the same file
    again = pretrain(cfg, out, synthetic_data_config, show_progress=False)
    assert again["sha256"] == manifest["sha256"]


@pytest.mark.slow
def test_a_joint_pretrain_exports_the_shared_resnet_and_names_its_designs(
    trunk_file, synthetic_data_config, tmp_path
):
    from safetensors.torch import load_file

    cfg = _tiny_pretrain_config(
        tmp_path / "data",
        tmp_path / "runs",
        seed=7,
        preset="pretrain_joint",  # continues a trunk, as the pilot did
        **{"model.weights": str(trunk_file), "solver.max_iter": 2, "solver.eval_period": 0},
    )
    out = tmp_path / "weights" / "joint.safetensors"
    manifest = pretrain(cfg, out, synthetic_data_config, show_progress=False)
    assert manifest["designs"] == ["R50-FPN", "R50-C4", "R50-DC5"]
    assert "R50-FPN, R50-C4, R50-DC5" in manifest["pretext"] and "one shared ResNet" in manifest["pretext"]
    assert manifest["iterations"] == 2 and manifest["learning_curve"] == []
    assert set(manifest["val"]) == {"R50-FPN", "R50-C4", "R50-DC5"}
    assert all({"bbox_AP", "segm_AP"} <= ap.keys() for ap in manifest["val"].values())
    assert manifest["initial_trunk"]["sha256"] == read_manifest(trunk_file)["sha256"]
    run = RunDir(cfg.run_dir)
    assert run.path.name == "R50-FPN+R50-C4+R50-DC5"
    assert {"R50-FPN/loss_mask", "R50-C4/loss_mask", "R50-DC5/loss_mask"} <= run.log()[-1].keys()
    # the file is the trunk every design trained: R50-C4's box-head res5 among them
    trunk = load_file(str(out))
    final = checkpoint.load(run.model_file)["model"]
    c4_res5 = final["designs.R50-C4.roi_heads.box_head.2.conv3.weight"]
    assert torch.equal(trunk["layer4.2.conv3.weight"].float(), c4_res5.half().float())
    assert torch.equal(final["designs.R50-DC5.backbone.body.layer4.2.conv3.weight"], c4_res5)
    # continued from a trunk: the stem stays frozen, res5 trains
    start = load_file(str(trunk_file))
    assert torch.equal(trunk["conv1.weight"], start["conv1.weight"])
    assert not torch.equal(trunk["layer4.2.conv3.weight"], start["layer4.2.conv3.weight"])


def test_pretraining_refuses_to_overwrite_the_trunk_it_continues(trunk_file, synthetic_data_config):
    cfg = load_config("pretrain_joint", {"model.weights": str(trunk_file)})
    with pytest.raises(FashionsegError, match=r"continues the trunk .*t\.safetensors.*--out"):
        pretrain(cfg, trunk_file, synthetic_data_config, show_progress=False)


def test_a_pretraining_split_sharing_images_with_the_study_is_refused(synthetic_data_config, tmp_path):
    same = dataclasses.replace(synthetic_data_config)  # the study's own images
    with pytest.raises(OverlapError, match=r"also appear in the study's data.*data\.synth_seed"):
        check_disjoint(same, synthetic_data_config, show_progress=False)
    assert isinstance(OverlapError("x"), FashionsegError)


@pytest.mark.parametrize("trunk_file", [TRUNK_FILE, FIRST_STAGE_FILE], ids=["shipped", "first-stage"])
def test_the_committed_trunks_match_their_manifests(trunk_file):
    path = project_root() / trunk_file
    manifest = read_manifest(path)
    assert sha256_file(path) == manifest["sha256"] and manifest["file"] == path.name
    assert path.stat().st_size == manifest["bytes"] <= MAX_TRUNK_BYTES
    assert manifest["norm"] == load_config("demo").model.norm
    assert manifest["data"]["synth_seed"] != load_config("demo").data.synth_seed
    assert manifest["iterations"] == manifest["recipe"]["solver"]["max_iter"]
    assert manifest["loss_curve"]
    if "designs" in manifest:  # a joint stage: each design's val AP, no in-run curve
        assert set(manifest["val"]) == set(manifest["designs"])
    else:
        assert manifest["learning_curve"]


def test_the_shipped_trunk_continues_the_committed_first_stage():
    shipped = read_manifest(project_root() / TRUNK_FILE)
    first = read_manifest(project_root() / FIRST_STAGE_FILE)
    assert shipped["initial_trunk"]["sha256"] == first["sha256"]
    assert Path(shipped["initial_trunk"]["weights"]) == FIRST_STAGE_FILE
    assert shipped["designs"] == ["R50-FPN", "R50-C4", "R50-DC5"]
    assert "initial_trunk" not in first and first["recipe"]["model"]["weights"] == "none"
    # make pretrain runs the two stages with these presets
    assert load_config("pretrain_joint").model.weights == str(FIRST_STAGE_FILE)
