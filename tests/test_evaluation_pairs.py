"""The pairs' IoUs and attribute F1s (:mod:`fashionseg.evaluation.pairs`): exactly pycocotools' and the
specification's floats."""

from __future__ import annotations

import numpy as np
from pycocotools import mask as mask_utils

from fashionseg.evaluation.pairs import attribute_f1_matrix, box_iou
from fashionseg.evaluation.reference import attribute_f1


def test_box_iou_is_pycocotools_bbiou() -> None:
    rng = np.random.default_rng(0)
    dt, gt = rng.uniform(0, 50, (3, 7, 4)), rng.uniform(0, 50, (3, 5, 4))
    gt[0, 1] = dt[0, 2]  # identical boxes
    gt[1, :, 2:] = 0.0  # empty boxes
    crowd = rng.random((3, 5)) < 0.4
    ours = box_iou(dt, gt, crowd)
    for p in range(3):
        assert np.array_equal(
            ours[p], mask_utils.iou(dt[p].tolist(), gt[p].tolist(), crowd[p].astype(np.uint8))
        )


def test_attribute_f1_matrix_is_the_specifications_f1() -> None:
    rng = np.random.default_rng(1)
    num = 30
    dt = rng.random((9, num)) < rng.random((9, 1)) * 0.5
    gt = rng.random((6, num)) < rng.random((6, 1)) * 0.5
    dt[0], gt[0], dt[1], gt[1] = False, False, True, True  # empty and full vectors
    f1 = attribute_f1_matrix(dt, gt)
    for i in range(9):
        for j in range(6):
            assert f1[i, j] == attribute_f1(np.flatnonzero(gt[j]), np.flatnonzero(dt[i]), num), (i, j)
