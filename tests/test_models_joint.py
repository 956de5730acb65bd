"""The joint pretext model: three designs on one set of ResNet tensors (R50-C4's box-head res5 and R50-DC5's
dilated res5 are R50-FPN's layer4), every design's losses under its name, one SGD update per shared weight."""

from __future__ import annotations

import pytest
import torch

from fashionseg.config import ARCHITECTURES, ModelConfig, SolverConfig
from fashionseg.data.ontology import LabelSpace, ontology_json
from fashionseg.data.transforms import RandomHorizontalFlip
from fashionseg.models.joint import JointPretextModel, design_state, joint_trunk_state
from fashionseg.train import _train_step, build_optimizer

H, W = 64, 96
SIZE = {"min_size": H, "max_size": W}


@pytest.fixture(scope="module")
def labels() -> LabelSpace:
    return LabelSpace.from_coco(ontology_json())


def joint(labels: LabelSpace) -> JointPretextModel:
    torch.manual_seed(0)
    cfg = ModelConfig(
        pretext_archs=ARCHITECTURES,
        norm="gn",
        rpn_pre_nms_top_n_train=32,
        rpn_post_nms_top_n_train=16,
        rpn_batch_size_per_image=16,
        box_batch_size_per_image=8,
    )
    return JointPretextModel(cfg, labels, **SIZE)


def test_the_designs_share_one_resnet(labels):
    model = joint(labels)
    fpn, c4, dc5 = (model.designs[arch] for arch in ARCHITECTURES)
    res5 = fpn.backbone.body.layer4
    assert c4.roi_heads.box_head[0].conv1.weight is res5[0].conv1.weight  # C4's box head is the trunk's res5
    assert dc5.backbone.body.layer4[2].conv3.weight is res5[2].conv3.weight
    assert c4.backbone.body.layer3[5].bn2.bias is fpn.backbone.body.layer3[5].bn2.bias
    assert dc5.backbone.body.conv1.weight is fpn.backbone.body.conv1.weight
    # the same weights, used at other strides by R50-DC5
    assert dc5.backbone.body.layer4[0].conv2.dilation == (2, 2) and res5[0].conv2.dilation == (1, 1)
    # the heads stay each design's own
    assert c4.rpn.head.conv[0][0].weight is not fpn.rpn.head.conv[0][0].weight
    names = model.resnet_parameter_names
    assert "designs.R50-C4.roi_heads.box_head.0.conv1.weight" in names
    assert "designs.R50-DC5.backbone.body.layer4.0.conv1.weight" in names
    assert not any(".rpn." in n or "fpn." in n for n in names)
    state = model.state_dict()
    trunk = joint_trunk_state(state, ARCHITECTURES)
    assert torch.equal(
        trunk["layer4.0.conv1.weight"], design_state(state, "R50-C4")["roi_heads.box_head.0.conv1.weight"]
    )
    assert trunk.keys() == model.trunk_state().keys()


def _batch(labels: LabelSpace) -> tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]:
    generator = torch.Generator().manual_seed(1)
    images, targets = [], []
    for box in ([8.0, 10.0, 50.0, 60.0], [30.0, 4.0, 90.0, 40.0]):
        mask = torch.zeros(H, W, dtype=torch.uint8)
        mask[int(box[1]) : int(box[3]), int(box[0]) : int(box[2])] = 1
        images.append(torch.rand(3, H, W, generator=generator))
        targets.append(
            {
                "boxes": torch.tensor([box]),
                "labels": torch.tensor([labels.label_of(labels.category_ids[0])]),
                "masks": mask[None],
                "attributes": torch.zeros(1, labels.num_attributes),
            }
        )
    return images, targets


def test_one_step_trains_every_design_and_moves_each_shared_weight_once(labels):
    model = joint(labels).train()
    solver = SolverConfig(ims_per_batch=2, reference_batch=2, base_lr=0.01, warmup_iters=0, amp=False)
    optimizer, scheduler, scaler = build_optimizer(model, solver, torch.device("cpu"))
    unique = {id(p) for p in model.parameters() if p.requires_grad}
    assert sum(len(g["params"]) for g in optimizer.param_groups) == len(unique)  # no weight listed twice
    shared = model.designs["R50-C4"].roi_heads.box_head[1].conv2.weight
    before = shared.detach().clone()
    images, targets = _batch(labels)
    total, losses, lr = _train_step(
        model, model, images, targets, RandomHorizontalFlip(0.0), solver, torch.device("cpu"), optimizer,
        scheduler, scaler, 0,
    )  # fmt: skip
    assert {key.split("/")[0] for key in losses} == set(ARCHITECTURES)
    assert {"R50-C4/loss_mask", "R50-DC5/loss_box_reg", "R50-FPN/loss_attribute"} <= losses.keys()
    assert total == pytest.approx(sum(losses.values()), rel=1e-5)
    # SGD's first step: p - lr * (grad + weight_decay * p), once; three updates would move it three times
    expected = before - lr * (shared.grad + solver.weight_decay * before)
    assert not torch.equal(shared.detach(), before)
    torch.testing.assert_close(shared.detach(), expected, rtol=1e-5, atol=1e-7)
    fpn_res5 = model.designs["R50-FPN"].backbone.body.layer4[1].conv2.weight
    assert torch.equal(fpn_res5, shared)
