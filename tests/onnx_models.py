"""Write small, real ONNX generators and their model.json into a model repository, for service tests.

Each generator computes image = reshape(tanh(z @ W)) with fixed random
weights W, so its outputs lie in [-1, 1] like a trained DCGAN generator's.
"""

import json
import os
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
# ONNX 1.12 introduced opset 17 with IR version 8. Writing that IR version, not the newest, keeps the
# files readable by older onnxruntime builds.
IR_VERSION = 8


def build_generator(
    latent_dim: int,
    image_shape: tuple[int, int, int],
    seed: int = 0,
    batch_size: int | None = None,
    symbolic_latent_dim: bool = False,
) -> onnx.ModelProto:
    """Build a generator z [batch, latent_dim] -> image [batch, H, W, C].

    With `batch_size` set, the Reshape fixes the batch to that size, so the
    graph fails at run time on any other batch. With `symbolic_latent_dim`, the
    input declares its second dimension as the name "latent" instead of a number.
    """
    pixels = int(np.prod(image_shape))
    weights = np.random.default_rng(seed).normal(0.0, 0.5, size=(latent_dim, pixels)).astype(np.float32)
    target_shape = np.array([batch_size or -1, *image_shape], dtype=np.int64)

    batch = batch_size or "batch"
    graph = helper.make_graph(
        nodes=[
            helper.make_node("MatMul", ["z", "weights"], ["logits"]),
            helper.make_node("Tanh", ["logits"], ["pixels"]),
            helper.make_node("Reshape", ["pixels", "target_shape"], ["image"]),
        ],
        name="test_generator",
        inputs=[
            helper.make_tensor_value_info("z", TensorProto.FLOAT, ["batch", "latent" if symbolic_latent_dim else latent_dim])
        ],
        outputs=[helper.make_tensor_value_info("image", TensorProto.FLOAT, [batch, *image_shape])],
        initializer=[
            numpy_helper.from_array(weights, name="weights"),
            numpy_helper.from_array(target_shape, name="target_shape"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="ganforge-tests")
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model


def model_metadata(name: str, version: int, latent_dim: int, image_shape: tuple[int, int, int]) -> dict:
    """Return a model.json document with the keys the exporter writes."""
    return {
        "name": name,
        "version": version,
        "latent_dim": latent_dim,
        "image_shape": list(image_shape),
        "value_range": [-1.0, 1.0],
        "dataset": "test-noise",
        "training_steps": 0,
        "epochs": 0,
        "created": "2024-01-01T00:00:00+00:00",
        "source_sha256": "0" * 64,
        "input_name": "z",
        "output_name": "image",
        "onnx_opset": OPSET,
    }


def write_model(
    models_dir: Path,
    name: str,
    version: int,
    latent_dim: int = 8,
    image_shape: tuple[int, int, int] = (28, 28, 1),
    seed: int = 0,
    graph_image_shape: tuple[int, int, int] | None = None,
    batch_size: int | None = None,
    symbolic_latent_dim: bool = False,
) -> Path:
    """Write models_dir/name/version/ with generator.onnx, model.json and a model card; return the folder.

    `graph_image_shape` makes the graph's images differ from the image_shape in model.json,
    and `batch_size` and `symbolic_latent_dim` change the graph as build_generator describes.
    """
    folder = Path(models_dir) / name / str(version)
    folder.mkdir(parents=True, exist_ok=True)

    graph = build_generator(latent_dim, graph_image_shape or image_shape, seed, batch_size, symbolic_latent_dim)
    onnx.save(graph, str(folder / "generator.onnx"))
    metadata = model_metadata(name, version, latent_dim, image_shape)
    (folder / "model.json").write_text(json.dumps(metadata, indent=2), encoding="utf-8")
    (folder / "README.md").write_text(f"# {name} version {version}\n\nA test generator.\n", encoding="utf-8")
    return folder


def write_model_with_invalid_json(models_dir: Path, name: str, version: int) -> Path:
    """Write a model folder whose generator.onnx is valid but whose model.json is not JSON."""
    folder = write_model(models_dir, name, version)
    (folder / "model.json").write_text("{not json", encoding="utf-8")
    return folder


def write_model_without_graph(models_dir: Path, name: str, version: int) -> Path:
    """Write a model folder with a valid model.json but no generator.onnx."""
    folder = write_model(models_dir, name, version)
    (folder / "generator.onnx").unlink()
    return folder


def write_model_with_shape_mismatch(models_dir: Path, name: str, version: int) -> Path:
    """Write a model whose graph makes 16x16x1 images while model.json declares 28x28x1."""
    return write_model(models_dir, name, version, image_shape=(28, 28, 1), graph_image_shape=(16, 16, 1))


def edit_metadata(folder: Path, **changes) -> None:
    """Overwrite keys of the model.json in a model folder."""
    path = Path(folder) / "model.json"
    metadata = json.loads(path.read_text(encoding="utf-8"))
    metadata.update(changes)
    path.write_text(json.dumps(metadata), encoding="utf-8")


def write_model_with_metadata(models_dir: Path, name: str, version: int, **changes) -> Path:
    """Write a valid model, then overwrite keys of its model.json, for example with values of a wrong type."""
    folder = write_model(models_dir, name, version)
    edit_metadata(folder, **changes)
    return folder


def replace_with_fifo(path: Path) -> None:
    """Replace a file with a FIFO of the same name, whose open() blocks until a writer appears."""
    Path(path).unlink()
    os.mkfifo(path)
