"""Convert generator output to 8-bit images, tile them into grids and encode PNGs."""

import io
import math

import numpy as np
from PIL import Image

_PNG_MODES = {1: "L", 3: "RGB", 4: "RGBA"}


def to_uint8(images: np.ndarray, value_range: tuple[float, float] = (-1.0, 1.0)) -> np.ndarray:
    """Map float images in `value_range` to uint8 in [0, 255], clipping values outside it."""
    low, high = value_range
    if high <= low:
        raise ValueError(f"invalid value range {value_range}: the maximum must exceed the minimum")

    scaled = (np.asarray(images, dtype=np.float32) - low) / (high - low)
    return np.rint(np.clip(scaled, 0.0, 1.0) * 255.0).astype(np.uint8)


def grid_columns(count: int) -> int:
    """Return the column count of the most square grid that fits `count` images."""
    return max(1, math.ceil(math.sqrt(count)))


def make_grid(images: np.ndarray, columns: int | None = None, padding: int = 2) -> np.ndarray:
    """Tile uint8 images [N, H, W, C] into one image, row by row, with `padding` black pixels between them.

    A single image is returned unchanged, without padding.
    """
    if images.ndim != 4:
        raise ValueError(f"expected images of shape [N, H, W, C], got shape {images.shape}")

    count, height, width, channels = images.shape
    if count == 1:
        return images[0]

    columns = columns or grid_columns(count)
    rows = math.ceil(count / columns)
    grid = np.zeros(
        (rows * height + (rows + 1) * padding, columns * width + (columns + 1) * padding, channels),
        dtype=images.dtype,
    )
    for index in range(count):
        row, column = divmod(index, columns)
        top = padding + row * (height + padding)
        left = padding + column * (width + padding)
        grid[top : top + height, left : left + width] = images[index]
    return grid


def encode_png(image: np.ndarray) -> bytes:
    """Encode one uint8 image [H, W, C] with 1, 3 or 4 channels as PNG bytes.

    The encoding contains no timestamp, so equal pixels give equal bytes.
    """
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] not in _PNG_MODES:
        raise ValueError(f"expected a uint8 image [H, W, 1|3|4], got {image.dtype} {image.shape}")

    mode = _PNG_MODES[image.shape[2]]
    pixels = image[:, :, 0] if mode == "L" else image
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode=mode).save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def images_to_png(images: np.ndarray, value_range: tuple[float, float] = (-1.0, 1.0)) -> bytes:
    """Encode float images [N, H, W, C] as one PNG: the image itself when N is 1, else a grid."""
    return encode_png(make_grid(to_uint8(images, value_range)))
