"""COCO's and FPEval's greedy matchers (:mod:`fashionseg.evaluation.matching`) where they differ, by hand."""

from __future__ import annotations

import numpy as np

from fashionseg.evaluation.matching import match_detections
from fashionseg.evaluation.params import F1_THRESHOLDS, IOU_THRESHOLDS


def test_held_match_must_beat_both_iou_and_f1() -> None:
    """FPEval keeps the first qualifying ground truth unless a later one beats its IoU *and* its F1.

    Detection A: IoU 0.62 / F1 1.0 with G1, IoU 0.93 / F1 0.6 with G2; detection B (lower score) overlaps
    G2 only (IoU 0.82). With the F1 constraint off (the IoU family) at IoU 0.5, A keeps G1 because G2's F1
    is lower, and B takes G2. COCO's IoU-only matcher gives A the higher IoU (G2) and leaves B unmatched.
    """
    ious = np.array([[[0.62, 0.93], [0.0, 0.82]]])
    f1s = np.array([[[1.0, 0.6], [0.3, 0.9]]])
    no_ignore = np.zeros((1, 2, 1), bool)
    keep = np.zeros((1, 2), bool)
    fp_matched, _ = match_detections(ious, f1s, no_ignore, keep, keep)
    coco_matched, _ = match_detections(ious, None, no_ignore, keep, keep)
    t50, t70, off = 0, int(np.argmin(abs(IOU_THRESHOLDS - 0.7))), -1
    assert fp_matched[0, :, t50, off, 0].tolist() == [True, True]
    assert coco_matched[0, :, t50, 0, 0].tolist() == [True, False]
    assert fp_matched[0, :, t70, off, 0].tolist() == [True, False]  # G1 fails IoU 0.7: A takes G2
    f175 = int(np.argmin(abs(F1_THRESHOLDS - 0.75)))
    assert fp_matched[0, :, t50, f175, 0].tolist() == [True, True]  # A-G1 (F1 1.0), B-G2 (F1 0.9)


def test_crowd_regions_match_many_detections_only_without_attributes() -> None:
    ious = np.array([[[0.9], [0.8]]])
    crowd = np.ones((1, 1, 1), bool)
    reusable, no_zero = np.ones((1, 1), bool), np.zeros((1, 1), bool)
    coco_matched, coco_ignored = match_detections(ious, None, crowd, reusable, no_zero)
    fp_matched, _ = match_detections(ious, np.ones((1, 2, 1)), crowd, ~reusable, no_zero)
    assert coco_matched[0, :, 0, 0, 0].tolist() == [True, True] and coco_ignored[0, :, 0, 0, 0].all()
    assert fp_matched[0, :, 0, 0, 0].tolist() == [True, False]
