"""Fixtures shared by the training, export and data tests."""

import gzip
import os
from pathlib import Path

import numpy as np
import pytest

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
DATA_DIR = Path(__file__).parent / "data"

# Keep TensorFlow's C++ start-up lines out of the test output.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array as a gzip-compressed IDX file."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(size.to_bytes(4, "big") for size in array.shape)
    with gzip.open(path, "wb") as stream:
        stream.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture(scope="session")
def fashion_mnist_dir() -> Path:
    """The folder of the real Fashion-MNIST IDX files that Debian's dataset-fashion-mnist installs."""
    if not (FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz").is_file():
        pytest.fail(f"Fashion-MNIST not found in {FASHION_MNIST_DIR}: run `make test`, which installs dataset-fashion-mnist")
    return FASHION_MNIST_DIR


@pytest.fixture(scope="session")
def fashion_mnist_slice(fashion_mnist_dir, tmp_path_factory) -> Path:
    """A folder holding the first 256 real training images as an IDX file."""
    from training.data import read_idx

    images = read_idx(fashion_mnist_dir / "train-images-idx3-ubyte.gz")[:256]
    folder = tmp_path_factory.mktemp("fashion-mnist-slice")
    write_idx(folder / "train-images-idx3-ubyte.gz", images)
    return folder
