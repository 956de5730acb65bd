"""read_image / image_size: EXIF orientation, mode conversions, and every unreadable-file case."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fashionseg.data.images import ImageReadError, image_size, read_image
from fashionseg.errors import FashionsegError

RED, BLUE = (255, 0, 0), (0, 0, 255)


def _exif_rotated_jpeg(path: Path) -> None:
    """Stored 40 wide x 20 high (left half red, right blue), EXIF orientation 6 (display rotated 90 CW)."""
    pixels = np.zeros((20, 40, 3), dtype=np.uint8)
    pixels[:, :20] = RED
    pixels[:, 20:] = BLUE
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(pixels).save(path, quality=95, exif=exif)


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    path = tmp_path / "rotated.jpg"
    _exif_rotated_jpeg(path)
    image = read_image(path)
    assert image.mode == "RGB"
    assert image.size == (20, 40) == image_size(path)
    pixels = np.asarray(image).astype(int)
    # rotating clockwise moves the stored left (red) half to the top
    assert np.abs(pixels[5, 10] - RED).max() < 40
    assert np.abs(pixels[35, 10] - BLUE).max() < 40


def test_cmyk_jpeg_becomes_rgb(tmp_path: Path) -> None:
    path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(path, quality=95)  # full magenta + yellow = red
    assert Image.open(path).mode == "CMYK"
    pixels = np.asarray(read_image(path)).astype(int)
    assert pixels.shape == (16, 16, 3)
    assert np.abs(pixels - RED).max() < 30


def test_16bit_png_is_scaled_not_clipped(tmp_path: Path) -> None:
    path = tmp_path / "deep.png"
    values = np.array([[0, 257 * 100, 65535]], dtype=np.uint16)
    Image.fromarray(values).save(path)
    assert Image.open(path).mode.startswith("I")
    pixels = np.asarray(read_image(path))
    assert pixels.shape == (1, 3, 3)
    assert pixels[0, :, 0].tolist() == [0, 100, 255]
    assert (pixels == pixels[..., :1]).all()


def test_float_image_in_0_1_is_scaled(tmp_path: Path) -> None:
    path = tmp_path / "float.tif"
    Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32)).save(path)
    assert read_image(path).getpixel((1, 0)) == (128, 128, 128)


def test_grayscale_is_replicated(tmp_path: Path) -> None:
    path = tmp_path / "gray.png"
    Image.new("L", (5, 4), 77).save(path)
    image = read_image(path)
    assert image.mode == "RGB" and image.size == (5, 4)
    assert image.getpixel((2, 2)) == (77, 77, 77)


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P"])
def test_transparency_is_composited_over_white(tmp_path: Path, mode: str) -> None:
    rgba = np.zeros((4, 6, 4), dtype=np.uint8)
    rgba[:, :3] = (200, 10, 10, 255)  # opaque left half
    image = Image.fromarray(rgba)  # the right half is transparent black
    if mode == "LA":
        image = image.convert("LA")
    elif mode == "P":
        image = image.convert("P")
        image.info["transparency"] = image.getpixel((5, 0))
    path = tmp_path / f"alpha_{mode}.png"
    image.save(path, **({"transparency": image.info["transparency"]} if mode == "P" else {}))
    out = read_image(path)
    assert out.mode == "RGB"
    assert out.getpixel((5, 0)) == (255, 255, 255)
    left = out.getpixel((0, 0))
    assert left != (255, 255, 255) and left != (0, 0, 0)


def test_truncated_png_raises_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "truncated.png"
    noise = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert image_size(path) == (64, 64)  # the header alone looks fine
    with pytest.raises(ImageReadError, match="truncated.png"):
        read_image(path)


def test_text_file_named_jpg_raises(tmp_path: Path) -> None:
    path = tmp_path / "notes.jpg"
    path.write_text("this is not an image\n")
    with pytest.raises(ImageReadError, match="notes.jpg"):
        read_image(path)
    with pytest.raises(ImageReadError, match="notes.jpg"):
        image_size(path)


def test_missing_file_raises_a_fashionseg_error(tmp_path: Path) -> None:
    with pytest.raises(FashionsegError, match="missing.png.*does not exist"):
        read_image(tmp_path / "missing.png")


def test_decompression_bomb_guard(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    Image.new("RGB", (30, 20)).save(path)
    with pytest.raises(ImageReadError, match=r"big.png is 30 x 20 = 600 pixels.*decompression bomb"):
        read_image(path, max_pixels=599)
    assert read_image(path, max_pixels=600).size == (30, 20)
