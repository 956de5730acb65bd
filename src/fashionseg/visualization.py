"""Overlays: masks, boxes, class names and top attributes drawn on an image."""

from __future__ import annotations

import colorsys
from collections.abc import Iterable
from typing import Any

import numpy as np
import pycocotools.mask as mask_utils
from PIL import Image, ImageDraw, ImageFont

from fashionseg.data.ontology import LabelSpace
from fashionseg.structures import Prediction


def category_color(category_id: int) -> tuple[int, int, int]:
    """A stable, well-separated colour per category id (golden-ratio hue steps)."""
    hue = (category_id * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(hue, 0.75, 0.95)
    return int(r * 255), int(g * 255), int(b * 255)


def _draw(
    image: Image.Image,
    masks: Iterable[np.ndarray],
    boxes: Iterable[Iterable[float]],
    colors: list[tuple[int, int, int]],
    captions: list[str],
    alpha: float,
) -> Image.Image:
    base = np.asarray(image.convert("RGB"), dtype=np.float32)
    for mask, color in zip(masks, colors, strict=True):
        m = mask.astype(bool)
        base[m] = (1 - alpha) * base[m] + alpha * np.asarray(color, dtype=np.float32)
    canvas = Image.fromarray(base.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    for box, color, caption in zip(boxes, colors, captions, strict=True):
        x1, y1, x2, y2 = (float(v) for v in box)
        draw.rectangle((x1, y1, x2, y2), outline=color, width=max(1, round(min(image.size) / 200)))
        if caption:
            tx, ty = x1 + 1, max(0.0, y1 - 11)
            left, top, right, bottom = draw.textbbox((tx, ty), caption, font=font)
            draw.rectangle((left - 1, top - 1, right + 1, bottom + 1), fill=(0, 0, 0))
            draw.text((tx, ty), caption, fill=color, font=font)
    return canvas


def draw_predictions(
    image: Image.Image,
    pred: Prediction,
    labels: LabelSpace,
    score_threshold: float = 0.5,
    max_attributes: int = 3,
    categories: Iterable[int] | None = None,
    attribute_threshold: float | None = None,
    alpha: float = 0.45,
) -> Image.Image:
    """The image with each detection scoring >= ``score_threshold``: mask, box, "name score" and attributes.

    ``categories`` keeps only those category ids; ``attribute_threshold`` (default: the model's) picks the
    attributes shown, at most ``max_attributes`` per detection, highest first.
    """
    keep = pred.scores >= score_threshold
    if categories is not None:
        keep &= np.isin(pred.category_ids, list(categories))
    shown = pred.select(keep)
    names = dict(zip(labels.category_ids, labels.category_names, strict=True))
    captions = []
    for i in range(len(shown)):
        scores = shown.attribute_scores[i]
        if attribute_threshold is None:
            wanted = set(shown.attribute_ids[i])
            order = [j for j in np.argsort(-scores) if labels.attribute_ids[j] in wanted]
        else:
            order = [j for j in np.argsort(-scores) if scores[j] >= attribute_threshold]
        attrs = [labels.attribute_names[j] for j in order[:max_attributes]]
        caption = f"{names[int(shown.category_ids[i])]} {shown.scores[i]:.2f}"
        captions.append(caption + (f" [{', '.join(attrs)}]" if attrs else ""))
    colors = [category_color(int(c)) for c in shown.category_ids]
    return _draw(image, shown.masks, shown.boxes, colors, captions, alpha)


def draw_annotations(
    image: Image.Image, annotations: list[dict[str, Any]], coco_json: dict[str, Any]
) -> Image.Image:
    """Ground truth of one image (its COCO annotation dicts) drawn like predictions, with attribute names."""
    cat_names = {c["id"]: c["name"] for c in coco_json["categories"]}
    att_names = {a["id"]: a["name"] for a in coco_json.get("attributes", [])}
    h, w = image.height, image.width
    masks, boxes, colors, captions = [], [], [], []
    for ann in annotations:
        seg = ann["segmentation"]
        if isinstance(seg, list):
            rle = mask_utils.merge(mask_utils.frPyObjects(seg, h, w))
        elif isinstance(seg.get("counts"), list):
            rle = mask_utils.frPyObjects(seg, h, w)
        else:
            rle = seg
        masks.append(mask_utils.decode(rle))
        x, y, bw, bh = ann["bbox"]
        boxes.append((x, y, x + bw, y + bh))
        colors.append(category_color(ann["category_id"]))
        attrs = [att_names.get(a, str(a)) for a in ann.get("attribute_ids", [])][:3]
        captions.append(
            cat_names.get(ann["category_id"], str(ann["category_id"]))
            + (f" [{', '.join(attrs)}]" if attrs else "")
        )
    return _draw(image, masks, boxes, colors, captions, alpha=0.45)
