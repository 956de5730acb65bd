"""The thresholds, area ranges and detection limits of COCO's and Fashionpedia's evaluators, in one place.

pycocotools' ``COCOeval.Params`` and FPEval's ``FPParams``: every stage of the fast path and its
specification (:mod:`fashionseg.evaluation.reference`) read them from here.
"""

from __future__ import annotations

import numpy as np

# Exactly pycocotools' thresholds (np.linspace, not np.arange, whose points drift) plus FPEval's -1 entry,
# which switches that constraint off: the -1 F1 entry gives the IoU-only family, the -1 IoU entry the F1-only.
IOU_THRESHOLDS = np.append(np.linspace(0.5, 0.95, 10), -1.0)
F1_THRESHOLDS = np.append(np.linspace(0.5, 0.95, 10), -1.0)
RECALL_THRESHOLDS = np.linspace(0.0, 1.0, 101)
AREA_RANGES = {"all": (0, 1e5**2), "small": (0, 32**2), "medium": (32**2, 96**2), "large": (96**2, 1e5**2)}
MAX_DETECTIONS = (1, 10, 100)
