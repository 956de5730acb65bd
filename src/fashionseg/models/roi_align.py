"""RoIAlign on the CPU as a sparse matrix product, with torchvision's exact sampling rules.

torchvision's CPU ``roi_align`` is a scalar, single-threaded loop, and its backward (a scatter, one
sampling point and channel at a time) took 17-20% of a training step here. On the CPU each RoI bin is
instead a row of a bilinear-weight matrix ``W`` [K*S*S, N*H*W] (the bin's sampling points averaged:
torchvision's pre_calc, its out-of-map rule, clamping, adaptive grid and ``count``), so the backward is
``W^T @ grad`` and the forward ``W @ features`` [N*H*W, C], in MKL's sparse kernels, vectorised over
channels and on all threads. ``W`` is a constant: boxes get no gradient, as in torchvision. It is stored as
CSR: the weights are separable (a sampling point is dropped when its y or its x is off the map, and its
weight is ``wy * wx``), so each bin's row is the outer product of a short y window and a short x window of
the map, with sorted, unique columns. A dense ``W`` (the first design) did ``H*W / window`` times the
arithmetic and ran 2-8x slower here.

The forward takes the product only where bins average at least :data:`MIN_POINTS_FOR_MATMUL` sampling
points (R50-FPN's pooler); with fewer (R50-C4, R50-DC5: 1-2 points) torchvision's loop is cheaper, as the
product writes [K*S*S, C] and then transposes it to [K, C, S, S].

Results equal torchvision's up to float rounding: a bin's weights are summed per axis before they multiply
(torchvision sums ``wy * wx`` per point) and the products add in another order, so losses and gradients
of training change in the last bits (about 1e-7 relative per value), never by more; in float64 the two
agree to 1e-12 (tests/test_models_roi_align.py).

Off the CPU, for other dtypes (outside autocast), and for maps above :data:`MAX_MATMUL_POSITIONS`
positions, torchvision's own op runs.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable
from torch.nn.modules.utils import _pair
from torchvision.ops import MultiScaleRoIAlign
from torchvision.ops import roi_align as torchvision_roi_align
from torchvision.ops.poolers import _filter_input, _setup_scales

# The largest H*W (per image) pooled by the product. Its cost grows with the sampling points, plus layout
# copies of the whole map ([N, C, H, W] <-> [N*H*W, C]); measured on 2 x 256-channel maps, forward and
# backward, 8 or 64 RoIs (one thread, CPU time, shared CPU): 3-4x faster at 1280 positions, even (8 RoIs)
# to 4x faster (64) at 5120, 3.5x slower (8 RoIs) at 20480, as the copies leave the cache.
MAX_MATMUL_POSITIONS = 8192
MATMUL_DTYPES = (torch.float32, torch.float64)
# The forward takes the product when bins average this many sampling points (torchvision's loop costs one
# bilinear read per point and channel; the product a fixed cost per pooled value): R50-FPN's sampling ratio
# 2 (4 points) takes it; R50-C4's and R50-DC5's adaptive 1-2 points per bin keep torchvision's loop.
MIN_POINTS_FOR_MATMUL = 4
# CSR is "beta" in torch; the warning says nothing about these products, which the tests check.
warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")


def rois_from_boxes(boxes: Tensor | list[Tensor]) -> Tensor:
    """torchvision's RoI format: [K, 5] rows (image index, x1, y1, x2, y2) from per-image [R_i, 4] boxes."""
    if isinstance(boxes, Tensor):
        if boxes.dim() != 2 or boxes.shape[1] != 5:
            raise ValueError(f"boxes as one tensor must be [K, 5], got {tuple(boxes.shape)}")
        return boxes
    for b in boxes:
        if b.dim() != 2 or b.shape[1] != 4:
            raise ValueError(f"each image's boxes must be [R_i, 4], got {tuple(b.shape)}")
    if not boxes:
        raise ValueError("boxes must hold at least one image's [R_i, 4] tensor")
    index = [torch.full_like(b[:, :1], i) for i, b in enumerate(boxes)]
    return torch.cat([torch.cat(index), torch.cat(boxes)], dim=1)


def _axis_windows(
    start: Tensor, bin_size: Tensor, grid: Tensor, pooled: int, length: int
) -> tuple[Tensor, Tensor]:
    """One axis of the bilinear weights: per RoI and bin, the first map index ``first`` [K, P] of a window
    and the summed weights [K, P, L] of the window's L positions (the same L for every bin).

    ``start``, ``bin_size`` [K] are in map units; ``grid`` [K] is the number of sampling points per bin
    along this axis (0: none). A sampling point off [-1, length] gets weight 0 (torchvision drops the whole
    point when y or x is off, which the product of the two axes' weights reproduces).
    """
    dtype = start.dtype
    samples = max(int(grid.max()), 1) if grid.numel() else 1
    bins = torch.arange(pooled, dtype=dtype)[None, :, None]
    steps = torch.arange(samples, dtype=dtype)[None, None, :]
    size = bin_size[:, None, None]
    # torchvision's float order: (start + p * bin) + (i + .5) * bin / grid
    coord = (start[:, None, None] + bins * size) + (steps + 0.5) * size / grid.clamp(min=1).to(dtype)[
        :, None, None
    ]
    valid = (steps < grid[:, None, None]) & (coord >= -1) & (coord <= length)
    coord = torch.where(valid, coord.clamp(min=0), 0)
    low = coord.floor()
    edge = low >= length - 1
    low = torch.where(edge, float(length - 1), low)
    coord = torch.where(edge, low, coord)
    high = torch.where(edge, low, low + 1)
    frac = coord - low
    low, high = low.long(), high.long()

    big = length  # sentinel above every index, so invalid points never set a window's first index
    first = torch.where(valid, low, big).amin(dim=2)
    first = torch.where(first == big, 0, first)
    last = torch.where(valid, high, -1).amax(dim=2)
    width = int((last - first + 1).max()) if last.numel() else 1
    width = min(max(width, 1), length)
    first = torch.minimum(first, torch.full_like(first, length - width))

    offsets = torch.cat([low, high], dim=2) - first[:, :, None]
    weights = torch.cat([(1 - frac) * valid, frac * valid], dim=2)
    offsets = torch.where(torch.cat([valid, valid], dim=2), offsets, 0)
    window = torch.zeros(start.shape[0], pooled, width, dtype=dtype)
    return first, window.scatter_add_(2, offsets, weights)


def _roi_grids(
    rois: Tensor, output_size: tuple[int, int], spatial_scale: float, sampling_ratio: int, aligned: bool
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Per RoI [K]: x1, y1, width and height in map units, and the sampling grid (points per bin along y
    and x, at least 0), as torchvision's kernel computes them."""
    dtype = rois.dtype
    offset = 0.5 if aligned else 0.0
    coords = rois[:, 1:] * torch.tensor(spatial_scale, dtype=dtype) - offset
    x1, y1, x2, y2 = coords.unbind(dim=1)
    roi_w, roi_h = x2 - x1, y2 - y1
    if not aligned:
        # torchvision forces malformed RoIs to 1x1
        roi_w, roi_h = roi_w.clamp(min=1), roi_h.clamp(min=1)
    if sampling_ratio > 0:
        grid_h = torch.full(roi_h.shape, sampling_ratio, dtype=torch.long)
        grid_w = grid_h
    else:
        grid_h = torch.ceil(roi_h / output_size[0]).long()
        grid_w = torch.ceil(roi_w / output_size[1]).long()
    return x1, y1, roi_w, roi_h, grid_h.clamp(min=0), grid_w.clamp(min=0)


def mean_sampling_points(
    rois: Tensor, output_size: tuple[int, int], spatial_scale: float, sampling_ratio: int, aligned: bool
) -> float:
    """The mean number of sampling points per bin (torchvision's cost per pooled value and channel)."""
    if sampling_ratio > 0:
        return float(sampling_ratio**2)
    *_, grid_h, grid_w = _roi_grids(rois, output_size, spatial_scale, sampling_ratio, aligned)
    return float((grid_h * grid_w).float().mean()) if rois.shape[0] else 0.0


def bilinear_weights(
    rois: Tensor,
    feature_shape: tuple[int, int, int, int],
    output_size: tuple[int, int],
    spatial_scale: float,
    sampling_ratio: int,
    aligned: bool,
) -> tuple[Tensor, Tensor, Tensor, tuple[int, int]]:
    """RoIAlign as a matrix: CSR ``(crow_indices, col_indices, values, shape)`` of ``W`` [K*Sh*Sw, N*H*W].

    Row ``(k, ph, pw)`` averages the bilinear weights of bin (ph, pw) of RoI k over the N*H*W positions of
    the channels-last map, following torchvision's CPU kernel (roi_align_common.h, pre_calc). Each row has
    the same number of stored entries (a y window times an x window, explicit zeros included), with sorted,
    unique columns. ``rois`` [K, 5] (image index, x1, y1, x2, y2) in image coordinates.
    """
    n, _, height, width = feature_shape
    pooled_h, pooled_w = output_size
    x1, y1, roi_w, roi_h, grid_h, grid_w = _roi_grids(
        rois, output_size, spatial_scale, sampling_ratio, aligned
    )
    count = (grid_h * grid_w).clamp(min=1).to(rois.dtype)

    first_y, wy = _axis_windows(y1, roi_h / pooled_h, grid_h, pooled_h, height)
    first_x, wx = _axis_windows(x1, roi_w / pooled_w, grid_w, pooled_w, width)
    wy = wy / count[:, None, None]
    rows_y = first_y[:, :, None] + torch.arange(wy.shape[2])  # [K, Sh, Ly]
    cols_x = first_x[:, :, None] + torch.arange(wx.shape[2])  # [K, Sw, Lx]
    image = rois[:, 0].long() * (height * width)
    # [K, Sh, Sw, Ly, Lx]: row-major positions, ascending along each row of W
    cols = (image[:, None, None, None, None] + rows_y[:, :, None, :, None] * width) + cols_x[
        :, None, :, None, :
    ]
    values = wy[:, :, None, :, None] * wx[:, None, :, None, :]
    rows = rois.shape[0] * pooled_h * pooled_w
    per_row = wy.shape[2] * wx.shape[2]
    crow = torch.arange(rows + 1, dtype=torch.long) * per_row
    return crow, cols.reshape(-1), values.reshape(-1), (rows, n * height * width)


class _SparseRoIAlign(torch.autograd.Function):
    """RoIAlign with the backward ``W^T @ grad``; the forward is ``W @ features`` where bins average at
    least :data:`MIN_POINTS_FOR_MATMUL` sampling points, else torchvision's loop (cheaper per pooled value
    there: the product writes [K*S*S, C] and then transposes it to [K, C, S, S])."""

    @staticmethod
    def forward(
        ctx: Any,
        input: Tensor,
        rois: Tensor,
        output_size: tuple[int, int],
        spatial_scale: float,
        sampling_ratio: int,
        aligned: bool,
    ) -> Tensor:
        ctx.save_for_backward(rois)
        ctx.args = (tuple(input.shape), output_size, spatial_scale, sampling_ratio, aligned)
        if (
            mean_sampling_points(rois, output_size, spatial_scale, sampling_ratio, aligned)
            < MIN_POINTS_FOR_MATMUL
        ):
            # the weights wait for the backward: inference never builds them
            return torchvision_roi_align(input, rois, output_size, spatial_scale, sampling_ratio, aligned)
        n, channels, height, width = input.shape
        features = input.permute(0, 2, 3, 1).reshape(n * height * width, channels)
        pooled = torch.sparse.mm(_weight_matrix(rois, *ctx.args), features)
        return pooled.reshape(rois.shape[0], *output_size, channels).permute(0, 3, 1, 2).contiguous()

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor | None, ...]:
        (rois,) = ctx.saved_tensors
        n, channels, height, width = ctx.args[0]
        matrix = _weight_matrix(rois, *ctx.args)
        rows = grad.permute(0, 2, 3, 1).reshape(matrix.shape[0], channels)
        grad_input = torch.sparse.mm(matrix.t(), rows)  # [N*H*W, C]
        grad_input = grad_input.reshape(n, height, width, channels).permute(0, 3, 1, 2).contiguous()
        return grad_input, None, None, None, None, None


def _weight_matrix(rois: Tensor, *args: Any) -> Tensor:
    """:func:`bilinear_weights` of ``rois`` and ``args`` (its other arguments, as ``ctx.args`` keeps them)
    as a sparse CSR tensor (valid by construction, so unchecked)."""
    crow, cols, values, shape = bilinear_weights(rois, *args)
    return torch.sparse_csr_tensor(crow, cols, values, shape, check_invariants=False)


def _roi_align_matmul(input: Tensor, rois: Tensor, *args: Any) -> Tensor:
    """[K, C, Sh, Sw] from the sparse bilinear-weight matrix (boxes get no gradient, as in torchvision);
    ``args``: output_size, spatial_scale, sampling_ratio, aligned (as :meth:`_SparseRoIAlign.forward`)."""
    return _SparseRoIAlign.apply(input, rois.detach(), *args)


def uses_matmul(input: Tensor) -> bool:
    """Whether :func:`roi_align` takes the matrix path for this feature map (CPU, small, float)."""
    return input.device.type == "cpu" and input.shape[-2] * input.shape[-1] <= MAX_MATMUL_POSITIONS


def roi_align(
    input: Tensor,
    boxes: Tensor | list[Tensor],
    output_size: int | tuple[int, int],
    spatial_scale: float = 1.0,
    sampling_ratio: int = -1,
    aligned: bool = False,
) -> Tensor:
    """``torchvision.ops.roi_align``, same arguments and result [K, C, Sh, Sw], computed as a sparse matrix
    product on small CPU maps (:func:`uses_matmul`), else by torchvision.

    ``input`` [N, C, H, W]; ``boxes`` [K, 5] (image index, x1, y1, x2, y2) or per-image [R_i, 4]. As under
    torchvision's autocast registration, under CPU autocast the map and boxes are cast to float32, the op
    runs in float32 and the result comes back in the map's dtype.
    """
    output_size = _pair(output_size)
    rois = rois_from_boxes(boxes)
    if not uses_matmul(input):
        return torchvision_roi_align(input, rois, output_size, spatial_scale, sampling_ratio, aligned)
    if torch.is_autocast_enabled("cpu"):
        # torchvision's autocast casts floating maps to float32 except float64
        dtype = torch.float64 if input.dtype == torch.float64 else torch.float32
        with torch.autocast("cpu", enabled=False):
            pooled = _roi_align_matmul(
                input.to(dtype), rois.to(dtype), output_size, spatial_scale, sampling_ratio, aligned
            )
        return pooled.to(input.dtype)
    if input.dtype not in MATMUL_DTYPES:
        return torchvision_roi_align(input, rois, output_size, spatial_scale, sampling_ratio, aligned)
    return _roi_align_matmul(input, rois.to(input.dtype), output_size, spatial_scale, sampling_ratio, aligned)


class MatmulMultiScaleRoIAlign(MultiScaleRoIAlign):
    """torchvision's ``MultiScaleRoIAlign`` (same arguments, level mapping and inferred scales) pooling
    each level with :func:`roi_align`.

    ``forward(features {name: [N, C, H_l, W_l]}, boxes [R_i, 4] per image, image_shapes)``
    -> [sum R_i, C, S, S].
    """

    def forward(
        self, x: dict[str, Tensor], boxes: list[Tensor], image_shapes: list[tuple[int, int]]
    ) -> Tensor:
        features = _filter_input(x, self.featmap_names)
        if self.scales is None or self.map_levels is None:
            self.scales, self.map_levels = _setup_scales(
                features, image_shapes, self.canonical_scale, self.canonical_level
            )
        rois = rois_from_boxes(boxes)
        if len(features) == 1:
            return roi_align(features[0], rois, self.output_size, self.scales[0], self.sampling_ratio)
        levels = self.map_levels(boxes)
        first = features[0]
        result = first.new_zeros((rois.shape[0], first.shape[1], *self.output_size))
        for level, (feature, scale) in enumerate(zip(features, self.scales, strict=True)):
            index = torch.where(levels == level)[0]
            pooled = roi_align(feature, rois[index], self.output_size, scale, self.sampling_ratio)
            # levels may come in different dtypes under autocast; index_put needs result's
            result[index] = pooled.to(result.dtype)
        return result
