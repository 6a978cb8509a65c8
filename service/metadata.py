"""Read and validate model.json, and check that the files of a model folder are regular files.

Every key that the service reads or returns is checked here, so a bad value
fails its own folder at load time instead of failing GET /models later.
Other keys, such as epochs or source_sha256, stay in `document` unchecked,
because the service does not read them.
"""

from __future__ import annotations

import json
import math
import os
import stat
from dataclasses import dataclass
from pathlib import Path

METADATA_FILE = "model.json"
PNG_CHANNELS = (1, 3, 4)

# Sanity limits on model.json, far above the generators this project trains (latent_dim 100,
# 28x28x1 images). They keep one bad file from allocating gigabytes in the test run.
MAX_LATENT_DIM = 65536
MAX_IMAGE_SIDE = 4096
# The exporter writes about 1 KB of model.json.
MAX_METADATA_BYTES = 1024 * 1024


class ModelLoadError(Exception):
    """A model folder that cannot be served: invalid model.json, missing or mismatched generator.onnx."""


@dataclass(frozen=True)
class ModelMetadata:
    """The fields of model.json that the service uses, plus the whole document."""

    latent_dim: int
    image_shape: tuple[int, int, int]
    value_range: tuple[float, float]
    input_name: str
    output_name: str
    dataset: str | None
    training_steps: int | None
    created: str | None
    document: dict

    @classmethod
    def read(cls, path: Path) -> "ModelMetadata":
        """Parse and validate model.json. Raises ModelLoadError naming the first invalid field."""
        try:
            document = json.loads(read_regular_file(path, MAX_METADATA_BYTES).decode("utf-8"))
        except ValueError as error:
            # UnicodeDecodeError, json.JSONDecodeError, and the plain ValueError that json raises
            # for an integer of more than sys.get_int_max_str_digits() digits.
            raise ModelLoadError(f"invalid {METADATA_FILE}: {error}") from None
        except RecursionError:
            raise ModelLoadError(f"invalid {METADATA_FILE}: JSON nested too deeply to parse") from None
        if not isinstance(document, dict):
            raise ModelLoadError(f"invalid {METADATA_FILE}: expected a JSON object, got {type(document).__name__}")

        return cls(
            latent_dim=_read_latent_dim(document),
            image_shape=_read_image_shape(document),
            value_range=_read_value_range(document),
            input_name=_read_name(document, "input_name", "z"),
            output_name=_read_name(document, "output_name", "image"),
            dataset=_read_optional_text(document, "dataset"),
            training_steps=_read_training_steps(document),
            created=_read_optional_text(document, "created"),
            document=document,
        )


def _shorten(value, limit: int = 80) -> str:
    # repr() of a 400-digit integer or a long string would flood the error list and the log.
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _is_positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _read_latent_dim(document: dict) -> int:
    latent_dim = document.get("latent_dim")
    if not _is_positive_int(latent_dim) or latent_dim > MAX_LATENT_DIM:
        raise ModelLoadError(
            f"invalid latent_dim {_shorten(latent_dim)} in {METADATA_FILE}: "
            f"expected a positive integer of at most {MAX_LATENT_DIM}"
        )
    return latent_dim


def _read_image_shape(document: dict) -> tuple[int, int, int]:
    shape = document.get("image_shape")
    valid = (
        isinstance(shape, list)
        and len(shape) == 3
        and all(_is_positive_int(size) for size in shape)
        and shape[0] <= MAX_IMAGE_SIDE
        and shape[1] <= MAX_IMAGE_SIDE
        and shape[2] in PNG_CHANNELS
    )
    if not valid:
        raise ModelLoadError(
            f"invalid image_shape {_shorten(shape)} in {METADATA_FILE}: expected [height, width, channels] "
            f"with height and width from 1 to {MAX_IMAGE_SIDE} and 1, 3 or 4 channels"
        )
    return tuple(shape)


def _finite_float(value) -> float | None:
    # Returns None for anything but a finite JSON number. Integers beyond the float range raise OverflowError.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _read_value_range(document: dict) -> tuple[float, float]:
    value_range = document.get("value_range", [-1.0, 1.0])
    bounds = [_finite_float(bound) for bound in value_range] if isinstance(value_range, list) else []
    valid = len(bounds) == 2 and None not in bounds and bounds[0] < bounds[1]
    if not valid:
        raise ModelLoadError(
            f"invalid value_range {_shorten(value_range)} in {METADATA_FILE}: "
            f"expected [minimum, maximum] of finite numbers with minimum < maximum"
        )
    return bounds[0], bounds[1]


def _read_name(document: dict, key: str, default: str) -> str:
    value = document.get(key, default)
    if not isinstance(value, str) or not value:
        raise ModelLoadError(f"invalid {key} {_shorten(value)} in {METADATA_FILE}: expected a tensor name")
    return value


def _read_optional_text(document: dict, key: str) -> str | None:
    value = document.get(key)
    if value is not None and not isinstance(value, str):
        raise ModelLoadError(f"invalid {key} {_shorten(value)} in {METADATA_FILE}: expected a string or null")
    return value


def _read_training_steps(document: dict) -> int | None:
    steps = document.get("training_steps")
    if steps is None:
        return None
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ModelLoadError(
            f"invalid training_steps {_shorten(steps)} in {METADATA_FILE}: expected a non-negative integer or null"
        )
    return steps


# Files of a model folder


def _file_kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a special file"


def _access_error(path: Path, error: OSError) -> ModelLoadError:
    if isinstance(error, FileNotFoundError):
        return ModelLoadError(f"missing {path.name}")
    return ModelLoadError(f"failed to read {path.name}: {error.strerror or error}")


def _check_mode(path: Path, mode: int) -> None:
    # Opening a FIFO blocks until a writer appears, and a device may never end, so only regular files are read.
    if not stat.S_ISREG(mode):
        raise ModelLoadError(f"{path.name} is {_file_kind(mode)}: expected a regular file")


def check_regular_file(path: Path) -> None:
    """Raise ModelLoadError unless `path` is a regular file, or a symbolic link to one."""
    try:
        mode = os.stat(path).st_mode
    except OSError as error:
        raise _access_error(path, error) from None
    _check_mode(path, mode)


def read_regular_file(path: Path, max_bytes: int) -> bytes:
    """Return the content of a regular file of at most `max_bytes` bytes, or raise ModelLoadError."""
    try:
        # O_NONBLOCK keeps open() from waiting for a writer when the path is a FIFO.
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as error:
        raise _access_error(path, error) from None

    try:
        _check_mode(path, os.fstat(descriptor).st_mode)
    except ModelLoadError:
        os.close(descriptor)
        raise

    with open(descriptor, "rb") as stream:
        try:
            data = stream.read(max_bytes + 1)
        except OSError as error:
            raise _access_error(path, error) from None

    if len(data) > max_bytes:
        raise ModelLoadError(f"{path.name} is larger than {max_bytes} bytes")
    return data
