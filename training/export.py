"""Export a Keras generator to a model repository folder: generator.h5, generator.onnx and model.json.

The folder is assembled under a hidden temporary name inside the repository and renamed into
place, so the service's registry never loads half a model.
"""

import hashlib
import json
import logging
import os
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import onnx
import tensorflow as tf
import tf2onnx

from ganforge.errors import InputError
from ganforge.naming import VERSION_PATTERN
from training.export_options import check_export_options
from training.run_folder import read_json_object, write_json_atomic

logger = logging.getLogger(__name__)

PARITY_TOLERANCE = 1e-4
# Channel counts that the service can encode as PNG: grayscale, RGB and RGBA.
IMAGE_CHANNELS = (1, 3, 4)
INPUT_NAME = "z"
OUTPUT_NAME = "image"


def load_generator(h5_path: Path):
    """Load a generator from HDF5 with Keras 3, falling back to tf_keras for files saved by tf.keras 2.

    Keras 3 rejects many tf.keras 2 layer configs (Conv2DTranspose's `groups`, for one).
    """
    import keras

    if Path(h5_path).is_dir():
        raise InputError(f"{h5_path} is a folder: pass the generator's .h5 file")
    if not Path(h5_path).is_file():
        raise InputError(f"generator file not found: {h5_path}")
    try:
        return keras.models.load_model(h5_path, compile=False)
    except Exception as keras3_error:  # noqa: BLE001 - Keras raises TypeError, ValueError and others here.
        first_line = str(keras3_error).splitlines()[0][:160] if str(keras3_error) else type(keras3_error).__name__
        logger.info("Keras 3 cannot load %s (%s); trying tf_keras", h5_path, first_line)

    import tf_keras

    try:
        return tf_keras.models.load_model(h5_path, compile=False)
    except Exception as error:  # noqa: BLE001 - as above, for tf_keras.
        raise InputError(f"cannot load a Keras model from {h5_path}: {error}") from None


def generator_shapes(model) -> tuple[int, list[int]]:
    """Return (latent_dim, [H, W, C]) of a generator, or raise InputError when it is not z -> image."""
    input_shape = tuple(model.inputs[0].shape)
    output_shape = tuple(model.outputs[0].shape)
    if len(model.inputs) != 1 or len(input_shape) != 2 or input_shape[1] is None:
        raise InputError(f"a generator takes one latent vector [batch, latent_dim]; this model takes {input_shape}")
    if len(model.outputs) != 1 or len(output_shape) != 4 or None in output_shape[1:]:
        raise InputError(f"a generator returns images [batch, H, W, C]; this model returns {output_shape}")
    if output_shape[3] not in IMAGE_CHANNELS:
        raise InputError(f"a generator returns images with 1, 3 or 4 channels; this model returns {output_shape[3]}")
    return int(input_shape[1]), [int(size) for size in output_shape[1:]]


def convert_to_onnx(model, latent_dim: int, output_path: Path, opset: int) -> None:
    """Convert the generator in inference mode to ONNX with input `z` and output `image`.

    tf2onnx's from_keras fails on Keras 3 models, so the model is wrapped in a tf.function
    and converted with from_function; returning a dict names the output.
    """
    signature = (tf.TensorSpec([None, latent_dim], tf.float32, name=INPUT_NAME),)

    @tf.function(input_signature=signature)
    def generate(z):
        return {OUTPUT_NAME: model(z, training=False)}

    model_proto, _ = tf2onnx.convert.from_function(generate, input_signature=signature, opset=opset)

    # tf2onnx names the dynamic batch dimension unk__N; name it "batch" on the input and the output.
    for value in (*model_proto.graph.input, *model_proto.graph.output):
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    onnx.save(model_proto, str(output_path))


def check_parity(model, onnx_path: Path, latent_dim: int, seed: int = 0, count: int = 8) -> float | None:
    """Return the max absolute difference between Keras and ONNX Runtime on fixed latent vectors.

    Returns None when onnxruntime is not installed; raises RuntimeError above PARITY_TOLERANCE.
    """
    try:
        import onnxruntime
    except ModuleNotFoundError:
        logger.warning("onnxruntime is not installed; skipping the Keras/ONNX parity check of %s", onnx_path)
        return None

    z = np.random.default_rng(seed).standard_normal((count, latent_dim)).astype(np.float32)
    expected = np.asarray(model(z, training=False))
    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    actual = session.run([OUTPUT_NAME], {INPUT_NAME: z})[0]
    difference = float(np.max(np.abs(actual - expected)))
    if difference > PARITY_TOLERANCE:
        raise RuntimeError(f"ONNX output differs from Keras by {difference:.2e} (> {PARITY_TOLERANCE:.0e}) on {onnx_path}")
    return difference


def file_sha256(path: Path) -> str:
    """Return the hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def next_version(models_dir: Path, name: str) -> int:
    """Return one more than the highest integer version folder of `name`, or 1."""
    versions = [
        int(entry.name)
        for entry in (models_dir / name).glob("*")
        if entry.is_dir() and VERSION_PATTERN.fullmatch(entry.name)
    ]
    return max(versions, default=0) + 1


def _target_folder(models_dir: Path, name: str, version: int, overwrite: bool) -> Path:
    target = models_dir / name / str(version)
    if target.exists() and not overwrite:
        raise InputError(f"model {name} version {version} already exists in {models_dir}; pass --overwrite or another --version")
    return target


def _move_into_place(staging: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        os.rename(staging, target)
        return

    # Replace an existing version with two renames; the old folder is removed only after the new one is in place.
    retired = target.parent / f".retired-{target.name}-{os.getpid()}"
    os.rename(target, retired)
    os.rename(staging, target)
    shutil.rmtree(retired)


def export_generator(
    h5_path: Path,
    models_dir: Path,
    name: str,
    version: int | None = None,
    metadata: dict | None = None,
    overwrite: bool = False,
    opset: int = 17,
) -> Path:
    """Export the generator in `h5_path` to models_dir/name/version and return that folder.

    `metadata` adds to model.json (dataset, training_steps, epochs); the shapes come from the model.
    """
    models_dir = Path(models_dir)
    check_export_options(models_dir, name, version, opset)
    models_dir.mkdir(parents=True, exist_ok=True)
    version = version if version is not None else next_version(models_dir, name)
    target = _target_folder(models_dir, name, version, overwrite)

    model = load_generator(h5_path)
    latent_dim, image_shape = generator_shapes(model)
    staging = Path(tempfile.mkdtemp(prefix=f".export-{name}-{version}-", dir=models_dir))
    # mkdtemp makes the folder readable by its owner alone. The usual umask-based mode lets a
    # service that runs as another user read the model.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(staging, 0o777 & ~umask)
    try:
        shutil.copyfile(h5_path, staging / "generator.h5")
        convert_to_onnx(model, latent_dim, staging / "generator.onnx", opset)
        difference = check_parity(model, staging / "generator.onnx", latent_dim)
        record = {
            "dataset": "unknown",
            "training_steps": 0,
            "epochs": 0,
            **(metadata or {}),
            "name": name,
            "version": version,
            "latent_dim": latent_dim,
            "image_shape": image_shape,
            "value_range": [-1.0, 1.0],
            "input_name": INPUT_NAME,
            "output_name": OUTPUT_NAME,
            "onnx_opset": opset,
            "parity_max_abs_diff": difference,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "source_sha256": file_sha256(h5_path),
            "tensorflow_version": tf.__version__,
            "tf2onnx_version": tf2onnx.__version__,
        }
        write_json_atomic(staging / "model.json", record)
        _move_into_place(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise

    logger.info("exported %s version %d to %s (parity %s)", name, version, target, difference)
    return target


def _metadata_from_run(run_dir: Path | None) -> dict:
    """Read the model metadata from run.json, or from config.json for a run stopped before its first epoch ended."""
    if run_dir is None:
        return {}
    if (run_dir / "run.json").is_file():
        run = read_json_object(run_dir / "run.json")
        return {
            "dataset": run.get("dataset", "unknown"),
            "training_steps": run.get("training_steps", 0),
            "epochs": run.get("epochs_completed", 0),
            "training_wall_time_s": run.get("wall_time_s"),
            "run_name": run.get("name"),
        }
    if (run_dir / "config.json").is_file():
        options = read_json_object(run_dir / "config.json")
        return {"dataset": options.get("dataset", "unknown"), "run_name": options.get("name")}
    return {}


def export_from_run(
    run_dir: Path | None,
    h5_path: Path | None,
    models_dir: Path,
    name: str | None = None,
    version: int | None = None,
    overwrite: bool = False,
    opset: int = 17,
) -> Path:
    """Export a training run's generator (or a given .h5), taking the name and metadata from run.json."""
    if run_dir is None and h5_path is None:
        raise InputError("nothing to export: pass --run-dir (a training run folder) or --h5 (a generator file)")
    if run_dir is not None and not run_dir.is_dir():
        raise InputError(f"run folder not found: {run_dir}")

    h5_path = h5_path or run_dir / "generator.h5"
    metadata = _metadata_from_run(run_dir)
    run_name = metadata.pop("run_name", None)
    name = name or run_name or Path(h5_path).stem
    return export_generator(h5_path, models_dir, name, version, metadata, overwrite, opset)
