"""The embedded synthetic dataset (``fashionseg data synth``): stylised figures in Fashionpedia's schema.

Each image shows one or two figures (head, arms, legs) on a gradient, noise or two-tone background, dressed
in garments with real Fashionpedia category ids and attribute ids that are visible in the pixels:

- categories: 1 top/t-shirt/sweatshirt, 4 jacket, 6 pants, 7 shorts, 8 skirt, 10 dress, 14 hat, 23 shoe,
  24 bag/wallet, and the parts 31 sleeve and 33 neckline;
- textile pattern on every garment: 317 plain (pattern), 328 stripe, 323 dot, 322 check;
- length of skirts and dresses: 149 mini, 151 knee, 154 maxi; of sleeves: 157 short, 160 wrist-length
  (156 sleeveless goes on a sleeveless top or dress, as in Fashionpedia);
- silhouette: 129 a-line / 127 pencil (skirt, dress), 128 straight / 132 wide leg (pants);
- neckline type: 182 round (neck), 183 v-neck.

Garments are painted back to front (lower garments, top or dress, jacket, shoes, hat, bag; the second figure
in front of the first), and every mask holds only the pixels left visible; an instance with too little left
is dropped. Parts (sleeves, necklines) are the visible pixels of their garment inside the part's region, as
in Fashionpedia, where part masks overlap their garment's. Masks are stored as RLE (pycocotools, ``counts``
as a string).

Image ``i`` of a split depends only on (seed, split, i): the same seed gives byte-identical PNG files and
JSON, and the first N images of a longer split equal a split of N.
"""

from __future__ import annotations

import colorsys
import json
import math
import os
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pycocotools.mask as mask_utils
from PIL import Image, ImageDraw
from tqdm.auto import tqdm

from fashionseg.config import DataConfig
from fashionseg.data.ontology import ontology_json

GENERATOR_VERSION = 2
SPLITS = ("train", "val")

# Fashionpedia category ids
TOP, JACKET, PANTS, SHORTS, SKIRT, DRESS, HAT, SHOE, BAG, SLEEVE, NECKLINE = (
    1,
    4,
    6,
    7,
    8,
    10,
    14,
    23,
    24,
    31,
    33,
)
CATEGORY_IDS = (TOP, JACKET, PANTS, SHORTS, SKIRT, DRESS, HAT, SHOE, BAG, SLEEVE, NECKLINE)

# Fashionpedia attribute ids, by what they look like here
PATTERNS = {"plain": 317, "stripe": 328, "dot": 323, "check": 322}  # textile pattern
LENGTHS = {"mini": 149, "knee": 151, "maxi": 154}  # hem of a skirt or dress
HEM_Y = {"mini": 0.62, "knee": 0.73, "maxi": 0.9}  # hem height, in figure heights below the head top
SLEEVELESS, SHORT_SLEEVE, WRIST_LENGTH = 156, 157, 160
SLEEVE_END = {SHORT_SLEEVE: 0.36, WRIST_LENGTH: 0.93}  # sleeve end, as a fraction of the arm
A_LINE, PENCIL, STRAIGHT, WIDE_LEG = 129, 127, 128, 132  # silhouette
ROUND_NECK, V_NECK = 182, 183  # neckline type

# figure height in image sides: a single figure fills the frame (garments are medium and large objects, only
# parts and accessories small, as in Fashionpedia's photos); two figures stand side by side
ZOOM_SINGLE = (1.2, 2.5)
ZOOM_PAIR = (1.0, 1.5)

MIN_VISIBLE_FRACTION = 0.15  # drop an instance showing less than this share of its shape

Grid = tuple[np.ndarray, np.ndarray]  # the y and x pixel coordinates, float32 [S, S] each


@dataclass
class _Scene:
    """The canvas being painted and the instances on it."""

    pixels: np.ndarray  # float32 [S, S, 3] in 0-1
    owner: np.ndarray  # int32 [S, S]: index of the garment showing at each pixel, -1 for skin/background
    shapes: list[np.ndarray] = field(default_factory=list)  # full (unoccluded) bool mask of each instance
    categories: list[int] = field(default_factory=list)
    attributes: list[list[int]] = field(default_factory=list)
    parents: list[int] = field(default_factory=list)  # garment index of a part, -1 for garments

    @property
    def size(self) -> int:
        return self.pixels.shape[0]

    def skin(self, mask: np.ndarray, color: np.ndarray) -> None:
        self.pixels[mask] = color
        self.owner[mask] = -1

    def garment(self, mask: np.ndarray, texture: np.ndarray, category: int, attributes: list[int]) -> int:
        """Paint a garment (with a darker outline, a cue for its boundary) and register it."""
        self.pixels[mask] = texture[mask]
        edge = mask & ~_erode(mask)
        self.pixels[edge] *= 0.55
        index = len(self.shapes)
        self.owner[mask] = index
        self._add(mask, category, attributes, -1)
        return index

    def part(self, parent: int, mask: np.ndarray, category: int, attributes: list[int]) -> None:
        self._add(mask & self.shapes[parent], category, attributes, parent)

    def _add(self, mask: np.ndarray, category: int, attributes: list[int], parent: int) -> None:
        self.shapes.append(mask)
        self.categories.append(category)
        self.attributes.append(sorted(attributes))
        self.parents.append(parent)

    def visible_instances(self) -> list[tuple[int, list[int], np.ndarray]]:
        """``(category_id, attribute_ids, visible mask)`` of the instances that stay visible enough."""
        min_pixels = max(6, round(0.0004 * self.size**2))
        kept: dict[int, np.ndarray] = {}
        for i, shape in enumerate(self.shapes):
            parent = self.parents[i]
            if parent >= 0 and parent not in kept:
                continue
            visible = shape & (self.owner == (i if parent < 0 else parent))
            area = int(visible.sum())
            if area >= min_pixels and area >= MIN_VISIBLE_FRACTION * shape.sum():
                kept[i] = visible
        return [(self.categories[i], self.attributes[i], m) for i, m in kept.items()]


def _erode(mask: np.ndarray) -> np.ndarray:
    """4-neighbour binary erosion (pixels outside the canvas count as inside, so borders get no outline)."""
    out = mask.copy()
    out[1:] &= mask[:-1]
    out[:-1] &= mask[1:]
    out[:, 1:] &= mask[:, :-1]
    out[:, :-1] &= mask[:, 1:]
    return out


def _polygon(size: int, points: Sequence[tuple[float, float]]) -> np.ndarray:
    canvas = Image.new("1", (size, size))
    ImageDraw.Draw(canvas).polygon([(float(x), float(y)) for x, y in points], fill=1)
    return np.array(canvas)


def _ellipse(size: int, cx: float, cy: float, rx: float, ry: float) -> np.ndarray:
    canvas = Image.new("1", (size, size))
    ImageDraw.Draw(canvas).ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=1)
    return np.array(canvas)


def _band(size: int, p0: np.ndarray, p1: np.ndarray, w0: float, w1: float) -> np.ndarray:
    """A quadrilateral along the segment p0 -> p1, ``w0`` wide at p0 and ``w1`` at p1."""
    d = p1 - p0
    n = np.array([-d[1], d[0]]) / (np.hypot(*d) + 1e-9)
    return _polygon(size, [p0 + n * w0 / 2, p1 + n * w1 / 2, p1 - n * w1 / 2, p0 - n * w0 / 2])


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v), dtype=np.float32)


def _garment_colors(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A base colour and a strongly contrasting accent (the pattern must stay visible at 128 px)."""
    hue, sat, val = rng.uniform(), rng.uniform(0.35, 0.9), rng.uniform(0.35, 0.9)
    base = _hsv(hue, sat, val)
    if val > 0.6:
        accent = _hsv(hue + rng.uniform(0.3, 0.7), rng.uniform(0.5, 1.0), rng.uniform(0.08, 0.25))
    else:
        accent = _hsv(hue + rng.uniform(0.3, 0.7), rng.uniform(0.0, 0.3), rng.uniform(0.85, 1.0))
    return base, accent


def _texture(rng: np.random.Generator, pattern: str, grid: Grid) -> np.ndarray:
    """An ``[S, S, 3]`` fill in one of the four patterns (period about 1/25 of the image)."""
    yy, xx = grid
    size = xx.shape[0]
    base, accent = _garment_colors(rng)
    period = size * rng.uniform(0.035, 0.05)
    if pattern == "plain":
        shade = 1.0 - 0.12 * (yy / size)
        return base * shade[..., None]
    if pattern == "stripe":
        angle = rng.choice([0.0, math.pi / 2, math.pi / 4, -math.pi / 4]) + rng.uniform(-0.15, 0.15)
        t = (xx * math.sin(angle) + yy * math.cos(angle)) / period + rng.uniform()
        on = (t % 1.0) < 0.5
    elif pattern == "dot":
        ox, oy = rng.uniform(0, period, 2)
        gx = (xx + ox) % period - period / 2
        gy = (yy + oy) % period - period / 2
        on = gx**2 + gy**2 < (0.3 * period) ** 2
    else:  # check
        ox, oy = rng.uniform(0, period, 2)
        on = (np.floor((xx + ox) / period) + np.floor((yy + oy) / period)) % 2 == 0
    return np.where(on[..., None], accent, base)


def _background(rng: np.random.Generator, size: int, grid: Grid) -> np.ndarray:
    yy, xx = grid
    c0 = _hsv(rng.uniform(), rng.uniform(0.0, 0.5), rng.uniform(0.3, 1.0))
    c1 = _hsv(rng.uniform(), rng.uniform(0.0, 0.5), rng.uniform(0.3, 1.0))
    kind = rng.integers(3)
    if kind == 0:  # linear gradient in a random direction
        angle = rng.uniform(0, 2 * math.pi)
        t = (xx * math.cos(angle) + yy * math.sin(angle)) / size
        t = (t - t.min()) / (t.max() - t.min())
    elif kind == 1:  # smooth noise: a coarse random grid upsampled
        coarse = Image.fromarray((rng.uniform(size=(5, 5)) * 255).astype(np.uint8))
        t = np.asarray(coarse.resize((size, size), Image.BICUBIC), dtype=np.float32) / 255
    else:  # wall and floor
        t = (yy > size * rng.uniform(0.55, 0.85)).astype(np.float32)
    image = c0 * (1 - t[..., None]) + c1 * t[..., None]
    return image + rng.normal(0, 0.03, (size, size, 3)).astype(np.float32)


def _neckline(size: int, cx: float, ys: float, u: float, kind: int) -> tuple[np.ndarray, np.ndarray]:
    """(opening, neckline band) masks of a round or V neckline at shoulder height ``ys``."""
    if kind == ROUND_NECK:
        opening = _ellipse(size, cx, ys - 0.005 * u, 0.055 * u, 0.05 * u)
        outer = _ellipse(size, cx, ys - 0.005 * u, 0.095 * u, 0.09 * u)
    else:
        opening = _polygon(
            size, [(cx - 0.055 * u, ys - 0.03 * u), (cx + 0.055 * u, ys - 0.03 * u), (cx, ys + 0.1 * u)]
        )
        outer = _polygon(
            size, [(cx - 0.1 * u, ys - 0.03 * u), (cx + 0.1 * u, ys - 0.03 * u), (cx, ys + 0.16 * u)]
        )
    return opening, outer & ~opening


@dataclass(frozen=True)
class _Body:
    """Key points of one figure, in pixels; ``u`` is the figure height."""

    cx: float
    top: float
    u: float
    shoulder: float  # half-width at the shoulders
    arms: tuple[tuple[np.ndarray, np.ndarray], ...]  # (shoulder joint, wrist) per arm
    legs: tuple[tuple[np.ndarray, np.ndarray], ...]  # (hip joint, ankle) per leg

    @property
    def ys(self) -> float:
        return self.top + 0.17 * self.u

    @property
    def yw(self) -> float:
        return self.top + 0.43 * self.u

    @property
    def yh(self) -> float:
        return self.top + 0.5 * self.u


def _make_body(rng: np.random.Generator, cx: float, top: float, u: float) -> _Body:
    shoulder = u * rng.uniform(0.12, 0.14)
    ys = top + 0.17 * u
    arms = []
    for side in (-1, 1):
        joint = np.array([cx + side * (shoulder - 0.03 * u), ys + 0.025 * u])
        angle = math.radians(rng.uniform(4, 30))
        arms.append((joint, joint + 0.37 * u * np.array([side * math.sin(angle), math.cos(angle)])))
    spread = rng.uniform(0.0, 0.05) * u
    legs = tuple(
        (
            np.array([cx + side * 0.055 * u, top + 0.47 * u]),
            np.array([cx + side * (0.06 * u + spread), top + 0.94 * u]),
        )
        for side in (-1, 1)
    )
    return _Body(cx, top, u, shoulder, tuple(arms), legs)


def _torso(size: int, b: _Body, widen: float, hem: float) -> np.ndarray:
    """A garment body from the shoulders to ``hem`` (figure heights), ``widen`` figure heights wider."""
    cx, u, sw, w = b.cx, b.u, b.shoulder + widen * b.u, widen * b.u
    ww = 0.085 * u + w
    hw = 0.11 * u + w
    y_hem = b.top + hem * u
    hip_half = ww + (hw - ww) * min(1.0, max(0.0, (y_hem - b.yw) / (b.yh - b.yw)))
    points = [
        (cx - sw + 0.02 * u, b.ys - 0.02 * u),
        (cx + sw - 0.02 * u, b.ys - 0.02 * u),
        (cx + sw, b.ys + 0.01 * u),
        (cx + sw - 0.02 * u, b.ys + 0.11 * u),
        (cx + ww, b.yw),
        (cx + hip_half, y_hem),
        (cx - hip_half, y_hem),
        (cx - ww, b.yw),
        (cx - sw + 0.02 * u, b.ys + 0.11 * u),
        (cx - sw, b.ys + 0.01 * u),
    ]
    return _polygon(size, points)


def _sleeve(size: int, b: _Body, arm: tuple[np.ndarray, np.ndarray], end: float, width: float) -> np.ndarray:
    joint, wrist = arm
    start = joint + (wrist - joint) * -0.08
    stop = joint + (wrist - joint) * end
    cap = _ellipse(size, joint[0], joint[1], width * b.u / 2, width * b.u / 2)
    return _band(size, start, stop, width * b.u, width * b.u * 0.9) | cap


def _skirt_shape(size: int, b: _Body, length: str, silhouette: int, from_y: float) -> np.ndarray:
    cx, u = b.cx, b.u
    hem_y = b.top + HEM_Y[length] * u
    ww, hw = 0.09 * u, 0.115 * u
    hem_half = hw + 0.45 * (hem_y - b.yh) if silhouette == A_LINE else hw * 0.9
    points = [
        (cx - ww, from_y),
        (cx + ww, from_y),
        (cx + hw, b.yh),
        (cx + hem_half, hem_y),
        (cx - hem_half, hem_y),
        (cx - hw, b.yh),
    ]
    return _polygon(size, points)


def _legwear(size: int, b: _Body, end: float, w_top: float, w_end: float) -> np.ndarray:
    """Pants or shorts: a waistband plus one tube per leg down to ``end`` (fraction of the leg)."""
    cx, u = b.cx, b.u
    shape = _polygon(
        size,
        [(cx - 0.095 * u, b.yw), (cx + 0.095 * u, b.yw), (cx + 0.12 * u, b.yh), (cx - 0.12 * u, b.yh)],
    )
    for hip, ankle in b.legs:
        stop = hip + (ankle - hip) * end
        shape |= _band(size, hip, stop, w_top * u, w_end * u)
    return shape


def _pick_pattern(rng: np.random.Generator) -> tuple[str, int]:
    name = str(rng.choice(list(PATTERNS)))
    return name, PATTERNS[name]


def _flat(color: np.ndarray, size: int) -> np.ndarray:
    """A one-colour ``[S, S, 3]`` texture (writable, so a band of another colour can be painted in)."""
    return np.broadcast_to(color, (size, size, 3)).copy()


def _paint_body(scene: _Scene, rng: np.random.Generator, b: _Body) -> None:
    """Skin and hair (not instances: they only hide what lies behind them)."""
    size, u, cx = scene.size, b.u, b.cx
    skin = _hsv(rng.uniform(0.02, 0.1), rng.uniform(0.25, 0.6), rng.uniform(0.35, 0.95))
    hair = _hsv(rng.uniform(0.0, 0.12), rng.uniform(0.2, 0.8), rng.uniform(0.05, 0.5))
    body = _torso(size, b, 0.0, 0.5)
    for joint, wrist in b.arms:
        body |= _band(size, joint, wrist, 0.06 * u, 0.05 * u) | _ellipse(size, *wrist, 0.032 * u, 0.032 * u)
    for hip, ankle in b.legs:
        body |= _band(size, hip, ankle, 0.085 * u, 0.05 * u)
    neck = [
        (cx - 0.03 * u, b.top + 0.1 * u),
        (cx + 0.03 * u, b.top + 0.1 * u),
        (cx + 0.04 * u, b.ys),
        (cx - 0.04 * u, b.ys),
    ]
    body |= _polygon(size, neck)
    scene.skin(_ellipse(size, cx, b.top + 0.065 * u, 0.075 * u, 0.065 * u), hair)
    scene.skin(body | _ellipse(size, cx, b.top + 0.085 * u, 0.06 * u, 0.065 * u), skin)


def _paint_lower(scene: _Scene, rng: np.random.Generator, b: _Body, grid: Grid) -> None:
    """Pants (straight or wide leg), shorts, or a skirt (mini/knee/maxi, a-line or pencil)."""
    size = scene.size
    lower = int(rng.choice([PANTS, SHORTS, SKIRT], p=[0.38, 0.24, 0.38]))
    name, pid = _pick_pattern(rng)
    if lower == PANTS:
        silhouette = int(rng.choice([STRAIGHT, WIDE_LEG]))
        shape = _legwear(size, b, 0.98, 0.115, 0.075 if silhouette == STRAIGHT else 0.17)
        attrs = [pid, silhouette]
    elif lower == SHORTS:
        shape = _legwear(size, b, 0.3, 0.125, 0.12)
        attrs = [pid]
    else:
        length = str(rng.choice(list(LENGTHS)))
        silhouette = int(rng.choice([A_LINE, PENCIL]))
        shape = _skirt_shape(size, b, length, silhouette, b.yw - 0.01 * b.u)
        attrs = [pid, LENGTHS[length], silhouette]
    scene.garment(shape, _texture(rng, name, grid), lower, attrs)


def _paint_upper(scene: _Scene, rng: np.random.Generator, b: _Body, grid: Grid, dress: bool) -> None:
    """A top or a dress with its sleeves and neckline (parts) and a contrasting neckline trim."""
    size, u = scene.size, b.u
    sleeve_length = int(rng.choice([SLEEVELESS, SHORT_SLEEVE, WRIST_LENGTH]))
    neck = int(rng.choice([ROUND_NECK, V_NECK]))
    name, pid = _pick_pattern(rng)
    if dress:
        length = str(rng.choice(list(LENGTHS)))
        silhouette = int(rng.choice([A_LINE, PENCIL]))
        shape = _torso(size, b, 0.005, 0.45) | _skirt_shape(size, b, length, silhouette, b.yw)
        category, attrs = DRESS, [pid, LENGTHS[length], silhouette]
    else:
        shape = _torso(size, b, 0.005, rng.uniform(0.45, 0.5))
        category, attrs = TOP, [pid]
    sleeves = []
    if sleeve_length == SLEEVELESS:
        attrs.append(SLEEVELESS)
    else:
        sleeves = [_sleeve(size, b, arm, SLEEVE_END[sleeve_length], 0.08) for arm in b.arms]
    for sleeve in sleeves:
        shape |= sleeve
    opening, band = _neckline(size, b.cx, b.ys, u, neck)
    shape &= ~opening
    upper = scene.garment(shape, _texture(rng, name, grid), category, attrs)
    for sleeve in sleeves:
        scene.part(upper, sleeve, SLEEVE, [sleeve_length])
    scene.pixels[band & shape] = _garment_colors(rng)[1]
    scene.part(upper, band, NECKLINE, [neck])


def _paint_jacket(scene: _Scene, rng: np.random.Generator, b: _Body, grid: Grid) -> None:
    """An open jacket with wrist-length sleeves: the top or dress shows only through its front opening."""
    size, u, cx = scene.size, b.u, b.cx
    name, pid = _pick_pattern(rng)
    sleeves = [_sleeve(size, b, arm, SLEEVE_END[WRIST_LENGTH], 0.105) for arm in b.arms]
    shape = _torso(size, b, 0.025, 0.55)
    for sleeve in sleeves:
        shape |= sleeve
    gap = rng.uniform(0.02, 0.05) * u
    front = [
        (cx - 0.08 * u, b.ys - 0.03 * u),
        (cx + 0.08 * u, b.ys - 0.03 * u),
        (cx + 0.015 * u, b.ys + 0.14 * u),
        (cx + gap, b.top + 0.56 * u),
        (cx - gap, b.top + 0.56 * u),
        (cx - 0.015 * u, b.ys + 0.14 * u),
    ]
    jacket = scene.garment(shape & ~_polygon(size, front), _texture(rng, name, grid), JACKET, [pid])
    for sleeve in sleeves:
        scene.part(jacket, sleeve, SLEEVE, [WRIST_LENGTH])


def _paint_shoes(scene: _Scene, rng: np.random.Generator, b: _Body) -> None:
    """Two shoes, one instance each (as Fashionpedia annotates them)."""
    size, u = scene.size, b.u
    color = _flat(_hsv(rng.uniform(), rng.uniform(0.2, 0.9), rng.uniform(0.05, 0.45)), size)
    for side, (_, ankle) in zip((-1, 1), b.legs, strict=True):
        shoe = _ellipse(size, ankle[0] + side * 0.02 * u, b.top + 0.96 * u, 0.06 * u, 0.035 * u)
        scene.garment(shoe, color, SHOE, [])


def _paint_hat(scene: _Scene, rng: np.random.Generator, b: _Body) -> None:
    size, u, cx = scene.size, b.u, b.cx
    crown = [
        (cx - 0.06 * u, b.top - 0.05 * u),
        (cx + 0.06 * u, b.top - 0.05 * u),
        (cx + 0.07 * u, b.top + 0.04 * u),
        (cx - 0.07 * u, b.top + 0.04 * u),
    ]
    hat = _ellipse(size, cx, b.top + 0.035 * u, 0.125 * u, 0.025 * u) | _polygon(size, crown)
    base, accent = _garment_colors(rng)
    texture = _flat(base, size)
    texture[int(b.top + 0.005 * u) : int(b.top + 0.025 * u) + 1] = accent  # hat band
    scene.garment(hat, texture, HAT, [])


def _paint_bag(scene: _Scene, rng: np.random.Generator, b: _Body) -> None:
    """A handbag held in one hand, in front of everything else of the figure."""
    size, u = scene.size, b.u
    _, wrist = b.arms[int(rng.integers(2))]
    bx, by = wrist[0], wrist[1] + 0.07 * u
    w, h, c = 0.085 * u, 0.065 * u, 0.02 * u
    body = [
        (bx - w + c, by - h),
        (bx + w - c, by - h),
        (bx + w, by - h + c),
        (bx + w, by + h),
        (bx - w, by + h),
        (bx - w, by - h + c),
    ]
    handle = Image.new("1", (size, size))
    ring = (bx - 0.05 * u, by - h - 0.06 * u, bx + 0.05 * u, by - h + 0.04 * u)
    ImageDraw.Draw(handle).ellipse(ring, outline=1, width=max(1, round(0.015 * u)))
    base, accent = _garment_colors(rng)
    texture = _flat(base, size)
    texture[int(by - 0.01 * u) : int(by + 0.005 * u) + 1] = accent  # flap edge
    scene.garment(_polygon(size, body) | np.array(handle), texture, BAG, [])


def _dress_figure(scene: _Scene, rng: np.random.Generator, b: _Body, grid: Grid) -> None:
    """Paint one figure: body, then garments back to front (see the module docstring)."""
    _paint_body(scene, rng, b)
    dress = rng.uniform() < 0.3
    if not dress:
        _paint_lower(scene, rng, b, grid)
    _paint_upper(scene, rng, b, grid, dress)
    if rng.uniform() < 0.3:
        _paint_jacket(scene, rng, b, grid)
    if rng.uniform() < 0.85:
        _paint_shoes(scene, rng, b)
    if rng.uniform() < 0.3:
        _paint_hat(scene, rng, b)
    if rng.uniform() < 0.3:
        _paint_bag(scene, rng, b)


def render_image(
    rng: np.random.Generator, size: int
) -> tuple[np.ndarray, list[tuple[int, list[int], np.ndarray]]]:
    """One synthetic image: ``uint8 [size, size, 3]`` and its instances ``(category_id, attribute_ids,
    bool mask [size, size])`` (visible pixels only)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    grid = (yy, xx)
    scene = _Scene(_background(rng, size, grid), np.full((size, size), -1, dtype=np.int32))
    if rng.uniform() < 0.6:
        # one figure, framed as in a fashion photo: from the whole figure to a close-up of part of it
        u = size * rng.uniform(*ZOOM_SINGLE)
        placements = [(size * rng.uniform(0.38, 0.62), u)]
    else:
        u0, u1 = size * rng.uniform(*ZOOM_PAIR, 2)
        x0 = size * rng.uniform(0.22, 0.36)
        placements = [(x0, u0), (x0 + size * rng.uniform(0.3, 0.45), u1)]
        if rng.uniform() < 0.5:
            placements.reverse()
    for cx, u in placements:
        # the head top inside the frame (0.06 u below its edge) down to the feet at the bottom edge
        head_in, feet_in = 0.06 * u, size - 0.98 * u
        top = rng.uniform(min(head_in, feet_in), max(head_in, feet_in))
        _dress_figure(scene, rng, _make_body(rng, cx, top, u), grid)
    pixels = np.clip(scene.pixels * 255 + 0.5, 0, 255).astype(np.uint8)
    return pixels, scene.visible_instances()


def _split_code(split: str) -> int:
    """A stable number per split name, part of each image's random seed."""
    return zlib.crc32(split.encode())


def _params(split: str, num_images: int, size: int, seed: int) -> dict[str, Any]:
    """The generator parameters stored in ``info``; :func:`ensure_synthetic` regenerates when they differ."""
    return {
        "version": GENERATOR_VERSION,
        "split": split,
        "num_images": num_images,
        "size": size,
        "seed": seed,
    }


def annotation_record(
    annotation_id: int, image_id: int, category_id: int, attribute_ids: list[int], mask: np.ndarray
) -> dict[str, Any]:
    """One rendered instance (:func:`render_image`) as a Fashionpedia annotation: compressed RLE
    segmentation, box [x, y, w, h] and area of ``mask`` (bool [H, W])."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {
        "id": annotation_id,
        "image_id": image_id,
        "category_id": category_id,
        "attribute_ids": attribute_ids,
        "segmentation": {"size": list(mask.shape), "counts": rle["counts"].decode("ascii")},
        "bbox": [float(v) for v in mask_utils.toBbox(rle)],
        "area": int(mask_utils.area(rle)),
        "iscrowd": 0,
    }


def generate_split(
    images_dir: str | Path,
    annotations_path: str | Path,
    split: str,
    num_images: int,
    size: int,
    seed: int,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Write ``num_images`` PNG files under ``images_dir`` and their annotation JSON; return the JSON dict.

    The JSON follows the Fashionpedia schema (info, licenses, images, annotations, all 46 categories and
    294 attributes) and is written last, through a temporary file, so an interrupted run is never mistaken
    for a complete one.
    """
    if num_images < 0 or size < 64:
        raise ValueError(f"need num_images >= 0 and size >= 64, got {num_images} and {size}")
    images_dir, annotations_path = Path(images_dir), Path(annotations_path)
    images_dir.mkdir(parents=True, exist_ok=True)
    annotations_path.parent.mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for index in tqdm(
        range(num_images), desc=f"synth {split}", disable=not show_progress, dynamic_ncols=True
    ):
        rng = np.random.default_rng([seed, _split_code(split), index])
        pixels, instances = render_image(rng, size)
        image_id = index + 1
        file_name = f"synth_{split}_{index:06d}.png"
        Image.fromarray(pixels).save(images_dir / file_name, format="PNG", compress_level=6)
        images.append(
            {
                "id": image_id,
                "width": size,
                "height": size,
                "file_name": file_name,
                "license": 1,
                "time_captured": "synthetic",
                "original_url": "",
                "isstatic": 1,
                "kaggle_id": Path(file_name).stem,
            }
        )
        for instance in instances:
            annotations.append(annotation_record(len(annotations) + 1, image_id, *instance))
    coco = {
        "info": {
            "description": "fashionseg synthetic dataset: stylised figures in the Fashionpedia ontology",
            "url": "https://fashionpedia.github.io/home/",
            "version": str(GENERATOR_VERSION),
            "year": 2020,
            "contributor": "fashionseg",
            "date_created": "",
            "fashionseg_synthetic": _params(split, num_images, size, seed),
        },
        "licenses": [
            {
                "id": 1,
                "name": "CC0 1.0 (generated by fashionseg)",
                "url": "https://creativecommons.org/publicdomain/zero/1.0/",
            }
        ],
        "images": images,
        "annotations": annotations,
        **ontology_json(),
    }
    tmp = annotations_path.with_name(annotations_path.name + ".tmp")
    tmp.write_text(json.dumps(coco))
    os.replace(tmp, annotations_path)
    return coco


def _split_paths(data_cfg: DataConfig, split: str) -> tuple[Path, Path]:
    """(images folder, annotation file) of a split at ``data_cfg``'s paths."""
    return (
        data_cfg.path(getattr(data_cfg, f"{split}_images")),
        data_cfg.path(getattr(data_cfg, f"{split}_annotations")),
    )


def generate(
    out: str | Path,
    train: int = DataConfig.synth_train,
    val: int = DataConfig.synth_val,
    size: int = DataConfig.synth_size,
    seed: int = DataConfig.synth_seed,
    show_progress: bool = True,
) -> None:
    """Write both splits under ``out`` in DataConfig's default layout:
    ``images/{train,val}/*.png`` and ``annotations/instances_attributes_{train,val}.json``."""
    data_cfg = DataConfig(root=str(out))
    for split, num_images in zip(SPLITS, (train, val), strict=True):
        images_dir, annotations_path = _split_paths(data_cfg, split)
        _remove_stale(images_dir, split)
        generate_split(images_dir, annotations_path, split, num_images, size, seed, show_progress)


def _remove_stale(images_dir: Path, split: str) -> None:
    """Delete earlier generated images of a split (a shorter split must not leave extra files behind)."""
    if images_dir.is_dir():
        for stale in images_dir.glob(f"synth_{split}_*.png"):
            stale.unlink()


def _is_current(images_dir: Path, annotations_path: Path, params: dict[str, Any]) -> bool:
    try:
        coco = json.loads(annotations_path.read_text())
    except (OSError, json.JSONDecodeError):
        return False
    if coco.get("info", {}).get("fashionseg_synthetic") != params:
        return False
    return all((images_dir / im["file_name"]).is_file() for im in coco.get("images", []))


def ensure_synthetic(data_cfg: DataConfig, show_progress: bool = True) -> None:
    """Generate the synthetic dataset at ``data_cfg``'s paths unless it is there with the same parameters.

    Idempotent: a split is (re)written only when its JSON is missing or unreadable, its stored parameters
    (generator version, number of images, size, seed) differ from ``data_cfg``'s, or an image is missing.
    """
    counts = {"train": data_cfg.synth_train, "val": data_cfg.synth_val}
    for split in SPLITS:
        images_dir, annotations_path = _split_paths(data_cfg, split)
        size, seed = data_cfg.synth_size, data_cfg.synth_seed
        if _is_current(images_dir, annotations_path, _params(split, counts[split], size, seed)):
            continue
        _remove_stale(images_dir, split)
        generate_split(images_dir, annotations_path, split, counts[split], size, seed, show_progress)
