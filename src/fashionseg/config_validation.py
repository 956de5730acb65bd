"""The ranges and paths every configuration value is checked against (:func:`fashionseg.config.validate`):
tables only, no rules between keys (those live beside ``validate``)."""

from __future__ import annotations

import math
from dataclasses import dataclass

# The choices of the enumerated keys (models check them again where they are used; they live here, where no
# torch import is needed).
DEPTHS = (18, 34, 50, 101)
NORMS = ("auto", "frozen_bn", "bn", "gn")
HEAD_NORMS = ("none", "gn")
LR_SCHEDULERS = ("WarmupMultiStepLR", "WarmupCosineLR")
WEIGHT_NAMES = ("none", "trunk", "imagenet", "coco")
DEVICES = ("auto", "cpu", "cuda", "cuda:N")
# Image sides in pixels: below the ResNet's stride of 32 the last stage has no pixel left; above 10,000 an
# image is past the decompression-bomb guard of data.images (100 million pixels).
MIN_SIDE, MAX_SIDE = 32, 10_000
SEED_LIMIT = 2**32  # numpy's seeds are 0 .. 2**32 - 1


@dataclass(frozen=True)
class Range:
    """The values a number may take: ``low``/``high`` (None: unbounded), each end open or closed."""

    low: float | None = None
    high: float | None = None
    integer: bool = True
    open_low: bool = False
    open_high: bool = False

    def __contains__(self, value: object) -> bool:
        if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.open_low else value < self.low):
            return False
        return self.high is None or (value < self.high if self.open_high else value <= self.high)

    def __str__(self) -> str:
        kind = "an integer" if self.integer else "a finite number"
        if self.low is not None and self.high is not None:
            left, right = "(" if self.open_low else "[", ")" if self.open_high else "]"
            return f"{kind} in {left}{_number(self.low)}, {_number(self.high)}{right}"
        if self.low is not None:
            return f"{kind} {'>' if self.open_low else '>='} {_number(self.low)}"
        return kind


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


_POSITIVE = Range(1)
_NON_NEGATIVE = Range(0)
_PROBABILITY = Range(0, 1, integer=False)
_SIDE = Range(MIN_SIDE, MAX_SIDE)
_SEED = Range(0, SEED_LIMIT - 1)

# dotted key -> the range of its value (None and each element of a list checked alike)
RANGES: dict[str, Range] = {
    "seed": _SEED,
    "data.synth_train": _POSITIVE,
    "data.synth_val": _POSITIVE,
    "data.synth_size": _SIDE,
    "data.synth_seed": _SEED,
    "data.min_size": _SIDE,
    "data.max_size": _SIDE,
    "data.hflip_prob": _PROBABILITY,
    "data.max_images": _POSITIVE,
    "data.categories": _NON_NEGATIVE,
    "data.num_workers": _NON_NEGATIVE,
    "model.trainable_backbone_layers": Range(0, 5),
    "model.anchor_sizes": _POSITIVE,
    "model.rpn_pre_nms_top_n_train": _POSITIVE,
    "model.rpn_post_nms_top_n_train": _POSITIVE,
    "model.rpn_pre_nms_top_n_test": _POSITIVE,
    "model.rpn_post_nms_top_n_test": _POSITIVE,
    "model.rpn_batch_size_per_image": _POSITIVE,
    "model.box_batch_size_per_image": _POSITIVE,
    "model.box_positive_fraction": Range(0, 1, integer=False, open_low=True),
    "model.box_score_thresh": _PROBABILITY,
    "model.box_detections_per_img": _POSITIVE,
    "model.attribute_loss_weight": Range(0, integer=False),
    "model.attribute_threshold": _PROBABILITY,
    "model.attribute_prior": Range(0, 1, integer=False, open_low=True, open_high=True),
    "solver.ims_per_batch": _POSITIVE,
    "solver.base_lr": Range(0, integer=False, open_low=True),
    "solver.reference_batch": _POSITIVE,
    "solver.momentum": Range(0, 1, integer=False, open_high=True),
    "solver.weight_decay": Range(0, integer=False),
    "solver.resnet_lr_factor": Range(0, integer=False, open_low=True),
    "solver.attribute_lr_factor": Range(0, integer=False, open_low=True),
    "solver.max_iter": _POSITIVE,
    "solver.steps": _POSITIVE,
    "solver.gamma": Range(0, 1, integer=False, open_low=True),
    "solver.warmup_iters": _NON_NEGATIVE,
    "solver.warmup_factor": _PROBABILITY,
    "solver.clip_grad_norm": Range(0, integer=False, open_low=True),
    "solver.checkpoint_period": _POSITIVE,
    "solver.eval_period": _NON_NEGATIVE,
    "solver.eval_images": _POSITIVE,
}
