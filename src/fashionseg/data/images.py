"""Reading photos the way every part of fashionseg sees them: RGB, upright, 8 bits per channel.

Phones store the camera's orientation in EXIF instead of rotating pixels, so the EXIF orientation is
applied (as detectron2's ``read_image`` does); otherwise a portrait photo arrives on its side and its masks
no longer line up. Grayscale, palette, transparent, CMYK and 16-bit/float images are converted to RGB;
transparent pixels are composited over white, 16-bit values are scaled (not clipped) to 8 bits.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from fashionseg.errors import FashionsegError

# Decompression-bomb guard: a 10,000 x 10,000 photo is larger than any Fashionpedia or phone image, while a
# crafted PNG of a few KB could otherwise ask for gigabytes of memory.
MAX_PIXELS = 100_000_000

_EXIF_ORIENTATION = 0x0112
_SWAPS_AXES = {5, 6, 7, 8}  # orientations that rotate by 90 or 270 degrees


class ImageReadError(FashionsegError):
    """An image file is missing, not an image, truncated, corrupt or too large; the message names it."""


def _open(path: Path, max_pixels: int) -> Image.Image:
    """A lazily opened image (header read only), with the size guard applied."""
    if not path.is_file():
        raise ImageReadError(f"image file {path} does not exist")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
    except Image.DecompressionBombError as exc:
        raise ImageReadError(f"{path}: {exc}") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageReadError(f"{path} is not a readable image ({exc})") from None
    width, height = image.size
    if width * height > max_pixels:
        image.close()
        raise ImageReadError(
            f"{path} is {width} x {height} = {width * height:,} pixels, more than the limit of "
            f"{max_pixels:,} (a guard against decompression bombs); downscale the image first"
        )
    return image


def image_size(path: str | Path, max_pixels: int = MAX_PIXELS) -> tuple[int, int]:
    """``(width, height)`` as :func:`read_image` returns it (EXIF rotation included), from the header only.

    Raises :class:`ImageReadError` for a missing or unidentifiable file. A truncated file passes; only a full
    decode (:func:`read_image`) finds that.
    """
    with _open(Path(path), max_pixels) as image:
        width, height = image.size
        try:
            orientation = image.getexif().get(_EXIF_ORIENTATION, 1)
        except (OSError, SyntaxError, ValueError):
            orientation = 1  # unreadable EXIF: exif_transpose ignores it as well
    return (height, width) if orientation in _SWAPS_AXES else (width, height)


def _to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB (see the module docstring for the rules)."""
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        values = np.asarray(image, dtype=np.float64)
        gray = np.clip(np.round(values / 257.0), 0, 255).astype(np.uint8)
        return Image.fromarray(gray).convert("RGB")
    if mode == "F":
        values = np.asarray(image, dtype=np.float64)
        scale = 255.0 if np.nanmax(values, initial=0.0) <= 1.0 else 1.0  # float images are 0-1 or 0-255
        gray = np.clip(np.round(np.nan_to_num(values) * scale), 0, 255).astype(np.uint8)
        return Image.fromarray(gray).convert("RGB")
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        mode = image.mode
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def read_image(path: str | Path, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """The image at ``path`` as an 8-bit RGB PIL image with its EXIF orientation applied.

    Raises :class:`ImageReadError` naming the file when it is missing, not an image, truncated or corrupt,
    or has more than ``max_pixels`` pixels.
    """
    path = Path(path)
    with _open(path, max_pixels) as image:
        try:
            image.load()
            upright = ImageOps.exif_transpose(image)
            return _to_rgb(upright)
        except (OSError, SyntaxError, ValueError) as exc:
            raise ImageReadError(
                f"{path} is truncated or corrupt ({exc}); re-download or remove it"
            ) from None
