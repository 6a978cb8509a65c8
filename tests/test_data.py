"""Training data: IDX files, image folders and the tf.data pipeline."""

import gzip
import logging

import numpy as np
import pytest

from conftest import DATA_DIR, write_idx
from ganforge.errors import InputError
from ganforge.image_io import ImageDecodeError, load_image_folder
from training.config import TrainConfig
from training.data import load_fashion_mnist, load_training_images, make_dataset, read_idx, steps_per_epoch

ODD_IMAGES = DATA_DIR / "odd-images"
DECODABLE = {
    "gray_L.png", "rgba.png", "palette_P.png", "gray16_I16.png", "cmyk.jpg",
    "rgb_64x48.webp", "one_pixel.png", "UPPER_CASE_EXT.PNG",
}
UNDECODABLE = {"truncated.jpg", "empty.png", "not_an_image.png"}


def test_real_idx_files_have_expected_shapes(fashion_mnist_dir):
    images = read_idx(fashion_mnist_dir / "train-images-idx3-ubyte.gz")
    labels = read_idx(fashion_mnist_dir / "train-labels-idx1-ubyte.gz")

    assert images.shape == (60000, 28, 28)
    assert images.dtype == np.uint8
    assert labels.shape == (60000,)
    # The first Fashion-MNIST training image is an ankle boot (class 9).
    assert labels[0] == 9
    assert images.max() == 255


def test_fashion_mnist_from_data_dir(fashion_mnist_slice):
    images = load_fashion_mnist(fashion_mnist_slice)

    assert images.shape == (256, 28, 28, 1)
    assert images[:, :, :, 0].mean() > 20


def test_idx_truncated_is_rejected(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    write_idx(path, np.zeros((4, 28, 28), np.uint8))
    data = gzip.open(path).read()
    with gzip.open(path, "wb") as stream:
        stream.write(data[:-10])

    with pytest.raises(InputError, match="truncated"):
        read_idx(path)


def test_idx_wrong_magic_is_rejected(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(b"\x00\x00\x0d\x03" + b"\x00" * 12)

    with pytest.raises(InputError, match="not an unsigned-byte IDX file"):
        read_idx(path)


def test_missing_data_dir_names_path(tmp_path):
    missing = tmp_path / "nowhere"

    with pytest.raises(InputError, match="data folder not found: .*nowhere"):
        load_fashion_mnist(missing)


def test_data_dir_without_idx_files(tmp_path):
    with pytest.raises(InputError, match="no train-images-idx3-ubyte"):
        load_fashion_mnist(tmp_path)


def test_limit_takes_first_images(fashion_mnist_slice):
    config = TrainConfig(data_dir=fashion_mnist_slice, limit=10)

    assert load_training_images(config).shape == (10, 28, 28, 1)


def test_pipeline_keeps_partial_batch():
    images = np.arange(70 * 4, dtype=np.uint8).reshape(70, 2, 2, 1)

    sizes = [int(batch.shape[0]) for batch in make_dataset(images, batch_size=32, seed=0, epoch=0)]

    assert sizes == [32, 32, 6]
    assert steps_per_epoch(70, 32) == 3


def test_pipeline_scales_to_unit_range():
    images = np.array([0, 255, 128], dtype=np.uint8).reshape(3, 1, 1, 1)

    values = np.sort(next(iter(make_dataset(images, 3, seed=0, epoch=0))).numpy().ravel())

    np.testing.assert_allclose(values, [-1.0, 128 / 127.5 - 1.0, 1.0], atol=1e-6)


def test_pipeline_order_depends_on_seed_and_epoch():
    images = np.arange(64, dtype=np.uint8).reshape(64, 1, 1, 1)

    def order(seed, epoch, skip=0):
        batches = make_dataset(images, 8, seed=seed, epoch=epoch, skip_batches=skip)
        return np.concatenate([batch.numpy().ravel() for batch in batches])

    assert np.array_equal(order(0, 0), order(0, 0))
    assert not np.array_equal(order(0, 0), order(0, 1))
    assert np.array_equal(order(0, 1, skip=3), order(0, 1)[24:])


def test_folder_with_odd_images(caplog):
    with caplog.at_level(logging.WARNING):
        result = load_image_folder(ODD_IMAGES, (28, 28), channels=3)

    assert {path.name for path in result.files} == DECODABLE
    assert {path.name for path, _ in result.skipped} == UNDECODABLE
    assert result.images.shape == (8, 28, 28, 3)
    for name in UNDECODABLE:
        assert sum(name in record.message for record in caplog.records) == 1
    assert "skipped 3 undecodable file(s)" in caplog.text


def test_folder_strict_mode_raises():
    with pytest.raises(ImageDecodeError, match="empty.png"):
        load_image_folder(ODD_IMAGES, (28, 28), channels=1, strict=True)


def test_sixteen_bit_gray_is_scaled():
    result = load_image_folder(ODD_IMAGES, (28, 28), channels=1)
    by_name = dict(zip((path.name for path in result.files), result.images))

    # A 16-bit image read without scaling would clip to 255 almost everywhere.
    gray16 = by_name["gray16_I16.png"]
    assert 30 < gray16.mean() < 225
    assert gray16.min() < gray16.max()


def test_alpha_is_composited_on_black(tmp_path):
    from PIL import Image

    Image.new("RGBA", (4, 4), (255, 255, 255, 0)).save(tmp_path / "clear.png")

    result = load_image_folder(tmp_path, (4, 4), channels=3)

    assert result.images.max() == 0


def test_folder_dataset_without_images(tmp_path):
    (tmp_path / "notes.txt").write_text("no images here")
    config = TrainConfig(dataset="folder", data_dir=tmp_path, image_size=28, channels=1)

    with pytest.raises(InputError, match="no decodable training images"):
        load_training_images(config)


def test_dangling_link_is_skipped(tmp_path):
    from PIL import Image

    Image.new("L", (8, 8), 200).save(tmp_path / "good.png")
    (tmp_path / "dangling.png").symlink_to(tmp_path / "missing.png")

    result = load_image_folder(tmp_path, (8, 8), channels=1)

    assert [path.name for path in result.files] == ["good.png"]
    assert [path.name for path, _ in result.skipped] == ["dangling.png"]


def test_decompression_bomb_is_skipped(tmp_path):
    from PIL import Image

    Image.new("1", (20000, 20000)).save(tmp_path / "bomb.png")

    result = load_image_folder(tmp_path, (8, 8), channels=1)

    assert result.files == []
    assert "exceeds limit" in result.skipped[0][1]
