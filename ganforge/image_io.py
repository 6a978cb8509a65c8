"""Decode image files and folders of images into uint8 arrays of a fixed size and channel count.

Conversion rules, applied in this order to every decodable file:

1. EXIF orientation is applied.
2. 16-bit and 32-bit integer grayscale ("I;16", "I") is scaled from [0, 65535] to [0, 255];
   floating-point grayscale ("F") is read as [0, 1], with NaN as 0.
3. Transparency (RGBA, LA, or a palette with a transparent colour) is composited onto black,
   the background of Fashion-MNIST-like data.
4. The image is converted to RGB (3 channels) or to ITU-R 601-2 luma (1 channel).
5. The image is resized to the requested size with Lanczos filtering when its size differs.

Files that cannot be decoded (empty, truncated, not an image, a dangling link, or larger than Pillow's
decompression-bomb limit) are skipped with one warning each, or raise in strict mode.
"""

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"})


class ImageDecodeError(ValueError):
    """An image file that exists but cannot be decoded."""


@dataclass
class FolderImages:
    """Images decoded from a folder, with the files that were skipped and why."""

    images: np.ndarray
    files: list[Path]
    skipped: list[tuple[Path, str]] = field(default_factory=list)


def list_image_files(folder: Path) -> list[Path]:
    """List image files under `folder`, recursively, sorted, matching suffixes case-insensitively.

    Hidden files and folders (names starting with ".") are ignored.
    """
    found = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in names:
            if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_SUFFIXES:
                found.append(Path(root) / name)
    return sorted(found)


def _scale_high_bit_depth(image: Image.Image) -> Image.Image:
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        pixels = np.asarray(image, dtype=np.float64) * (255.0 / 65535.0)
    elif image.mode == "F":
        pixels = np.nan_to_num(np.asarray(image, dtype=np.float64), nan=0.0, posinf=1.0, neginf=0.0) * 255.0
    else:
        return image
    return Image.fromarray(np.rint(np.clip(pixels, 0, 255)).astype(np.uint8), mode="L")


def _composite_on_black(image: Image.Image) -> Image.Image:
    has_alpha = image.mode in ("RGBA", "LA", "RGBa", "La") or (
        image.mode == "P" and "transparency" in image.info
    )
    if not has_alpha:
        return image
    rgba = image.convert("RGBA")
    background = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
    return Image.alpha_composite(background, rgba).convert("RGB")


def convert_image(image: Image.Image, size: tuple[int, int], channels: int) -> np.ndarray:
    """Apply the module's conversion rules and return a uint8 array [height, width, channels]."""
    if channels not in (1, 3):
        raise ValueError(f"invalid channel count {channels}: use 1 (grayscale) or 3 (RGB)")

    image = ImageOps.exif_transpose(image)
    image = _scale_high_bit_depth(image)
    image = _composite_on_black(image)
    image = image.convert("L" if channels == 1 else "RGB")

    height, width = size
    if image.size != (width, height):
        image = image.resize((width, height), Image.Resampling.LANCZOS)

    pixels = np.asarray(image, dtype=np.uint8)
    return pixels.reshape(height, width, channels)


def load_image(path: Path, size: tuple[int, int], channels: int) -> np.ndarray:
    """Decode one file and convert it; raise ImageDecodeError naming the file when it cannot be decoded."""
    try:
        if path.stat().st_size == 0:
            raise ImageDecodeError(f"{path}: cannot decode image (the file is empty)")
        with Image.open(path) as image:
            image.load()
            return convert_image(image, size, channels)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        reason = str(error) or type(error).__name__
        raise ImageDecodeError(f"{path}: cannot decode image ({reason})") from error


def load_image_folder(
    folder: Path, size: tuple[int, int], channels: int, strict: bool = False, limit: int | None = None
) -> FolderImages:
    """Decode every image file under `folder` into one uint8 array [N, height, width, channels].

    Undecodable files are logged and listed in `skipped`; with `strict` the first one raises
    ImageDecodeError. `limit` stops after that many decoded images.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder not found: {folder}")

    images, used, skipped = [], [], []
    for path in list_image_files(folder):
        if limit is not None and len(images) >= limit:
            break
        try:
            images.append(load_image(path, size, channels))
            used.append(path)
        except ImageDecodeError as error:
            if strict:
                raise
            logger.warning("skipping %s", error)
            skipped.append((path, str(error)))

    if skipped:
        logger.warning("skipped %d undecodable file(s) in %s; used %d image(s)", len(skipped), folder, len(images))
    stacked = np.stack(images) if images else np.zeros((0, *size, channels), dtype=np.uint8)
    return FolderImages(images=stacked, files=used, skipped=skipped)
