"""The accumulate (:mod:`fashionseg.evaluation.curves`) against ``COCOeval.accumulate``'s loop."""

from __future__ import annotations

import numpy as np

from fashionseg.evaluation.curves import precision_recall, recall_steps
from fashionseg.evaluation.params import RECALL_THRESHOLDS


def _coco_curve(tps: np.ndarray, fps: np.ndarray, num_gt: int) -> tuple[list[float], float]:
    """COCOeval.accumulate's loop for one curve, as pycocotools writes it."""
    tp, fp = np.cumsum(tps).astype(float), np.cumsum(fps).astype(float)
    rc, pr = tp / num_gt, (tp / (fp + tp + np.spacing(1))).tolist()
    for i in range(len(tp) - 1, 0, -1):
        if pr[i] > pr[i - 1]:
            pr[i - 1] = pr[i]
    q = [0.0] * len(RECALL_THRESHOLDS)
    for ri, pi in enumerate(np.searchsorted(rc, RECALL_THRESHOLDS, side="left")):
        if pi >= len(pr):
            break
        q[ri] = pr[pi]
    return q, (rc[-1] if len(tp) else 0.0)


def test_precision_recall_equals_cocoeval_accumulate() -> None:
    rng = np.random.default_rng(1)
    for _ in range(100):
        n, curves = int(rng.integers(0, 40)), int(rng.integers(1, 6))
        state = rng.integers(0, 3, (n, curves))  # true positive, false positive, ignored
        tps, neutral = state == 0, state == 2
        rank = rng.integers(0, 20, n)
        num_gt = np.maximum(rng.integers(1, 15, curves), tps.sum(axis=0))
        precision, recall = precision_recall(tps.T, neutral.T, rank, num_gt)
        for x in range(curves):
            q, final = _coco_curve(tps[:, x], state[:, x] == 1, int(num_gt[x]))
            assert precision[x].tolist() == q
            assert recall[x, -1] == final
            top10 = rank < 10
            assert recall[x, 1] == _coco_curve(tps[top10, x], state[top10, x] == 1, int(num_gt[x]))[1]


def test_recall_steps_equal_cocoeval_searchsorted() -> None:
    """The true positives each recall threshold needs, as COCOeval finds them on tp / num_gt."""
    counts = np.r_[np.arange(1, 3001), [9999, 10007, 65536, 123457]]
    expected = [np.searchsorted(np.arange(c + 1) / c, RECALL_THRESHOLDS, side="left") for c in counts]
    assert np.array_equal(recall_steps(counts), np.stack(expected))
