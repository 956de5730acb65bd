"""fashionseg.models.roi_align: the sparse-product RoIAlign equals torchvision's op and pooler."""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
from torch import Tensor
from torchvision.ops import MultiScaleRoIAlign
from torchvision.ops import roi_align as torchvision_roi_align

from fashionseg.models import roi_align as ra
from fashionseg.models.roi_align import MatmulMultiScaleRoIAlign, bilinear_weights, roi_align

TOL = {"atol": 1e-5, "rtol": 1e-5}


def boxes_for(count: int, height: int, width: int, generator: torch.Generator) -> Tensor:
    """[count, 4] image-space boxes: inside, partly and fully outside the image, and zero-width ones."""
    size = torch.rand(count, 2, generator=generator) * torch.tensor([width, height]) * 1.2
    corner = torch.rand(count, 2, generator=generator) * torch.tensor([width, height]) * 1.4
    corner -= torch.tensor([width, height]) * 0.2
    boxes = torch.cat([corner, corner + size], dim=1)
    boxes[::5, 2] = boxes[::5, 0]  # zero width
    if count > 3:
        boxes[3] = torch.tensor([width + 20.0, height + 30.0, width + 60.0, height + 90.0])  # off the image
    return boxes


def compare(
    features: Tensor,
    boxes: Tensor | list[Tensor],
    size: int,
    scale: float,
    sampling_ratio: int,
    aligned: bool,
) -> tuple[float, float]:
    """Asserts forward and input gradient match torchvision's; returns their largest absolute differences."""
    x = features.clone().requires_grad_()
    y = features.clone().requires_grad_()
    expected = torchvision_roi_align(x, boxes, size, scale, sampling_ratio, aligned)
    got = roi_align(y, boxes, size, scale, sampling_ratio, aligned)
    torch.testing.assert_close(got, expected, **TOL)
    grad = torch.randn(expected.shape, generator=torch.Generator().manual_seed(0))
    expected.backward(grad)
    got.backward(grad)
    torch.testing.assert_close(y.grad, x.grad, **TOL)
    forward = (got - expected).abs().max().item() if got.numel() else 0.0
    return forward, (y.grad - x.grad).abs().max().item()


@pytest.mark.parametrize("aligned", [True, False])
@pytest.mark.parametrize("sampling_ratio", [0, 2])
@pytest.mark.parametrize("size", [7, 14])
@pytest.mark.parametrize("scale", [1 / 16, 1 / 4])
def test_matches_torchvision(aligned: bool, sampling_ratio: int, size: int, scale: float) -> None:
    generator = torch.Generator().manual_seed(size + int(1 / scale) + sampling_ratio + aligned)
    height, width = 128, 160
    features = torch.randn(3, 8, int(height * scale), int(width * scale), generator=generator)
    # three images with 9, 0 and 5 boxes: the list form, an image without boxes in between
    boxes = [boxes_for(n, height, width, generator) for n in (9, 0, 5)]
    compare(features, boxes, size, scale, sampling_ratio, aligned)
    rois = torch.cat([torch.cat([torch.full((len(b), 1), float(i)), b], 1) for i, b in enumerate(boxes)])
    compare(features, rois, size, scale, sampling_ratio, aligned)


@pytest.mark.parametrize("aligned", [True, False])
def test_adaptive_grid_with_several_points(aligned: bool) -> None:
    """Large boxes on a fine map need grids of 2, 3 and more sampling points per bin along each axis;
    with four points and more the forward is the sparse product (MIN_POINTS_FOR_MATMUL)."""
    generator = torch.Generator().manual_seed(1)
    features = torch.randn(2, 4, 40, 48, generator=generator)
    boxes = [
        torch.tensor([[0.0, 0.0, 47.0, 39.0], [3.5, 2.25, 30.0, 38.0]]),
        torch.tensor([[10.0, 1.0, 45.5, 21.0], [5.0, 5.0, 6.0, 40.0], [2.0, 2.0, 40.0, 3.0]]),
    ]
    rois = torch.cat([torch.cat([torch.full((len(b), 1), float(i)), b], 1) for i, b in enumerate(boxes)])
    assert ra.mean_sampling_points(rois, (7, 7), 1.0, 0, aligned) >= ra.MIN_POINTS_FOR_MATMUL
    for size in (7, 14):
        compare(features, boxes, size, 1.0, 0, aligned)


def test_sparse_forward_and_loop_forward_both_match() -> None:
    """Both forwards (the product, and torchvision's loop below MIN_POINTS_FOR_MATMUL) match, and so do
    their backwards, which are always the product."""
    generator = torch.Generator().manual_seed(2)
    features = torch.randn(2, 16, 8, 10, generator=generator)
    boxes = [boxes_for(6, 128, 160, generator), boxes_for(4, 128, 160, generator)]
    for ratio in (1, 2, 3):
        compare(features, boxes, 14, 1 / 16, ratio, True)


def test_weights_are_a_valid_csr_matrix() -> None:
    """Sorted, unique columns per row: torch's CSR invariants hold (the products skip that check)."""
    generator = torch.Generator().manual_seed(3)
    rois = torch.cat([torch.zeros(6, 1), boxes_for(6, 128, 160, generator)], 1)
    for aligned in (True, False):
        crow, cols, values, shape = bilinear_weights(rois, (1, 8, 8, 10), (14, 14), 1 / 16, 0, aligned)
        torch.sparse_csr_tensor(crow, cols, values, shape, check_invariants=True)


def test_half_pixel_offset_is_detected() -> None:
    """The comparison can fail: ``aligned`` shifts the samples by half a pixel, and that shows."""
    generator = torch.Generator().manual_seed(4)
    features = torch.randn(1, 4, 8, 10, generator=generator)
    boxes = [torch.tensor([[16.0, 16.0, 100.0, 90.0]])]
    shifted = roi_align(features, boxes, 7, 1 / 16, 2, aligned=False)
    expected = torchvision_roi_align(features, boxes, 7, 1 / 16, 2, aligned=True)
    with pytest.raises(AssertionError):
        torch.testing.assert_close(shifted, expected, **TOL)


def test_float64_is_exact() -> None:
    """In float64 the two agree to rounding of float64 (the sampling rules are the same)."""
    generator = torch.Generator().manual_seed(5)
    features = torch.randn(2, 3, 16, 20, generator=generator, dtype=torch.float64)
    boxes = [boxes_for(7, 64, 80, generator).double(), boxes_for(3, 64, 80, generator).double()]
    for ratio in (0, 2):
        expected = torchvision_roi_align(features, boxes, 7, 1 / 4, ratio, True)
        torch.testing.assert_close(
            roi_align(features, boxes, 7, 1 / 4, ratio, True), expected, atol=1e-12, rtol=0
        )


def test_no_boxes_at_all() -> None:
    features = torch.randn(2, 5, 8, 10, requires_grad=True)
    pooled = roi_align(features, [torch.zeros(0, 4), torch.zeros(0, 4)], 7, 1 / 16, 0, True)
    assert pooled.shape == (0, 5, 7, 7)
    pooled.sum().backward()
    assert features.grad is not None and not features.grad.any()


def test_autocast_matches_torchvision_dtype() -> None:
    """Under CPU bf16 autocast torchvision pools in float32 and returns the map's dtype; so does this."""
    features = torch.randn(2, 8, 8, 10)
    boxes = [torch.tensor([[8.0, 8.0, 90.0, 100.0]]), torch.tensor([[0.0, 0.0, 160.0, 128.0]])]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        for x in (features, features.bfloat16()):
            expected = torchvision_roi_align(x, boxes, 7, 1 / 16, 0, True)
            got = roi_align(x, boxes, 7, 1 / 16, 0, True)
            assert got.dtype == expected.dtype == x.dtype
            torch.testing.assert_close(got.float(), expected.float(), atol=1e-2, rtol=1e-2)


def test_large_maps_use_torchvision() -> None:
    side = int(ra.MAX_MATMUL_POSITIONS**0.5) + 1
    assert not ra.uses_matmul(torch.zeros(1, 1, side, side))
    assert ra.uses_matmul(torch.zeros(1, 1, 8, 10))


@pytest.mark.parametrize("size", [7, 14])
def test_multiscale_pooler_matches_torchvision(size: int) -> None:
    generator = torch.Generator().manual_seed(size)
    height, width = 128, 160
    names = ["0", "1", "2", "3"]
    maps = OrderedDict(
        (name, torch.randn(2, 8, height // s, width // s, generator=generator))
        for name, s in zip(names, (4, 8, 16, 32), strict=True)
    )
    maps["pool"] = torch.randn(2, 8, 2, 3, generator=generator)  # P6: not pooled
    # small to whole-image boxes, so every level from P2 to P5 gets some
    boxes = [boxes_for(20, height, width, generator).clamp(min=0), torch.tensor([[0.0, 0.0, 160, 128]])]
    shapes = [(height, width), (height, width)]
    reference = MultiScaleRoIAlign(names, output_size=size, sampling_ratio=2)
    pooler = MatmulMultiScaleRoIAlign(names, output_size=size, sampling_ratio=2)
    expected_maps = OrderedDict((k, v.clone().requires_grad_()) for k, v in maps.items())
    got_maps = OrderedDict((k, v.clone().requires_grad_()) for k, v in maps.items())
    expected = reference(expected_maps, boxes, shapes)
    got = pooler(got_maps, boxes, shapes)
    assert pooler.scales == reference.scales
    torch.testing.assert_close(got, expected, **TOL)
    grad = torch.randn(expected.shape, generator=torch.Generator().manual_seed(0))
    expected.backward(grad)
    got.backward(grad)
    for name in names:
        torch.testing.assert_close(got_maps[name].grad, expected_maps[name].grad, **TOL)
