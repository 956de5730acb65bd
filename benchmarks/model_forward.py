"""Forward time of each architecture (eval and train mode) at the demo preset, and the attribute head's cost.

R50-FPN is timed against torchvision's stock ``maskrcnn_resnet50_fpn`` holding the same weights (ours minus
the attribute head) on the same batch, with the same RPN/RoI settings and the same random sampling, so the
difference is what the attribute head and our RoI-head code add (goal: at most 10%). Untrained models keep
many low-score detections, and inference runs the mask head (and C4's res5) on each of them: the eval
times are an upper bound for the preset's ``box_detections_per_img``.

    python benchmarks/model_forward.py                 # all cores, batch 4 at 160-192 px
    python benchmarks/model_forward.py --threads 1 --arch R50-FPN --repeats 10
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from torch import Tensor, nn
from torchvision.models.detection import maskrcnn_resnet50_fpn
from tqdm import tqdm

from fashionseg.config import ARCHITECTURES, ModelConfig, load_config
from fashionseg.data.ontology import LabelSpace, ontology_json
from fashionseg.models import build_model

STOCK = "torchvision maskrcnn_resnet50_fpn"


def synthetic_batch(
    labels: LabelSpace, batch: int, height: int, width: int
) -> tuple[list[Tensor], list[dict[str, Tensor]]]:
    """``batch`` random images [3, H, W] with three garments each (boxes, masks, labels, attributes)."""
    generator = torch.Generator().manual_seed(0)
    images, targets = [], []
    for _ in range(batch):
        images.append(torch.rand(3, height, width, generator=generator))
        x1 = torch.randint(0, width // 2, (3,), generator=generator).float()
        y1 = torch.randint(0, height // 2, (3,), generator=generator).float()
        boxes = torch.stack([x1, y1, x1 + width / 3, y1 + height / 3], dim=1)
        masks = torch.zeros(3, height, width, dtype=torch.uint8)
        for mask, (bx1, by1, bx2, by2) in zip(masks, boxes.int().tolist(), strict=True):
            mask[by1:by2, bx1:bx2] = 1
        attributes = (torch.rand(3, labels.num_attributes, generator=generator) < 0.02).float()
        label_ids = torch.randint(1, labels.num_classes, (3,), generator=generator)
        targets.append({"boxes": boxes, "labels": label_ids, "masks": masks, "attributes": attributes})
    return images, targets


def stock_maskrcnn(cfg: ModelConfig, num_classes: int, min_size: int, max_size: int) -> nn.Module:
    """torchvision's maskrcnn_resnet50_fpn with the same proposal/RoI settings as ``cfg``."""
    return maskrcnn_resnet50_fpn(
        weights=None,
        weights_backbone=None,
        num_classes=num_classes,
        min_size=min_size,
        max_size=max_size,
        rpn_pre_nms_top_n_train=cfg.rpn_pre_nms_top_n_train,
        rpn_post_nms_top_n_train=cfg.rpn_post_nms_top_n_train,
        rpn_pre_nms_top_n_test=cfg.rpn_pre_nms_top_n_test,
        rpn_post_nms_top_n_test=cfg.rpn_post_nms_top_n_test,
        rpn_batch_size_per_image=cfg.rpn_batch_size_per_image,
        box_batch_size_per_image=cfg.box_batch_size_per_image,
        box_score_thresh=cfg.box_score_thresh,
        box_detections_per_img=cfg.box_detections_per_img,
    )


def seconds(run: Callable[[], object]) -> float:
    """Wall time of one call; the RNG is reseeded so that RPN/RoI sampling is the same every call."""
    torch.manual_seed(0)
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def forward_calls(
    model: nn.Module, images: list[Tensor], targets: list[dict[str, Tensor]]
) -> dict[str, Callable[[], object]]:
    """The two timed calls: inference (eval, no grad) and the training forward (loss dict, no backward)."""

    def evaluate() -> object:
        model.eval()
        with torch.no_grad():
            return model(images)

    def train() -> object:
        model.train()
        return model(images, targets)

    return {"eval": evaluate, "train": train}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--arch", nargs="+", default=list(ARCHITECTURES), choices=ARCHITECTURES)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--height", type=int, default=160)
    parser.add_argument("--width", type=int, default=192)
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per model and mode (median)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    labels = LabelSpace.from_coco(ontology_json())
    images, targets = synthetic_batch(labels, args.batch, args.height, args.width)
    # The demo preset for each arch, with its per-arch adjustments; random weights (the stock twin's), as the
    # preset's trunk would only freeze stages and need its file
    presets = {arch: load_config("demo", {"model.arch": arch, "model.weights": "none"}) for arch in args.arch}

    # The models' internal resize matches the batch, so every model runs at --height x --width.
    min_size, max_size = min(args.height, args.width), max(args.height, args.width)
    models: dict[str, nn.Module] = {}
    for arch, preset in presets.items():
        torch.manual_seed(0)
        models[arch] = build_model(preset.model, labels, min_size=min_size, max_size=max_size)
        if arch == "R50-FPN":
            stock = stock_maskrcnn(preset.model, labels.num_classes, min_size, max_size)
            # Same weights as ours, so both detect the same boxes and run the mask head on as many of them.
            stock.load_state_dict(models[arch].state_dict(), strict=False)
            models[STOCK] = stock

    calls = {
        (name, mode): forward_calls(m, images, targets)[mode]
        for mode in ("eval", "train")
        for name, m in models.items()
    }
    # Warm-up (allocator, oneDNN kernels); the eval outputs say how many detections the mask head got.
    detections = {name: sum(len(d["boxes"]) for d in calls[(name, "eval")]()) / args.batch for name in models}
    for name in models:
        calls[(name, "train")]()
    times: dict[tuple[str, str], list[float]] = {key: [] for key in calls}
    order = list(calls)  # R50-FPN next to its stock twin
    with tqdm(total=args.repeats * len(calls), desc="timing", unit="call") as bar:
        for repeat in range(args.repeats):
            # The order reverses every round, so that a change in machine load hits all models alike.
            for key in order if repeat % 2 == 0 else order[::-1]:
                times[key].append(seconds(calls[key]))
                bar.update()

    setting = f"batch {args.batch} at {args.height}x{args.width}, {torch.get_num_threads()} threads"
    print(f"\nforward time, {setting}, median of {args.repeats} (the demo preset's RPN/RoI settings)")
    print(f"{'model':36} {'mode':5} {'s/batch':>8} {'images/s':>9} {'detections/image':>17}")
    median = {key: statistics.median(values) for key, values in times.items()}
    for (name, mode), value in median.items():
        per_image = f"{detections[name]:17.1f}" if mode == "eval" else ""
        print(f"{name:36} {mode:5} {value:8.3f} {args.batch / value:9.1f} {per_image}")
    if "R50-FPN" in models:
        for mode in ("eval", "train"):
            ours, stock_time = median[("R50-FPN", mode)], median[(STOCK, mode)]
            print(
                f"R50-FPN vs stock torchvision, {mode}: {100 * (ours / stock_time - 1):+.1f}% (goal: <= +10%)"
            )


if __name__ == "__main__":
    main()
