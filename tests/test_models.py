"""fashionseg.models: the three architectures, the attribute head, weights, parameter counts."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from urllib.error import URLError

import pytest
import torch
from torchvision.models import resnet18
from torchvision.models.detection import maskrcnn_resnet50_fpn
from torchvision.models.detection.roi_heads import RoIHeads
from torchvision.models.resnet import BasicBlock
from torchvision.ops import FrozenBatchNorm2d

from fashionseg.config import ARCHITECTURES, ModelConfig
from fashionseg.data.ontology import LabelSpace, ontology_json
from fashionseg.errors import FashionsegError
from fashionseg.models import (
    ARCHITECTURE_BUILDERS,
    AttributePredictor,
    Res5RoIHeads,
    attribute_loss,
    build_model,
    count_parameters,
)
from fashionseg.models.attribute_head import attribute_targets

H, W = 96, 128
SIZE = {"min_size": H, "max_size": W}  # the model's resize (the identity for the H x W test images)
LOSSES = {
    "loss_classifier",
    "loss_box_reg",
    "loss_mask",
    "loss_objectness",
    "loss_rpn_box_reg",
    "loss_attribute",
}


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def labels() -> LabelSpace:
    return LabelSpace.from_coco(ontology_json())


def tiny_config(arch: str, **overrides: object) -> ModelConfig:
    """Few proposals and RoIs, every detection kept (score threshold 0): fast and never empty."""
    values = {
        "arch": arch,
        "rpn_pre_nms_top_n_train": 64,
        "rpn_post_nms_top_n_train": 32,
        "rpn_pre_nms_top_n_test": 64,
        "rpn_post_nms_top_n_test": 16,
        "rpn_batch_size_per_image": 32,
        "box_batch_size_per_image": 16,
        "box_score_thresh": 0.0,
        "box_detections_per_img": 8,
    }
    return ModelConfig(**{**values, **overrides})


def build(labels: LabelSpace, arch: str, **overrides: object) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(tiny_config(arch, **overrides), labels, **SIZE)


def box_mask(box: list[float]) -> torch.Tensor:
    x1, y1, x2, y2 = map(int, box)
    mask = torch.zeros(H, W, dtype=torch.uint8)
    mask[y1:y2, x1:x2] = 1
    return mask


def batch(
    labels: LabelSpace, instances: list[list[tuple[int, list[float]]]], attribute_value: float = 1.0
) -> tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]:
    """Images [3, H, W] and targets; ``instances`` lists (category id, box) per image. Instances of
    categories with attributes get every attribute set to ``attribute_value``."""
    generator = torch.Generator().manual_seed(1)
    images, targets = [], []
    carries = labels.labels_with_attributes()
    for objects in instances:
        images.append(torch.rand(3, H, W, generator=generator))
        label_ids = torch.tensor([labels.label_of(c) for c, _ in objects])
        attributes = torch.zeros(len(objects), labels.num_attributes)
        attributes[torch.tensor([carries[k] for k in label_ids.tolist()])] = attribute_value
        targets.append(
            {
                "boxes": torch.tensor([b for _, b in objects], dtype=torch.float32),
                "labels": label_ids,
                "masks": torch.stack([box_mask(b) for _, b in objects]),
                "attributes": attributes,
            }
        )
    return images, targets


SHIRT, SHOE, SLEEVE = 0, 23, 31  # shirt and sleeve carry attributes, shoe does not
WITH_ATTRIBUTES = [
    [(SHIRT, [8.0, 8.0, 70.0, 90.0]), (SHOE, [80.0, 50.0, 124.0, 92.0])],
    [(SLEEVE, [20.0, 30.0, 60.0, 70.0]), (SHOE, [70.0, 10.0, 120.0, 60.0])],
]
WITHOUT_ATTRIBUTES = [[(SHOE, [8.0, 8.0, 70.0, 90.0])], [(SHOE, [60.0, 20.0, 120.0, 80.0])]]


@pytest.fixture(scope="module", params=ARCHITECTURES)
def shared_model(request: pytest.FixtureRequest, labels: LabelSpace) -> torch.nn.Module:
    return build(labels, request.param)


@pytest.fixture
def model(shared_model: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """One model per architecture for the module, handed back as each test found it: in eval mode and
    without gradients, whatever the test did to it."""
    shared_model.eval()
    yield shared_model
    shared_model.eval()
    shared_model.zero_grad(set_to_none=True)


def test_train_step_gives_six_finite_losses_and_trains_the_attribute_head(model, labels):
    model.train()
    model.zero_grad()
    losses = model(*batch(labels, WITH_ATTRIBUTES))
    assert set(losses) == LOSSES
    assert all(torch.isfinite(v) for v in losses.values()), losses
    # Every attribute is positive and the head starts at p = 0.01: the loss is about -log(0.01) = 4.6.
    assert losses["loss_attribute"] > 3.0
    sum(losses.values()).backward()
    grad = model.roi_heads.attribute_predictor.attribute_score.weight.grad
    assert grad is not None and grad.abs().sum() > 0

    no_attributes = model(*batch(labels, WITHOUT_ATTRIBUTES))
    assert no_attributes["loss_attribute"].item() == 0.0
    assert no_attributes["loss_attribute"].requires_grad


def test_eval_outputs_follow_the_contract(model, labels):
    model.eval()
    images, _ = batch(labels, WITH_ATTRIBUTES)
    with torch.no_grad():
        scores = torch.cat([d["attribute_scores"] for d in model(images)])
        model.attribute_threshold = float(scores.median())
        outputs = model(images)
    assert len(outputs) == 2
    for out in outputs:
        n = out["boxes"].shape[0]
        assert n == 8
        assert out["boxes"].shape == (n, 4) and out["scores"].shape == (n,) and out["labels"].shape == (n,)
        assert out["masks"].shape == (n, 1, H, W) and out["masks"].dtype == torch.float32
        assert out["attribute_scores"].shape == (n, labels.num_attributes)
        assert ((out["attribute_scores"] >= 0) & (out["attribute_scores"] <= 1)).all()
        assert len(out["attribute_ids"]) == n
        for row, ids in zip(out["attribute_scores"], out["attribute_ids"], strict=True):
            expected = [
                a
                for a, s in zip(labels.attribute_ids, row.tolist(), strict=True)
                if s >= model.attribute_threshold
            ]
            assert ids == expected
    chosen = sum(len(ids) for out in outputs for ids in out["attribute_ids"])
    assert 0 < chosen < scores.numel()


def test_postprocess_with_sources_matches_torchvision_and_names_the_source_roi(labels):
    heads = build(labels, "R50-FPN").roi_heads
    torch.manual_seed(3)
    proposals = [
        torch.tensor([[10.0, 10.0, 50.0, 60.0], [30.0, 20.0, 90.0, 80.0], [5.0, 40.0, 60.0, 90.0]])
    ] * 2
    class_logits = torch.randn(6, labels.num_classes) * 3
    box_regression = torch.randn(6, 4 * labels.num_classes) * 0.1
    shapes = [(H, W), (H, W)]
    ours = heads.postprocess_with_sources(class_logits, box_regression, proposals, shapes)
    boxes, scores, classes = RoIHeads.postprocess_detections(
        heads, class_logits, box_regression, proposals, shapes
    )
    decoded = heads.box_coder.decode(box_regression, proposals)
    for image, det in enumerate(ours):
        assert torch.equal(det["boxes"], boxes[image]) and torch.equal(det["scores"], scores[image])
        assert torch.equal(det["labels"], classes[image])
        assert ((det["sources"] >= 3 * image) & (det["sources"] < 3 * image + 3)).all()
        source_boxes = (
            decoded[det["sources"], det["labels"]].clamp(min=0).clamp(max=torch.tensor([W, H, W, H]))
        )
        torch.testing.assert_close(det["boxes"], source_boxes)
        probs = class_logits.softmax(-1)[det["sources"], det["labels"]]
        torch.testing.assert_close(det["scores"], probs)


def test_attribute_loss_equals_the_formula():
    logits = torch.tensor([[0.0, 2.0, -1.0], [1.0, 1.0, 1.0], [3.0, -2.0, 0.5]], requires_grad=True)
    targets = torch.tensor([[1.0, 0.0, 1.0], [1.0, 1.0, 1.0], [0.0, 0.0, 1.0]])
    valid = torch.tensor([True, False, True])

    def bce(x: float, t: float) -> float:
        p = 1 / (1 + math.exp(-x))
        return -(t * math.log(p) + (1 - t) * math.log(1 - p))

    rows = [0, 2]
    # summed over the 3 attributes, averaged over the 2 valid RoIs
    expected = sum(bce(logits[r, j].item(), targets[r, j].item()) for r in rows for j in range(3)) / 2
    assert attribute_loss(logits, targets, valid).item() == pytest.approx(expected, rel=1e-6)

    none = attribute_loss(logits, targets, torch.zeros(3, dtype=torch.bool))
    assert none.item() == 0.0
    none.backward()
    assert torch.equal(logits.grad, torch.zeros_like(logits))


def test_attribute_targets_follow_the_matched_ground_truth():
    gt = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    rows = attribute_targets([torch.tensor([1, 0, 1]), torch.tensor([0, 0])], [gt, torch.zeros(0, 2)], 2)
    assert torch.equal(rows, torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.0, 1.0], [0.0, 0.0], [0.0, 0.0]]))


def test_attribute_bias_starts_at_the_prior():
    head = AttributePredictor(16, 5, prior=0.02)
    assert torch.allclose(head(torch.zeros(3, 16)).sigmoid(), torch.full((3, 5), 0.02))


@pytest.mark.parametrize("fraction", [0.25, 0.75])
def test_box_positive_fraction_caps_the_foreground_rois(labels, fraction):
    model = build(labels, "R50-C4", box_positive_fraction=fraction)
    matched = [torch.tensor([1] * 50 + [0] * 50)]  # 50 foreground proposals, 50 background
    foreground, background = model.roi_heads.fg_bg_sampler(matched)
    batch_size = tiny_config("R50-C4").box_batch_size_per_image
    assert int(foreground[0].sum()) == int(batch_size * fraction)
    assert int(background[0].sum()) == batch_size - int(batch_size * fraction)


def test_c4_mask_head_shares_res5(labels):
    model = build(labels, "R50-C4", depth=18)  # the sharing does not depend on depth; R18 is fast
    heads = model.roi_heads
    res5 = heads.box_head
    assert heads.mask_head is None and heads.mask_roi_pool is None and heads.has_mask()
    assert res5[0].conv1.stride == (2, 2)
    # One res5 in the model: no block of its width elsewhere, none of its parameters under another name.
    width = res5[-1].conv2.out_channels
    blocks = [
        n for n, m in model.named_modules() if isinstance(m, BasicBlock) and m.conv2.out_channels == width
    ]
    assert blocks == ["roi_heads.box_head.0", "roi_heads.box_head.1"]
    res5_ids = {id(p) for p in res5.parameters()}
    holders = {n for n, p in model.named_parameters(remove_duplicate=False) if id(p) in res5_ids}
    assert all(n.startswith("roi_heads.box_head.") for n in holders)
    calls = []
    res5.register_forward_hook(lambda module, inputs, output: calls.append(output.shape[0]))

    model.train()
    losses = model(*batch(labels, WITH_ATTRIBUTES))
    assert len(calls) == 1  # training: the mask head reuses the foreground RoIs' res5 maps
    losses["loss_mask"].backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in res5.parameters() if p.requires_grad)

    calls.clear()
    model.eval()
    with torch.no_grad():
        outputs = model(batch(labels, WITH_ATTRIBUTES)[0])
    # Inference: res5 on the proposals (box head), then again on the detected boxes (mask head).
    assert len(calls) == 2 and calls[1] == sum(len(o["boxes"]) for o in outputs)
    assert outputs[0]["masks"].shape[-2:] == (H, W)


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_head_norm_gn_puts_groupnorm_into_the_fpn_and_mask_head(labels, arch):
    with torch.device("meta"):
        plain = build_model(tiny_config(arch, norm="gn"), labels, **SIZE)
        normed = build_model(tiny_config(arch, norm="gn", head_norm="gn"), labels, **SIZE)

    def group_norms(module: torch.nn.Module) -> int:
        return sum(isinstance(m, torch.nn.GroupNorm) for m in module.modules())

    mask_head = normed.roi_heads.mask_head
    if arch == "R50-C4":  # the mask branch is res5 (normalised by model.norm) and a deconvolution
        assert mask_head is None and group_norms(normed) == group_norms(plain)
        return
    assert group_norms(mask_head) == 4 and group_norms(plain.roi_heads.mask_head) == 0
    fpn_norms = group_norms(normed.backbone) - group_norms(plain.backbone)
    assert fpn_norms == (8 if arch == "R50-FPN" else 0)  # 4 lateral + 4 output convs
    with pytest.raises(FashionsegError, match="model.head_norm='bn'.*valid: none, gn"):
        build_model(tiny_config(arch, head_norm="bn"), labels, **SIZE)


def test_unknown_arch_lists_the_valid_ones(labels):
    with pytest.raises(FashionsegError) as err:
        build_model(ModelConfig(arch="R50-XYZ"), labels, **SIZE)
    assert all(arch in str(err.value) for arch in ARCHITECTURES)


@pytest.mark.parametrize("arch", ARCHITECTURES)
@pytest.mark.parametrize(("depth", "res4", "res5"), [(18, 256, 512), (34, 256, 512), (101, 1024, 2048)])
def test_other_depths_build_with_their_channel_counts(labels, arch, depth, res4, res5):
    with torch.device("meta"):
        model = build_model(ModelConfig(arch=arch, depth=depth), labels, **SIZE)
    blocks = {18: 2, 34: 3, 101: 3}[depth]
    rpn_in = {"R50-FPN": 256, "R50-C4": res4, "R50-DC5": res5}[arch]
    feature_dim = res5 if arch == "R50-C4" else 1024
    assert model.rpn.head.conv[0][0].in_channels == rpn_in
    assert model.roi_heads.attribute_predictor.attribute_score.in_features == feature_dim
    res5_stage = model.roi_heads.box_head if arch == "R50-C4" else model.backbone.body.layer4
    assert len(res5_stage) == blocks


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_basic_block_backbones_run_at_stride_16(labels, arch):
    model = build(labels, arch, depth=18).eval()
    with torch.no_grad():
        features = model.backbone(torch.zeros(1, 3, 128, 128))
        outputs = model([torch.rand(3, H, W)])
    if arch != "R50-FPN":
        (feature,) = features.values()
        assert feature.shape[-2:] == (8, 8)
    assert outputs[0]["masks"].shape[1:] == (1, H, W)


def test_r50_fpn_is_torchvision_maskrcnn_plus_attribute_head(labels):
    with torch.device("meta"):
        ours = build_model(ModelConfig(arch="R50-FPN", norm="bn"), labels, **SIZE)
        stock = maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=labels.num_classes)
    ours_shapes = {k: v.shape for k, v in ours.state_dict().items() if "attribute_predictor" not in k}
    assert ours_shapes == {k: v.shape for k, v in stock.state_dict().items()}
    head = ours.roi_heads.attribute_predictor.attribute_score
    assert count_parameters(ours) - count_parameters(stock) == head.weight.numel() + head.bias.numel()


# detectron2's parameter counts, computed from the shapes of its layers (FrozenBN has no parameters, so
# model-zoo models count convolutions and linear layers only).
def conv(cin: int, cout: int, k: int, bias: bool) -> int:
    return cin * cout * k * k + (cout if bias else 0)


def linear(cin: int, cout: int) -> int:
    return cin * cout + cout


def d2_resnet(depth: int) -> tuple[int, list[int]]:
    """ResNet params (stem..res5) and stage channels, from detectron2's build_resnet_backbone: BasicStem
    (7x7 conv 3->64), BottleneckBlock (1x1 in->b, 3x3 b->b, 1x1 b->out) or BasicBlock (3x3, 3x3), a 1x1
    projection shortcut where in != out; convs have no bias (a norm follows)."""
    blocks = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}[depth]
    bottleneck = depth >= 50
    total, cin, channels = conv(3, 64, 7, False), 64, []
    for stage, n in enumerate(blocks):
        width = 64 * 2**stage
        cout = width * 4 if bottleneck else width
        for block in range(n):
            c = cin if block == 0 else cout
            if bottleneck:
                total += conv(c, width, 1, False) + conv(width, width, 3, False) + conv(width, cout, 1, False)
            else:
                total += conv(c, cout, 3, False) + conv(cout, cout, 3, False)
            total += conv(c, cout, 1, False) if c != cout else 0
        cin = cout
        channels.append(cout)
    return total, channels


def d2_rpn(channels: int, anchors: int) -> int:
    """StandardRPNHead: 3x3 conv, objectness 1x1, deltas 1x1 (all with bias)."""
    return (
        conv(channels, channels, 3, True)
        + conv(channels, anchors, 1, True)
        + conv(channels, 4 * anchors, 1, True)
    )


def d2_predictors(feature_dim: int, categories: int) -> int:
    """FastRCNNOutputLayers: class scores (K + 1) and class-specific box deltas (4K)."""
    return linear(feature_dim, categories + 1) + linear(feature_dim, 4 * categories)


def d2_mask_head(in_channels: int, convs: int, categories: int) -> int:
    """MaskRCNNConvUpsampleHead: `convs` 3x3 convs (256), 2x2 deconv (256), 1x1 predictor (K)."""
    total = sum(conv(in_channels if i == 0 else 256, 256, 3, True) for i in range(convs))
    deconv_in = in_channels if convs == 0 else 256
    return total + conv(deconv_in, 256, 2, True) + conv(256, categories, 1, True)


def detectron2_parameters(arch: str, categories: int) -> int:
    resnet, (c2, c3, c4, c5) = d2_resnet(50)
    if arch == "R50-FPN":
        fpn = sum(conv(c, 256, 1, True) for c in (c2, c3, c4, c5)) + 4 * conv(256, 256, 3, True)
        box_head = linear(256 * 7 * 7, 1024) + linear(1024, 1024)
        heads = d2_rpn(256, 3) + box_head + d2_predictors(1024, categories) + d2_mask_head(256, 4, categories)
        return resnet + fpn + heads
    if arch == "R50-C4":  # res5 is counted in `resnet`: Res5ROIHeads holds it instead of the backbone
        return resnet + d2_rpn(c4, 15) + d2_predictors(c5, categories) + d2_mask_head(c5, 0, categories)
    box_head = linear(c5 * 7 * 7, 1024) + linear(1024, 1024)
    return (
        resnet + d2_rpn(c5, 15) + box_head + d2_predictors(1024, categories) + d2_mask_head(c5, 4, categories)
    )


@pytest.mark.filterwarnings("ignore:Initializing zero-element tensors")
@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_parameter_counts_match_detectron2(labels, arch):
    coco = LabelSpace(tuple(range(80)), tuple(f"c{i}" for i in range(80)), (), (), ())
    feature_dim = 2048 if arch == "R50-C4" else 1024
    for space, reference in (
        (coco, detectron2_parameters(arch, 80)),
        (labels, detectron2_parameters(arch, 46) + linear(feature_dim, labels.num_attributes)),
    ):
        with torch.device("meta"):
            ours = count_parameters(build_model(ModelConfig(arch=arch, norm="frozen_bn"), space, **SIZE))
        name = f"{arch}, {space.num_classes} classes, {space.num_attributes} attributes"
        print(f"{name}: {ours:,} parameters (detectron2 {reference:,})")
        # exactly detectron2's, plus torchvision's background outputs: 4 box deltas on the box features
        # (with their biases) and one more mask channel (a 1x1 conv over 256 channels, with its bias)
        assert ours == reference + 4 * (feature_dim + 1) + (256 + 1), name
    assert detectron2_parameters("R50-FPN", 80) == pytest.approx(44.4e6, rel=0.01)


# Each architecture's losses on its first training step from seed 0, in float32 on one thread (detectron2
# pins its models the same way): a change to a layer, an initialisation or a loss shows up here. Measured on
# an AMD EPYC; the 1% tolerance absorbs another CPU kind's last bits, not a changed model.
FIRST_STEP_LOSSES = {
    "R50-FPN": {
        "loss_classifier": 3.824433,
        "loss_box_reg": 0.522946,
        "loss_mask": 2.422989,
        "loss_attribute": 135.70433,
        "loss_objectness": 0.674819,
        "loss_rpn_box_reg": 0.162075,
    },
    "R50-C4": {
        "loss_classifier": 3.560911,
        "loss_box_reg": 0.561577,
        "loss_mask": 0.764309,
        "loss_attribute": 134.858261,
        "loss_objectness": 0.754062,
        "loss_rpn_box_reg": 0.167105,
    },
    "R50-DC5": {
        "loss_classifier": 3.841625,
        "loss_box_reg": 0.430636,
        "loss_mask": 1.357756,
        "loss_attribute": 135.422272,
        "loss_objectness": 0.745697,
        "loss_rpn_box_reg": 0.1891,
    },
}


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_seeded_first_step_losses_are_pinned(labels, arch):
    model = build(labels, arch)
    model.train()
    torch.manual_seed(0)
    with torch.no_grad():
        losses = {k: float(v) for k, v in model(*batch(labels, WITH_ATTRIBUTES)).items()}
    assert losses == pytest.approx(FIRST_STEP_LOSSES[arch], rel=0.01), losses


def test_frozen_bn_weights_load_into_the_default_model_and_predict_the_same(labels):
    frozen = build(labels, "R50-FPN", depth=18, norm="frozen_bn").eval()
    for module in frozen.modules():
        if isinstance(module, FrozenBatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 2.0)
    default = build(labels, "R50-FPN", depth=18).eval()
    default.load_state_dict(frozen.state_dict())
    image = [torch.rand(3, H, W)]
    with torch.no_grad():
        a, b = frozen(image)[0], default(image)[0]
    torch.testing.assert_close(a["boxes"], b["boxes"])
    torch.testing.assert_close(a["attribute_scores"], b["attribute_scores"])


@pytest.fixture
def offline_torch_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty TORCH_HOME, and downloads that fail as they do without internet."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def no_internet(url: str, *args: object, **kwargs: object) -> None:
        raise URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_internet)
    return tmp_path


@pytest.mark.parametrize(
    ("arch", "depth", "weights", "file", "command"),
    [
        ("R50-C4", 18, "imagenet", "resnet18-f37072fd.pth", "ResNet18_Weights.IMAGENET1K_V1.get_state_dict"),
        (
            "R50-FPN",
            50,
            "coco",
            "maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth",
            "MaskRCNN_ResNet50_FPN_Weights.COCO_V1",
        ),
    ],
)
def test_missing_weight_file_says_what_to_download(
    labels, offline_torch_home, arch, depth, weights, file, command
):
    with pytest.raises(FashionsegError) as err:
        build_model(ModelConfig(arch=arch, depth=depth, weights=weights), labels, **SIZE)
    message = str(err.value)
    assert str(offline_torch_home / "hub" / "checkpoints" / file) in message
    assert command in message and "TORCH_HOME" in message and f"weights={weights}" in message


def test_imagenet_weights_load_from_the_cache_and_freeze_the_stem_and_res2(labels, offline_torch_home):
    state = resnet18().state_dict()
    state["conv1.weight"].fill_(0.5)
    checkpoints = offline_torch_home / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    torch.save(state, checkpoints / "resnet18-f37072fd.pth")
    model = build_model(ModelConfig(arch="R50-DC5", depth=18, weights="imagenet"), labels, **SIZE)
    body = model.backbone.body
    assert torch.equal(body.conv1.weight, state["conv1.weight"])
    assert torch.equal(body.layer3[0].conv1.weight, state["layer3.0.conv1.weight"])
    assert not body.conv1.weight.requires_grad and not body.layer1[0].conv1.weight.requires_grad
    assert body.layer2[0].conv1.weight.requires_grad
    assert isinstance(body.layer1[0].bn1, FrozenBatchNorm2d) and isinstance(
        body.layer2[0].bn1, FrozenBatchNorm2d
    )


def test_coco_weights_load_and_class_heads_are_reinitialised(labels, offline_torch_home):
    torch.manual_seed(0)
    stock = maskrcnn_resnet50_fpn(weights=None, weights_backbone=None).state_dict()
    checkpoints = offline_torch_home / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    torch.save(stock, checkpoints / "maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth")
    model = build_model(tiny_config("R50-FPN", weights="coco"), labels, **SIZE)
    state = model.state_dict()
    for key in (
        "backbone.body.layer4.2.conv3.weight",
        "backbone.fpn.layer_blocks.3.0.weight",
        "rpn.head.conv.0.0.weight",
    ):
        assert torch.equal(state[key], stock[key])
    assert torch.equal(state["roi_heads.box_head.fc7.weight"], stock["roi_heads.box_head.fc7.weight"])
    assert state["roi_heads.box_predictor.cls_score.weight"].shape == (labels.num_classes, 1024)
    assert state["roi_heads.mask_predictor.mask_fcn_logits.weight"].shape[0] == labels.num_classes


def test_weight_choices_that_cannot_work_are_explained(labels, tmp_path):
    with pytest.raises(FashionsegError, match="R50-FPN with depth 50"):
        build_model(ModelConfig(arch="R50-C4", weights="coco"), labels, **SIZE)
    with pytest.raises(FashionsegError, match="norm=gn"):
        build_model(ModelConfig(weights="imagenet", norm="gn"), labels, **SIZE)
    with pytest.raises(FashionsegError, match="no such file"):
        build_model(ModelConfig(weights=str(tmp_path / "model_final.pt")), labels, **SIZE)
    with pytest.raises(FashionsegError, match="trainable_backbone_layers=7"):
        build_model(ModelConfig(weights="imagenet", trainable_backbone_layers=7), labels, **SIZE)


def test_checkpoint_weights_load_and_must_fit(labels, tmp_path):
    source = build(labels, "R50-C4", depth=18)
    path = tmp_path / "model_final.pt"
    torch.save({"model": source.state_dict(), "labels": labels.to_dict()}, path)
    loaded = build(labels, "R50-C4", depth=18, weights=str(path))
    # Fine-tuning from a checkpoint counts as pretrained: norm=auto freezes BN (no num_batches_tracked).
    source_state = source.state_dict()
    assert set(loaded.state_dict()) == {k for k in source_state if not k.endswith("num_batches_tracked")}
    for key, value in loaded.state_dict().items():
        assert torch.equal(value, source_state[key]), key
    with pytest.raises(FashionsegError, match=str(path)):
        build(labels, "R50-DC5", depth=18, weights=str(path))


def test_each_architecture_name_builds_its_own_architecture(labels):
    assert tuple(ARCHITECTURE_BUILDERS) == ARCHITECTURES
    with torch.device("meta"):
        fpn, c4, dc5 = (build_model(ModelConfig(arch=arch), labels, **SIZE) for arch in ARCHITECTURES)
    assert hasattr(fpn.backbone, "fpn") and not isinstance(fpn.roi_heads, Res5RoIHeads)
    assert isinstance(c4.roi_heads, Res5RoIHeads) and not hasattr(c4.backbone, "fpn")
    assert dc5.backbone.body.layer4[0].conv2.dilation == (2, 2) and not hasattr(dc5.backbone, "fpn")
