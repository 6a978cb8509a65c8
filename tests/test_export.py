"""Export to the model repository: Keras/ONNX parity, model.json, atomic folders, legacy tf.keras 2 files."""

import json
import os
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime
import pytest

from conftest import DATA_DIR
from ganforge.errors import InputError
from training.export import export_generator, export_from_run, load_generator
from training.models import build_generator

LEGACY = DATA_DIR / "legacy-h5"


@pytest.fixture(scope="module")
def generator_h5(tmp_path_factory):
    """A small generator whose BatchNorm moving statistics are far from their initial values."""
    generator = build_generator(latent_dim=16, width=8)
    rng = np.random.default_rng(1)
    for layer in generator.layers:
        if layer.__class__.__name__ == "BatchNormalization":
            gamma, beta, mean, variance = layer.get_weights()
            layer.set_weights([
                gamma + rng.normal(0, 0.1, gamma.shape), beta + rng.normal(0, 0.1, beta.shape),
                rng.normal(0, 0.5, mean.shape), rng.uniform(0.5, 2.0, variance.shape),
            ])
    path = tmp_path_factory.mktemp("generator") / "generator.h5"
    generator.save(path)
    return path


def run_onnx(folder, z):
    session = onnxruntime.InferenceSession(str(folder / "generator.onnx"), providers=["CPUExecutionProvider"])
    return session.run(["image"], {"z": z})[0]


def test_onnx_matches_keras_in_inference_mode(generator_h5, tmp_path):
    folder = export_generator(generator_h5, tmp_path, "tiny", metadata={"dataset": "fashion-mnist"})
    z = np.random.default_rng(7).standard_normal((5, 16)).astype(np.float32)

    expected = np.asarray(load_generator(generator_h5)(z, training=False))
    actual = run_onnx(folder, z)

    assert actual.shape == (5, 28, 28, 1)
    assert np.max(np.abs(actual - expected)) <= 1e-4


def test_onnx_graph_names_and_dynamic_batch(generator_h5, tmp_path):
    folder = export_generator(generator_h5, tmp_path, "tiny")
    graph = onnx.load(folder / "generator.onnx").graph

    assert [node.name for node in graph.input] == ["z"]
    assert [node.name for node in graph.output] == ["image"]
    assert graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert graph.output[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    for count in (1, 3):
        z = np.zeros((count, 16), np.float32)
        assert run_onnx(folder, z).shape == (count, 28, 28, 1)


def test_model_json_fields(generator_h5, tmp_path):
    folder = export_generator(generator_h5, tmp_path, "tiny", metadata={"dataset": "fashion-mnist", "training_steps": 9})
    record = json.loads((folder / "model.json").read_text())

    assert record["name"] == "tiny"
    assert record["version"] == 1
    assert record["latent_dim"] == 16
    assert record["image_shape"] == [28, 28, 1]
    assert record["value_range"] == [-1.0, 1.0]
    assert record["dataset"] == "fashion-mnist"
    assert record["training_steps"] == 9
    assert len(record["source_sha256"]) == 64
    assert record["created"].endswith("+00:00")
    assert (folder / "generator.h5").read_bytes() == generator_h5.read_bytes()


def test_versions_increment_and_no_temporary_folders(generator_h5, tmp_path):
    first = export_generator(generator_h5, tmp_path, "tiny")
    second = export_generator(generator_h5, tmp_path, "tiny")

    assert (first.name, second.name) == ("1", "2")
    assert first.stat().st_mode & 0o055 == 0o055 & ~_umask()
    assert sorted(entry.name for entry in tmp_path.iterdir()) == ["tiny"]


def test_existing_version_needs_overwrite(generator_h5, tmp_path):
    export_generator(generator_h5, tmp_path, "tiny", version=1)

    with pytest.raises(InputError, match="already exists.*--overwrite"):
        export_generator(generator_h5, tmp_path, "tiny", version=1)

    replaced = export_generator(generator_h5, tmp_path, "tiny", version=1, overwrite=True)
    assert (replaced / "model.json").is_file()
    assert sorted(entry.name for entry in tmp_path.iterdir()) == ["tiny"]


def test_failed_export_leaves_nothing(tmp_path):
    from training.models import build_discriminator

    not_a_generator = tmp_path / "discriminator.h5"
    build_discriminator(width=8).save(not_a_generator)
    models_dir = tmp_path / "models"

    with pytest.raises(InputError, match="a generator takes one latent vector"):
        export_generator(not_a_generator, models_dir, "broken")

    assert list(models_dir.iterdir()) == []


def test_invalid_model_name(generator_h5, tmp_path):
    with pytest.raises(InputError, match="invalid model name '../x'"):
        export_generator(generator_h5, tmp_path, "../x")


def test_export_from_run_reads_run_json(generator_h5, tmp_path):
    run_dir = generator_h5.parent
    (run_dir / "run.json").write_text(json.dumps({"name": "from-run", "dataset": "fashion-mnist", "training_steps": 42, "epochs_completed": 2}))

    folder = export_from_run(run_dir, None, tmp_path / "models")
    record = json.loads((folder / "model.json").read_text())

    assert folder.parent.name == "from-run"
    assert (record["training_steps"], record["epochs"]) == (42, 2)


def test_legacy_tf_keras_h5_matches_expected(tmp_path):
    folder = export_generator(LEGACY / "generator_tfkeras2.h5", tmp_path, "legacy")
    z = np.load(LEGACY / "z.npy")
    expected = np.load(LEGACY / "expected.npy")

    actual = run_onnx(folder, z)

    assert actual.shape == expected.shape
    assert np.max(np.abs(actual - expected)) <= 1e-4
    assert json.loads((folder / "model.json").read_text())["latent_dim"] == 100


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--h5", "/nonexistent/generator.h5"], "generator file not found: /nonexistent/generator.h5"),
        (["--run-dir", "/nonexistent/run"], "run folder not found: /nonexistent/run"),
        (["--h5", "x.h5", "--name", "bad name"], "invalid model name 'bad name'"),
        (["--h5", "x.h5", "--version", "0"], "invalid model version 0"),
        ([], "nothing to export"),
        (["--h5", "x.h5", "--opset", "5"], "invalid opset 5"),
        (["--h5", "x.h5", "--name", "ok\n"], "invalid model name 'ok\\n'"),
        (["--h5", "x.h5", "--version", str(10**18)], "invalid model version 1000000000000000000"),
    ],
)
def test_export_cli_rejects_bad_input(tmp_path, arguments, message):
    command = [sys.executable, "-m", "ganforge.cli", "export", "--models-dir", str(tmp_path), *arguments]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)

    assert result.returncode == 2
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("ganforge export: error:")]
    assert len(error_lines) == 1
    assert message in error_lines[0]


@pytest.mark.parametrize("opset", [13, 18])
def test_supported_opsets_export(generator_h5, tmp_path, opset):
    folder = export_generator(generator_h5, tmp_path, "tiny", opset=opset)

    assert json.loads((folder / "model.json").read_text())["onnx_opset"] == opset
    assert run_onnx(folder, np.zeros((2, 16), np.float32)).shape == (2, 28, 28, 1)


def test_models_dir_that_is_a_file(generator_h5, tmp_path):
    (tmp_path / "afile").write_text("")

    with pytest.raises(InputError, match="is a file, not a folder"):
        export_generator(generator_h5, tmp_path / "afile", "tiny")


def test_garbage_run_json(generator_h5, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "generator.h5").write_bytes(generator_h5.read_bytes())
    (run_dir / "run.json").write_text("{not json")

    with pytest.raises(InputError, match="cannot read .*run.json"):
        export_from_run(run_dir, None, tmp_path / "models")


def test_odd_version_folders_are_ignored(generator_h5, tmp_path):
    for odd in ("\u00b2", "007", "latest"):
        (tmp_path / "tiny" / odd).mkdir(parents=True)

    assert export_generator(generator_h5, tmp_path, "tiny").name == "1"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
