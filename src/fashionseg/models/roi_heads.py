"""RoI heads with attributes: torchvision's box and mask heads plus the attribute head, and detectron2's
Res5ROIHeads (R50-C4), where the res5 stage is the box head and also feeds the mask head.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.detection.roi_heads import (
    RoIHeads,
    fastrcnn_loss,
    maskrcnn_inference,
    maskrcnn_loss,
)
from torchvision.ops import boxes as box_ops

from fashionseg.models.attribute_head import attribute_loss, attribute_targets
from fashionseg.models.roi_align import roi_align


class SingleLevelRoIAlign(nn.Module):
    """RoIAlign on one named feature map, called like torchvision's ``MultiScaleRoIAlign``.

    ``forward(features {name: [B, C, H, W]}, boxes [R_i, 4] per image, image_shapes) -> [sum R_i, C, S, S]``.
    Defaults to detectron2's ROIAlignV2: ``aligned=True`` (half-pixel offset) and ``sampling_ratio=0``
    (adaptive number of samples per bin). Pools with :func:`fashionseg.models.roi_align.roi_align`
    (torchvision's result; its backward a sparse matrix product on the CPU).
    """

    def __init__(
        self,
        featmap_name: str,
        output_size: int,
        spatial_scale: float,
        sampling_ratio: int = 0,
        aligned: bool = True,
    ) -> None:
        super().__init__()
        self.featmap_name = featmap_name
        self.output_size = (output_size, output_size)
        self.spatial_scale = spatial_scale
        self.sampling_ratio = sampling_ratio
        self.aligned = aligned

    def forward(
        self, features: dict[str, Tensor], boxes: list[Tensor], image_shapes: list[tuple[int, int]]
    ) -> Tensor:
        # Boxes stay float32 under autocast (torchvision's roi_align runs in float32 there), as in
        # MultiScaleRoIAlign: half-precision coordinates would be off by up to half a pixel at 1000 px.
        return roi_align(
            features[self.featmap_name],
            boxes,
            self.output_size,
            self.spatial_scale,
            self.sampling_ratio,
            self.aligned,
        )


class AttributeRoIHeads(RoIHeads):
    """torchvision's ``RoIHeads`` (box + mask branches) with an attribute predictor on the box features.

    Training returns ``loss_classifier``, ``loss_box_reg``, ``loss_mask`` and ``loss_attribute``; the
    attribute targets come from each sampled RoI's matched ground truth (``select_training_samples``'s
    ``matched_idxs``), so they stay aligned with the sampled proposals. Inference returns per image
    ``boxes`` [N, 4], ``labels`` [N], ``scores`` [N], ``masks`` [N, 1, M, M] (probabilities, pasted into
    the image by the transform) and ``attribute_scores`` [N, A]: the sigmoid of the attribute logits of
    the proposal each detection was decoded from.

    ``labels_with_attributes[k]`` says whether model label ``k`` (0 = background) trains attributes.
    Subclasses change where features come from by overriding :meth:`box_features` and
    :meth:`mask_features`.
    """

    def __init__(
        self,
        *,
        attribute_predictor: nn.Module,
        labels_with_attributes: Sequence[bool],
        attribute_loss_weight: float = 1.0,
        **roi_heads_kwargs: Any,
    ) -> None:
        super().__init__(**roi_heads_kwargs)
        # a caller's score floor for one inference call (Predictor.predict): detections scoring below it
        # are dropped before the mask head; None keeps everything above score_thresh
        self.min_score: float | None = None
        self.attribute_predictor = attribute_predictor
        self.attribute_loss_weight = attribute_loss_weight
        self.register_buffer(
            "labels_with_attributes",
            torch.tensor(list(labels_with_attributes), dtype=torch.bool),
            persistent=False,
        )

    def check_targets(self, targets: list[dict[str, Tensor]] | None) -> None:
        super().check_targets(targets)
        for key in ("masks", "attributes"):
            if not all(key in t for t in targets or []):
                raise ValueError(f"every training target needs a '{key}' entry (see ARCHITECTURE.md)")

    def box_features(
        self, features: dict[str, Tensor], proposals: list[Tensor], image_shapes: list[tuple[int, int]]
    ) -> tuple[Tensor, Tensor | None]:
        """Box-head features [R, D] of the proposals, and [R, C, h, w] RoI maps the mask branch reuses
        in training (None: the mask branch pools its own features)."""
        return self.box_head(self.box_roi_pool(features, proposals, image_shapes)), None

    def mask_features(
        self, features: dict[str, Tensor], boxes: list[Tensor], image_shapes: list[tuple[int, int]]
    ) -> Tensor:
        """Mask-head features [R, C, h, w] of ``boxes`` (the mask predictor's input)."""
        return self.mask_head(self.mask_roi_pool(features, boxes, image_shapes))

    def forward(
        self,
        features: dict[str, Tensor],
        proposals: list[Tensor],
        image_shapes: list[tuple[int, int]],
        targets: list[dict[str, Tensor]] | None = None,
    ) -> tuple[list[dict[str, Tensor]], dict[str, Tensor]]:
        """(detections, {}) in eval mode; ([], losses) in training, where ``targets`` are required."""
        if self.training:
            proposals, matched_idxs, labels, regression_targets = self.select_training_samples(
                proposals, targets
            )
        box_features, roi_maps = self.box_features(features, proposals, image_shapes)
        class_logits, box_regression = self.box_predictor(box_features)
        attribute_logits = self.attribute_predictor(box_features)
        if not self.training:
            return self._detect(
                features, proposals, image_shapes, class_logits, box_regression, attribute_logits
            ), {}

        loss_classifier, loss_box_reg = fastrcnn_loss(
            class_logits, box_regression, labels, regression_targets
        )
        foreground = [lab > 0 for lab in labels]
        fg = torch.cat(foreground)
        gt_attributes = attribute_targets(
            matched_idxs, [t["attributes"] for t in targets], attribute_logits.shape[1]
        )
        trains_attributes = fg & self.labels_with_attributes[torch.cat(labels)]
        loss_attribute = attribute_loss(attribute_logits, gt_attributes, trains_attributes)

        fg_boxes = [p[f] for p, f in zip(proposals, foreground, strict=True)]
        fg_matched = [m[f] for m, f in zip(matched_idxs, foreground, strict=True)]
        # Masks train on the foreground RoIs only; C4 reuses their res5 maps from the box branch.
        mask_inputs = (
            roi_maps[fg] if roi_maps is not None else self.mask_features(features, fg_boxes, image_shapes)
        )
        loss_mask = maskrcnn_loss(
            self.mask_predictor(mask_inputs),
            fg_boxes,
            [t["masks"] for t in targets],
            [t["labels"] for t in targets],
            fg_matched,
        )
        return [], {
            "loss_classifier": loss_classifier,
            "loss_box_reg": loss_box_reg,
            "loss_mask": loss_mask,
            "loss_attribute": loss_attribute * self.attribute_loss_weight,
        }

    def _detect(
        self,
        features: dict[str, Tensor],
        proposals: list[Tensor],
        image_shapes: list[tuple[int, int]],
        class_logits: Tensor,
        box_regression: Tensor,
        attribute_logits: Tensor,
    ) -> list[dict[str, Tensor]]:
        """Post-processed detections with masks and the attribute scores of their source proposals."""
        detections = self.postprocess_with_sources(class_logits, box_regression, proposals, image_shapes)
        boxes = [d["boxes"] for d in detections]
        mask_logits = self.mask_predictor(self.mask_features(features, boxes, image_shapes))
        masks = maskrcnn_inference(mask_logits, [d["labels"] for d in detections])
        attribute_scores = attribute_logits.sigmoid()
        for detection, mask in zip(detections, masks, strict=True):
            detection["masks"] = mask
            detection["attribute_scores"] = attribute_scores[detection.pop("sources")]
        return detections

    def postprocess_with_sources(
        self,
        class_logits: Tensor,
        box_regression: Tensor,
        proposals: list[Tensor],
        image_shapes: list[tuple[int, int]],
    ) -> list[dict[str, Tensor]]:
        """torchvision's ``postprocess_detections``, also returning each detection's source RoI.

        ``class_logits`` [R, K+1] and ``box_regression`` [R, 4(K+1)] for the proposals of all images
        (R = sum of ``len(p)``). Every (RoI, class) pair above ``score_thresh`` is a candidate; per-class
        NMS and the top ``detections_per_img`` follow. Returns per image ``boxes`` [N, 4], ``scores`` [N],
        ``labels`` [N] and ``sources`` [N], the index of the RoI (into the R rows) each detection came from.
        """
        per_image = [len(p) for p in proposals]
        pred_boxes = self.box_coder.decode(box_regression, proposals).split(per_image)
        pred_scores = F.softmax(class_logits, -1).split(per_image)
        sources = torch.arange(class_logits.shape[0], device=class_logits.device).split(per_image)
        results = []
        for boxes, scores, source, image_shape in zip(
            pred_boxes, pred_scores, sources, image_shapes, strict=True
        ):
            boxes = box_ops.clip_boxes_to_image(boxes, image_shape)
            labels = torch.arange(scores.shape[1], device=scores.device).expand_as(scores)
            source = source[:, None].expand_as(scores)
            # Drop the background column, then treat each (RoI, class) pair as one candidate.
            boxes, scores = boxes[:, 1:].reshape(-1, 4), scores[:, 1:].reshape(-1)
            labels, source = labels[:, 1:].reshape(-1), source[:, 1:].reshape(-1)
            candidate = scores > self.score_thresh
            if self.min_score is not None:
                candidate &= scores >= self.min_score
            keep = torch.where(candidate)[0]
            keep = keep[box_ops.remove_small_boxes(boxes[keep], min_size=1e-2)]
            keep = keep[box_ops.batched_nms(boxes[keep], scores[keep], labels[keep], self.nms_thresh)]
            keep = keep[: self.detections_per_img]
            results.append(
                {
                    "boxes": boxes[keep],
                    "scores": scores[keep],
                    "labels": labels[keep],
                    "sources": source[keep],
                }
            )
        return results


class Res5RoIHeads(AttributeRoIHeads):
    """detectron2's Res5ROIHeads (R50-C4): ``box_head`` is the res5 stage, shared with the mask branch.

    RoIAlign 14x14 on res4 -> res5 (first block stride 2) -> [R, C5, 7, 7]; its global average [R, C5]
    feeds the class, box and attribute predictors, and the 7x7 map itself feeds ``mask_predictor``
    (2x deconv + 1x1 conv: detectron2's MaskRCNNConvUpsampleHead with no convs) -> 14x14 masks. There is
    no separate mask pooler or mask head.
    """

    def has_mask(self) -> bool:
        return self.mask_predictor is not None

    def box_features(
        self, features: dict[str, Tensor], proposals: list[Tensor], image_shapes: list[tuple[int, int]]
    ) -> tuple[Tensor, Tensor]:
        # The res5 maps come back too: in training, the foreground RoIs' maps are the mask head's input,
        # so res5 runs once per RoI (detectron2 reuses the box features the same way).
        maps = self.box_head(self.box_roi_pool(features, proposals, image_shapes))
        return maps.mean(dim=(2, 3)), maps

    def mask_features(
        self, features: dict[str, Tensor], boxes: list[Tensor], image_shapes: list[tuple[int, int]]
    ) -> Tensor:
        # At test time res5 runs again, on the detected boxes instead of the proposals.
        return self.box_head(self.box_roi_pool(features, boxes, image_shapes))
