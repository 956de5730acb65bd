"""RoIAlign speed: torchvision's CPU op against fashionseg's sparse matrix product, at the demo shapes.

For each design's poolers (128x160 images, float32, torch's default threads): R50-C4 pools 2 x 16 RoIs
from res4 [2, 1024, 8, 10] to 14x14; R50-DC5 pools 32 RoIs from res5 [2, 2048, 8, 10] to 7x7 and 8 to
14x14; R50-FPN pools 64 RoIs across P2-P5 (256 channels) to 7x7 and 16 to 14x14 with MultiScaleRoIAlign.
Prints the median forward and forward+backward times of both and the largest difference of the outputs.
Run it on an otherwise idle CPU: a shared one times the other jobs too.

    python benchmarks/roi_align_speed.py
    python benchmarks/roi_align_speed.py --repeats 50 --threads 1
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from torch import Tensor
from torchvision.ops import MultiScaleRoIAlign
from torchvision.ops import roi_align as torchvision_roi_align

from fashionseg.models.roi_align import MatmulMultiScaleRoIAlign, roi_align

HEIGHT, WIDTH = 128, 160
FPN_LEVELS = {"0": 4, "1": 8, "2": 16, "3": 32}

Pool = Callable[[Tensor, list[Tensor]], Tensor]


def random_boxes(count: int, generator: torch.Generator) -> Tensor:
    """[count, 4] boxes inside a HEIGHT x WIDTH image, 8 px to the whole image on a side."""
    size = torch.rand(count, 2, generator=generator) * torch.tensor([WIDTH - 8, HEIGHT - 8]) + 8
    corner = torch.rand(count, 2, generator=generator) * (torch.tensor([WIDTH, HEIGHT]) - size)
    return torch.cat([corner, corner + size], dim=1)


def median_ms(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``fn()`` in milliseconds, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def single_level(channels: int, size: int, scale: float) -> tuple[Pool, Pool, Callable[[], Tensor]]:
    """torchvision's and fashionseg's RoIAlign on one stride-16 map (ROIAlignV2: aligned, adaptive)."""

    def reference(x: Tensor, boxes: list[Tensor]) -> Tensor:
        return torchvision_roi_align(x, boxes, size, scale, 0, True)

    def matmul(x: Tensor, boxes: list[Tensor]) -> Tensor:
        return roi_align(x, boxes, size, scale, 0, True)

    def features() -> Tensor:
        return torch.randn(2, channels, HEIGHT // 16, WIDTH // 16, requires_grad=True)

    return reference, matmul, features


def fpn(size: int) -> tuple[Pool, Pool, Callable[[], dict[str, Tensor]]]:
    """torchvision's MultiScaleRoIAlign and fashionseg's, on P2-P5 (sampling ratio 2, as build_fpn)."""
    names = list(FPN_LEVELS)
    reference_pool = MultiScaleRoIAlign(names, output_size=size, sampling_ratio=2)
    matmul_pool = MatmulMultiScaleRoIAlign(names, output_size=size, sampling_ratio=2)
    shapes = [(HEIGHT, WIDTH)] * 2

    def reference(x: dict[str, Tensor], boxes: list[Tensor]) -> Tensor:
        return reference_pool(x, boxes, shapes)

    def matmul(x: dict[str, Tensor], boxes: list[Tensor]) -> Tensor:
        return matmul_pool(x, boxes, shapes)

    def features() -> dict[str, Tensor]:
        return {
            name: torch.randn(2, 256, HEIGHT // s, WIDTH // s, requires_grad=True)
            for name, s in FPN_LEVELS.items()
        }

    return reference, matmul, features


def step_fn(pool: Pool, features: object, boxes: list[Tensor], leaves: object) -> Callable[[], None]:
    """Forward and backward through ``pool``, clearing the feature maps' gradients first."""
    leaves = leaves if isinstance(leaves, list) else [leaves]

    def step() -> None:
        for leaf in leaves:
            leaf.grad = None
        pool(features, boxes).sum().backward()

    return step


def time_case(pools: tuple[Pool, Pool], features: object, boxes: list[Tensor], repeats: int) -> list[float]:
    """Median forward times of both pools (no autograd), then their forward+backward times."""
    times = []
    with torch.no_grad():
        for pool in pools:
            times.append(median_ms(lambda pool=pool: pool(features, boxes), repeats))
    leaves = list(features.values()) if isinstance(features, dict) else features
    for pool in pools:
        times.append(median_ms(step_fn(pool, features, boxes, leaves), repeats))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(0)
    cases = [
        ("R50-C4 res4 -> 14x14", single_level(1024, 14, 1 / 16), 16),
        ("R50-DC5 res5 -> 7x7", single_level(2048, 7, 1 / 16), 16),
        ("R50-DC5 res5 -> 14x14", single_level(2048, 14, 1 / 16), 4),
        ("R50-FPN P2-P5 -> 7x7", fpn(7), 32),
        ("R50-FPN P2-P5 -> 14x14", fpn(14), 8),
    ]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, median of {args.repeats} (ms)")
    print(f"{'pooler':<24}{'RoIs':>5}{'tv fwd':>9}{'new fwd':>9}{'tv f+b':>9}{'new f+b':>9}{'max diff':>10}")
    for name, (reference, matmul, make_features), per_image in cases:
        features = make_features()
        boxes = [random_boxes(per_image, generator) for _ in range(2)]
        tv_fwd, new_fwd, tv_fb, new_fb = time_case((reference, matmul), features, boxes, args.repeats)
        with torch.no_grad():
            diff = (reference(features, boxes) - matmul(features, boxes)).abs().max().item()
        times = f"{tv_fwd:>9.2f}{new_fwd:>9.2f}{tv_fb:>9.2f}{new_fb:>9.2f}"
        print(f"{name:<24}{2 * per_image:>5}{times}{diff:>10.1e}")


if __name__ == "__main__":
    main()
