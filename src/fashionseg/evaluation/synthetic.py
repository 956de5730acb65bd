"""Random evaluation inputs, for checking the evaluation against its references (the tests and
``benchmarks/eval_vs_official.py``); nothing that computes a metric imports this."""

from __future__ import annotations

import numpy as np


def jittered_box(
    box: list[float], rng: np.random.Generator, amount: float, width: int, height: int
) -> list[float]:
    """``box`` [x, y, w, h] moved and resized by normal noise of ``amount`` times its size, kept inside the
    ``width`` x ``height`` image and at least 2 px a side: a detection near a ground truth, or an overlapping
    instance of the same category."""
    x, y, w, h = box
    w2 = float(np.clip(w * (1 + rng.normal(0, amount)), 2, width - 1))
    h2 = float(np.clip(h * (1 + rng.normal(0, amount)), 2, height - 1))
    x2 = float(np.clip(x + rng.normal(0, amount) * w, 0, width - w2))
    y2 = float(np.clip(y + rng.normal(0, amount) * h, 0, height - h2))
    return [x2, y2, w2, h2]
