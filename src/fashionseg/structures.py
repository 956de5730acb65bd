"""The detections of one image (:class:`Prediction`) and their COCO-results form (:func:`to_coco_results`).

Plain data, no model: made by :mod:`fashionseg.predict`, drawn by :mod:`fashionseg.visualization`, shown by
the app and counted by the trend statistics, each of which imports it from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pycocotools.mask as mask_utils

from fashionseg.data.ontology import LabelSpace


@dataclass(frozen=True)
class Prediction:
    """The detections of one image, in its pixel coordinates.

    boxes float32 [N, 4] (x1, y1, x2, y2); scores float32 [N]; category_ids int64 [N] (dataset ids);
    masks bool [N, H, W]; attribute_scores float32 [N, A] (columns follow ``LabelSpace.attribute_ids``);
    attribute_ids: N lists of the attribute ids scoring at least the model's attribute threshold.
    """

    boxes: np.ndarray
    scores: np.ndarray
    category_ids: np.ndarray
    masks: np.ndarray
    attribute_scores: np.ndarray
    attribute_ids: list[list[int]]

    def __len__(self) -> int:
        return len(self.scores)

    def select(self, keep: np.ndarray) -> Prediction:
        """The detections where ``keep`` (bool [N] or indices) holds."""
        idx = np.flatnonzero(keep) if keep.dtype == bool else keep
        return Prediction(
            self.boxes[idx],
            self.scores[idx],
            self.category_ids[idx],
            self.masks[idx],
            self.attribute_scores[idx],
            [self.attribute_ids[i] for i in idx],
        )


def to_coco_results(pred: Prediction, image_id: int, labels: LabelSpace) -> list[dict[str, Any]]:
    """One COCO-results dict per detection: bbox (x, y, w, h), RLE segmentation, score and attributes."""
    column = {a: j for j, a in enumerate(labels.attribute_ids)}
    results = []
    if len(pred):
        rles = mask_utils.encode(np.asfortranarray(pred.masks.astype(np.uint8).transpose(1, 2, 0)))
    for i in range(len(pred)):
        x1, y1, x2, y2 = (float(v) for v in pred.boxes[i])
        rle = rles[i]
        ids = pred.attribute_ids[i]
        results.append(
            {
                "image_id": int(image_id),
                "category_id": int(pred.category_ids[i]),
                "bbox": [round(x1, 2), round(y1, 2), round(x2 - x1, 2), round(y2 - y1, 2)],
                "score": round(float(pred.scores[i]), 5),
                "segmentation": {
                    "size": [int(s) for s in rle["size"]],
                    "counts": rle["counts"].decode("ascii"),
                },
                "attribute_ids": ids,
                "attribute_scores": [round(float(pred.attribute_scores[i, column[a]]), 4) for a in ids],
            }
        )
    return results
