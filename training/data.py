"""Training images: Fashion-MNIST IDX files or any folder of images, as a shuffled tf.data pipeline in [-1, 1]."""

import gzip
import logging
from pathlib import Path

import numpy as np
import tensorflow as tf

from ganforge.errors import InputError
from ganforge.image_io import IMAGE_SUFFIXES, load_image_folder
from training.config import DEFAULT_FASHION_MNIST_DIR, TrainConfig

logger = logging.getLogger(__name__)

# IDX magic numbers: two zero bytes, a type code (0x08 = unsigned byte), then the number of dimensions.
_IDX_UBYTE = 0x08
_FASHION_MNIST_FILES = {"train": "train-images-idx3-ubyte", "test": "t10k-images-idx3-ubyte"}


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file of unsigned bytes, plain or gzip-compressed, into an array of its stored shape."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as stream:
            data = stream.read()
    except (OSError, EOFError) as error:
        raise InputError(f"cannot read IDX file {path}: {error}") from None

    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != _IDX_UBYTE:
        raise InputError(f"{path} is not an unsigned-byte IDX file (header {data[:4].hex() or 'empty'})")

    ndim = data[3]
    header_size = 4 + 4 * ndim
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    expected = header_size + int(np.prod(shape))
    if len(data) != expected:
        raise InputError(f"{path} is truncated or padded: {len(data)} bytes, expected {expected} for shape {shape}")
    return np.frombuffer(data, dtype=np.uint8, offset=header_size).reshape(shape)


def _find_idx(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _load_with_keras(split: str) -> np.ndarray:
    try:
        (train, _), (test, _) = tf.keras.datasets.fashion_mnist.load_data()
    except Exception as error:  # noqa: BLE001 - Keras raises many kinds of network and file errors here.
        raise InputError(
            f"Fashion-MNIST not found in {DEFAULT_FASHION_MNIST_DIR} and the Keras download failed ({error}); "
            "install Debian's dataset-fashion-mnist package or pass --data-dir"
        ) from None
    return train if split == "train" else test


def load_fashion_mnist(data_dir: Path | None, split: str = "train") -> np.ndarray:
    """Load Fashion-MNIST images as uint8 [N, 28, 28, 1].

    Reads `data_dir`, else the folder of Debian's dataset-fashion-mnist package, else Keras' dataset
    cache, which downloads the files when online.
    """
    stem = _FASHION_MNIST_FILES[split]
    if data_dir is not None:
        if not Path(data_dir).is_dir():
            raise InputError(f"data folder not found: {data_dir}")
        path = _find_idx(Path(data_dir), stem)
        if path is None:
            raise InputError(f"no {stem} or {stem}.gz in {data_dir}; pass the folder holding the Fashion-MNIST IDX files")
        images = read_idx(path)
    elif (path := _find_idx(DEFAULT_FASHION_MNIST_DIR, stem)) is not None:
        images = read_idx(path)
    else:
        logger.info("Fashion-MNIST not in %s; trying Keras' dataset cache", DEFAULT_FASHION_MNIST_DIR)
        images = _load_with_keras(split)

    if images.ndim != 3:
        raise InputError(f"expected Fashion-MNIST images of shape [N, 28, 28], got {images.shape}")
    return images[..., np.newaxis]


def load_training_images(config: TrainConfig) -> np.ndarray:
    """Load the configured training images as uint8 [N, size, size, channels]; raise InputError when none."""
    if config.dataset == "fashion-mnist":
        if (config.image_size, config.channels) != (28, 1):
            raise InputError("Fashion-MNIST images are 28x28 grayscale: set image-size 28 and channels 1")
        images = load_fashion_mnist(config.data_dir)
        if config.limit is not None:
            images = images[: config.limit]
    else:
        size = (config.image_size, config.image_size)
        try:
            images = load_image_folder(config.data_dir, size, config.channels, limit=config.limit).images
        except FileNotFoundError:
            raise InputError(f"image folder not found: {config.data_dir}") from None

    if len(images) == 0:
        suffixes = " ".join(sorted(IMAGE_SUFFIXES))
        raise InputError(
            f"no decodable training images in {config.data_dir or config.dataset}; "
            f"add image files with one of the suffixes {suffixes}"
        )
    logger.info("loaded %d training images of shape %s", len(images), images.shape[1:])
    return images


def scale_images(images: tf.Tensor) -> tf.Tensor:
    """Map uint8 pixels [0, 255] to float32 [-1, 1], the range of the generator's tanh output."""
    return tf.cast(images, tf.float32) / 127.5 - 1.0


def make_dataset(images: np.ndarray, batch_size: int, seed: int, epoch: int, skip_batches: int = 0) -> tf.data.Dataset:
    """Build one epoch of shuffled batches in [-1, 1], keeping the last partial batch.

    The shuffle order depends only on `seed` and `epoch`, so a resumed run can skip the
    `skip_batches` it already trained on and see the same batches as an uninterrupted run.
    """
    dataset = tf.data.Dataset.from_tensor_slices(images)
    dataset = dataset.shuffle(len(images), seed=seed + epoch, reshuffle_each_iteration=False)
    dataset = dataset.batch(batch_size, drop_remainder=False).map(scale_images, num_parallel_calls=tf.data.AUTOTUNE)
    if skip_batches:
        dataset = dataset.skip(skip_batches)
    return dataset.prefetch(tf.data.AUTOTUNE)


def steps_per_epoch(image_count: int, batch_size: int) -> int:
    """Return the number of batches in one epoch, counting the last partial batch."""
    return -(-image_count // batch_size)
