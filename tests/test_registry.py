"""Tests of the model registry and provider settings, with real ONNX generators on disk."""

import logging
import os
import shutil
import threading

import numpy as np
import onnxruntime
import pytest

from onnx_models import (
    edit_metadata,
    replace_with_fifo,
    write_model,
    write_model_with_invalid_json,
    write_model_with_shape_mismatch,
    write_model_without_graph,
)
from service.registry import GenerationError, ModelNotFoundError, ModelRegistry, latents_from_seed
from service.settings import CPU_PROVIDER, CUDA_PROVIDER, Settings, SettingsError, resolve_providers


def touch_later(path, seconds: int = 10) -> None:
    """Move a file's mtime forward, so that a rewrite within one clock tick still counts as a change."""
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + seconds * 10**9))


@pytest.fixture
def models_dir(tmp_path):
    return tmp_path / "models"


# Loading


def test_load_all_loads_valid_models(models_dir):
    write_model(models_dir, "digits", 1)
    write_model(models_dir, "colors", 3, latent_dim=4, image_shape=(6, 5, 3))

    registry = ModelRegistry(models_dir)
    changes = registry.load_all()

    assert changes.loaded == ["colors/3", "digits/1"]
    assert len(registry) == 2
    assert [model.key for model in registry.list()] == ["colors/3", "digits/1"]
    assert registry.errors() == []


def test_loaded_model_metadata(models_dir):
    write_model(models_dir, "colors", 3, latent_dim=4, image_shape=(6, 5, 3))
    registry = ModelRegistry(models_dir)
    registry.load_all()

    model = registry.get("colors")

    assert model.latent_dim == 4
    assert model.image_shape == (6, 5, 3)
    assert model.value_range == (-1.0, 1.0)
    assert model.metadata.dataset == "test-noise"
    assert model.providers == [CPU_PROVIDER]
    assert model.load_seconds > 0


def test_load_all_logs_each_model(models_dir, caplog):
    write_model(models_dir, "digits", 1)
    caplog.set_level(logging.INFO, logger="service.registry")

    ModelRegistry(models_dir).load_all()

    assert "loaded model digits version 1" in caplog.text
    assert "CPUExecutionProvider" in caplog.text


def test_missing_models_dir_loads_nothing(tmp_path):
    registry = ModelRegistry(tmp_path / "absent")

    changes = registry.load_all()

    assert changes.loaded == []
    assert len(registry) == 0
    assert "no models are loaded from" in registry.describe_available()


def test_hidden_folders_and_files_ignored(models_dir):
    write_model(models_dir, "digits", 1)
    write_model(models_dir, ".staging", 1)
    write_model(models_dir / "digits", ".2", 1)
    (models_dir / "README.md").write_text("model repository\n", encoding="utf-8")

    registry = ModelRegistry(models_dir)
    registry.load_all()

    assert [model.key for model in registry.list()] == ["digits/1"]
    assert registry.errors() == []


def test_invalid_folder_names_recorded(models_dir):
    write_model(models_dir, "digits", 1)
    (models_dir / "bad name" / "1").mkdir(parents=True)
    (models_dir / "digits" / "latest").mkdir()
    (models_dir / "digits" / "007").mkdir()

    registry = ModelRegistry(models_dir)
    registry.load_all()

    errors = {failure.path: failure.error for failure in registry.errors()}
    assert "invalid model name" in errors["bad name"]
    assert "positive integer" in errors["digits/latest"]
    assert "positive integer" in errors["digits/007"]
    assert len(registry) == 1


# Broken models


def test_invalid_json_recorded(models_dir):
    write_model_with_invalid_json(models_dir, "broken", 1)
    write_model(models_dir, "digits", 1)

    registry = ModelRegistry(models_dir)
    changes = registry.load_all()

    assert changes.failed == ["broken/1"]
    assert registry.errors()[0].path == "broken/1"
    assert "invalid model.json" in registry.errors()[0].error
    assert registry.get("digits").version == 1


def test_missing_graph_recorded(models_dir):
    write_model_without_graph(models_dir, "empty", 1)

    registry = ModelRegistry(models_dir)
    registry.load_all()

    assert registry.errors()[0].error == "missing generator.onnx"


def test_output_shape_mismatch_recorded(models_dir):
    write_model_with_shape_mismatch(models_dir, "mismatch", 1)

    registry = ModelRegistry(models_dir)
    registry.load_all()

    error = registry.errors()[0].error
    assert "16, 16, 1" in error
    assert "image_shape [28, 28, 1]" in error
    assert len(registry) == 0


def test_latent_dim_mismatch_recorded(models_dir):
    folder = write_model(models_dir, "digits", 1, latent_dim=8)
    edit_metadata(folder, latent_dim=12)

    registry = ModelRegistry(models_dir)
    registry.load_all()

    assert "latent_dim 12" in registry.errors()[0].error


@pytest.mark.parametrize(
    "key, value, fragment",
    [
        ("latent_dim", 0, "invalid latent_dim 0"),
        ("latent_dim", "8", "invalid latent_dim '8'"),
        ("image_shape", [28, 28], "invalid image_shape [28, 28]"),
        ("image_shape", [28, 28, 2], "invalid image_shape [28, 28, 2]"),
        ("value_range", [1.0, -1.0], "invalid value_range [1.0, -1.0]"),
        ("input_name", "", "invalid input_name ''"),
    ],
)
def test_invalid_metadata_field_recorded(models_dir, key, value, fragment):
    folder = write_model(models_dir, "digits", 1)
    edit_metadata(folder, **{key: value})

    registry = ModelRegistry(models_dir)
    registry.load_all()

    assert fragment in registry.errors()[0].error


WRONG_METADATA_VALUES = [
    # (key, value, text the error must contain)
    ("dataset", 5, "invalid dataset 5"),
    ("dataset", ["mnist"], "invalid dataset ['mnist']"),
    ("training_steps", "many", "invalid training_steps 'many'"),
    ("training_steps", 1.5, "invalid training_steps 1.5"),
    ("training_steps", -1, "invalid training_steps -1"),
    ("training_steps", True, "invalid training_steps True"),
    ("created", 123, "invalid created 123"),
    ("value_range", [False, True], "invalid value_range [False, True]"),
    ("value_range", [-1, 10**400], "invalid value_range [-1, 1000000"),
    ("value_range", "[-1, 1]", "invalid value_range '[-1, 1]'"),
    ("latent_dim", 1099511627776, "invalid latent_dim 1099511627776"),
    ("latent_dim", 65537, "at most 65536"),
    ("latent_dim", True, "invalid latent_dim True"),
    ("image_shape", [4097, 28, 1], "invalid image_shape [4097, 28, 1]"),
    ("image_shape", [28, 4097, 3], "invalid image_shape [28, 4097, 3]"),
    ("image_shape", [28, 28, 10**400], "invalid image_shape [28, 28, 1000000"),
]


@pytest.mark.parametrize(
    "key, value, fragment",
    WRONG_METADATA_VALUES,
    ids=[f"{key}={str(value)[:20]}" for key, value, _ in WRONG_METADATA_VALUES],
)
def test_wrong_metadata_value_fails_only_its_folder(models_dir, key, value, fragment):
    folder = write_model(models_dir, "bad", 1)
    edit_metadata(folder, **{key: value})
    write_model(models_dir, "good", 1)

    registry = ModelRegistry(models_dir)
    changes = registry.load_all()

    assert changes.failed == ["bad/1"]
    assert [failure.path for failure in registry.errors()] == ["bad/1"]
    assert fragment in registry.errors()[0].error
    assert len(registry.errors()[0].error) < 300
    assert [model.key for model in registry.list()] == ["good/1"]


def test_optional_metadata_fields_may_be_null(models_dir):
    folder = write_model(models_dir, "digits", 1)
    edit_metadata(folder, dataset=None, training_steps=None, created=None)

    registry = ModelRegistry(models_dir)
    registry.load_all()

    model = registry.get("digits")
    assert model.metadata.dataset is None
    assert model.metadata.training_steps is None
    assert model.metadata.created is None


def test_huge_latent_dim_with_symbolic_input_recorded(models_dir):
    # The graph's input [batch, "latent"] cannot contradict model.json, so only the size limit stops the test run.
    folder = write_model(models_dir, "wide", 1, symbolic_latent_dim=True)
    edit_metadata(folder, latent_dim=1099511627776)

    registry = ModelRegistry(models_dir)
    registry.load_all()

    assert "invalid latent_dim 1099511627776" in registry.errors()[0].error


def test_deeply_nested_metadata_recorded(models_dir):
    folder = write_model(models_dir, "digits", 1)
    (folder / "model.json").write_text("[" * 100_000, encoding="utf-8")

    registry = ModelRegistry(models_dir)
    registry.load_all()

    assert "nested too deeply" in registry.errors()[0].error


def test_oversized_metadata_recorded(models_dir):
    folder = write_model(models_dir, "digits", 1)
    (folder / "model.json").write_text(" " * (2 * 1024 * 1024) + "{}", encoding="utf-8")

    registry = ModelRegistry(models_dir)
    registry.load_all()

    assert "model.json is larger than 1048576 bytes" in registry.errors()[0].error


# Unusual files and folders


def load_with_deadline(registry: ModelRegistry, seconds: float = 30.0) -> None:
    """Run registry.load_all() in a thread, so that a scan blocked on a FIFO fails the test instead of hanging it."""
    worker = threading.Thread(target=registry.load_all, daemon=True)
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), f"load_all() did not return within {seconds} s"


def test_symlink_loop_in_repository_recorded(models_dir):
    write_model(models_dir, "digits", 1)
    os.symlink("loop", models_dir / "loop")
    os.symlink("2", models_dir / "digits" / "2")

    registry = ModelRegistry(models_dir)
    load_with_deadline(registry)

    errors = {failure.path: failure.error for failure in registry.errors()}
    assert sorted(errors) == ["digits/2", "loop"]
    assert "Too many levels of symbolic links" in errors["loop"]
    assert "Too many levels of symbolic links" in errors["digits/2"]
    assert [model.key for model in registry.list()] == ["digits/1"]


def test_metadata_symlink_to_itself_recorded(models_dir):
    folder = write_model(models_dir, "loop", 1)
    (folder / "model.json").unlink()
    os.symlink("model.json", folder / "model.json")
    write_model(models_dir, "digits", 1)

    registry = ModelRegistry(models_dir)
    load_with_deadline(registry)

    assert registry.errors()[0].path == "loop/1"
    assert "failed to read model.json: Too many levels of symbolic links" in registry.errors()[0].error
    assert [model.key for model in registry.list()] == ["digits/1"]


@pytest.mark.parametrize("file_name", ["model.json", "generator.onnx"])
def test_fifo_in_model_folder_recorded(models_dir, file_name):
    folder = write_model(models_dir, "piped", 1)
    replace_with_fifo(folder / file_name)
    write_model(models_dir, "digits", 1)

    registry = ModelRegistry(models_dir)
    load_with_deadline(registry)

    assert registry.errors()[0].path == "piped/1"
    assert registry.errors()[0].error == f"{file_name} is a FIFO: expected a regular file"
    assert [model.key for model in registry.list()] == ["digits/1"]


@pytest.mark.parametrize("file_name", ["model.json", "generator.onnx"])
def test_folder_in_place_of_file_recorded(models_dir, file_name):
    folder = write_model(models_dir, "nested", 1)
    (folder / file_name).unlink()
    (folder / file_name).mkdir()

    registry = ModelRegistry(models_dir)
    registry.load_all()

    assert registry.errors()[0].error == f"{file_name} is a folder: expected a regular file"


def test_fifo_failure_remembered_on_refresh(models_dir):
    folder = write_model(models_dir, "piped", 1)
    replace_with_fifo(folder / "model.json")
    registry = ModelRegistry(models_dir)
    load_with_deadline(registry)

    worker = threading.Thread(target=registry.refresh, daemon=True)
    worker.start()
    worker.join(30)

    assert not worker.is_alive()
    assert registry.errors()[0].error == "model.json is a FIFO: expected a regular file"


class FailingRegistry(ModelRegistry):
    """A real registry whose loader raises `error` for the model named "failing", standing in for a loader bug."""

    def __init__(self, models_dir, error: BaseException):
        super().__init__(models_dir)
        self.error = error

    def _load_model(self, name, version, folder, fingerprint):
        if name == "failing":
            raise self.error
        return super()._load_model(name, version, folder, fingerprint)


def test_unexpected_load_error_fails_only_its_folder(models_dir, caplog):
    write_model(models_dir, "failing", 1)
    write_model(models_dir, "good", 1)
    caplog.set_level(logging.ERROR, logger="service.registry")

    registry = FailingRegistry(models_dir, OverflowError("int too large to convert to float"))
    changes = registry.load_all()

    assert changes.failed == ["failing/1"]
    assert registry.errors()[0].error.startswith("unexpected OverflowError: int too large to convert to float")
    assert [model.key for model in registry.list()] == ["good/1"]
    assert "failed to load model failing version 1" in caplog.text
    assert "Traceback" in caplog.text


def test_keyboard_interrupt_stops_scan(models_dir):
    write_model(models_dir, "failing", 1)

    registry = FailingRegistry(models_dir, KeyboardInterrupt())

    with pytest.raises(KeyboardInterrupt):
        registry.load_all()


def test_unknown_input_name_recorded(models_dir):
    folder = write_model(models_dir, "digits", 1)
    edit_metadata(folder, input_name="latent")

    registry = ModelRegistry(models_dir)
    registry.load_all()

    assert "expects one input 'latent'" in registry.errors()[0].error


def test_corrupt_graph_recorded(models_dir):
    folder = write_model(models_dir, "digits", 1)
    (folder / "generator.onnx").write_bytes(b"not a protobuf")

    registry = ModelRegistry(models_dir)
    registry.load_all()

    assert "onnxruntime could not load generator.onnx" in registry.errors()[0].error


# Lookup


def test_get_returns_latest_version(models_dir):
    for version in (1, 2, 10):
        write_model(models_dir, "digits", version, seed=version)
    registry = ModelRegistry(models_dir)
    registry.load_all()

    assert registry.get("digits").version == 10
    assert registry.get("digits", 2).version == 2
    assert registry.versions("digits") == [1, 2, 10]


def test_get_unknown_name_lists_available(models_dir):
    write_model(models_dir, "digits", 1)
    write_model(models_dir, "digits", 2)
    registry = ModelRegistry(models_dir)
    registry.load_all()

    with pytest.raises(ModelNotFoundError) as raised:
        registry.get("faces")

    assert str(raised.value) == "model 'faces' not found; available models: digits (versions 1, 2)"
    assert isinstance(raised.value, KeyError)


def test_get_unknown_version_raises(models_dir):
    write_model(models_dir, "digits", 1)
    registry = ModelRegistry(models_dir)
    registry.load_all()

    with pytest.raises(ModelNotFoundError, match="'digits' version 3 not found"):
        registry.get("digits", 3)


def test_get_path_like_name_raises(models_dir):
    write_model(models_dir, "digits", 1)
    registry = ModelRegistry(models_dir)
    registry.load_all()

    with pytest.raises(ModelNotFoundError):
        registry.get("../models/digits")


# Generation


def test_latents_from_seed_rule():
    expected = np.random.default_rng(123).standard_normal((3, 8)).astype(np.float32)

    latents = latents_from_seed(123, 3, 8)

    assert latents.dtype == np.float32
    np.testing.assert_array_equal(latents, expected)


def test_latents_prefix_stable_across_counts():
    np.testing.assert_array_equal(latents_from_seed(5, 1, 8)[0], latents_from_seed(5, 4, 8)[0])


def test_generate_returns_images_in_range(models_dir):
    write_model(models_dir, "colors", 1, latent_dim=4, image_shape=(6, 5, 3))
    registry = ModelRegistry(models_dir)
    registry.load_all()
    model = registry.get("colors")

    images = model.generate(model.latents_from_seed(1, 3))

    assert images.shape == (3, 6, 5, 3)
    assert images.dtype == np.float32
    assert images.min() >= -1.0
    assert images.max() <= 1.0


def test_generate_is_deterministic(models_dir):
    write_model(models_dir, "digits", 1)
    registry = ModelRegistry(models_dir)
    registry.load_all()
    model = registry.get("digits")

    first = model.generate(model.latents_from_seed(9, 4))
    second = model.generate(model.latents_from_seed(9, 4))

    np.testing.assert_array_equal(first, second)


def test_generate_rejects_wrong_latent_shape(models_dir):
    write_model(models_dir, "digits", 1)
    registry = ModelRegistry(models_dir)
    registry.load_all()

    with pytest.raises(ValueError, match=r"\[N, 8\]"):
        registry.get("digits").generate(np.zeros((2, 3), dtype=np.float32))


def test_generate_wraps_onnxruntime_failure(models_dir):
    write_model(models_dir, "fragile", 1, batch_size=1)
    registry = ModelRegistry(models_dir)
    registry.load_all()
    model = registry.get("fragile")

    with pytest.raises(GenerationError, match="model fragile/1 on 2 latent vectors"):
        model.generate(model.latents_from_seed(1, 2))


# Refresh


def test_refresh_loads_new_folder(models_dir):
    write_model(models_dir, "digits", 1)
    registry = ModelRegistry(models_dir)
    registry.load_all()
    write_model(models_dir, "digits", 2)

    changes = registry.refresh()

    assert changes.loaded == ["digits/2"]
    assert registry.get("digits").version == 2


def test_refresh_unloads_removed_folder(models_dir, caplog):
    write_model(models_dir, "digits", 1)
    write_model(models_dir, "digits", 2)
    registry = ModelRegistry(models_dir)
    registry.load_all()
    shutil.rmtree(models_dir / "digits" / "2")
    caplog.set_level(logging.INFO, logger="service.registry")

    changes = registry.refresh()

    assert changes.unloaded == ["digits/2"]
    assert registry.get("digits").version == 1
    assert "unloaded model digits version 2" in caplog.text


def test_refresh_keeps_unchanged_sessions(models_dir):
    write_model(models_dir, "digits", 1)
    registry = ModelRegistry(models_dir)
    registry.load_all()
    before = registry.get("digits")

    changes = registry.refresh()

    assert changes.loaded == changes.reloaded == changes.unloaded == []
    assert registry.get("digits") is before


def test_refresh_reloads_changed_graph(models_dir):
    folder = write_model(models_dir, "digits", 1, seed=1)
    registry = ModelRegistry(models_dir)
    registry.load_all()
    z = registry.get("digits").latents_from_seed(0, 1)
    before = registry.get("digits").generate(z)
    write_model(models_dir, "digits", 1, seed=2)
    touch_later(folder / "generator.onnx")

    changes = registry.refresh()

    assert changes.reloaded == ["digits/1"]
    assert not np.array_equal(registry.get("digits").generate(z), before)


def test_refresh_unloads_model_whose_change_fails(models_dir):
    folder = write_model(models_dir, "digits", 1)
    registry = ModelRegistry(models_dir)
    registry.load_all()
    (folder / "model.json").write_text("{", encoding="utf-8")
    touch_later(folder / "model.json")

    changes = registry.refresh()

    assert changes.unloaded == ["digits/1"]
    assert changes.failed == ["digits/1"]
    assert len(registry) == 0


def test_failure_remembered_until_files_change(models_dir, caplog):
    folder = write_model_with_invalid_json(models_dir, "broken", 1)
    registry = ModelRegistry(models_dir)
    registry.load_all()
    caplog.clear()

    unchanged = registry.refresh()

    assert unchanged.failed == []
    assert [failure.path for failure in registry.errors()] == ["broken/1"]
    assert "broken" not in caplog.text

    write_model(models_dir, "broken", 1)
    touch_later(folder / "model.json")
    fixed = registry.refresh()

    assert fixed.loaded == ["broken/1"]
    assert registry.errors() == []


def test_refresh_forgets_removed_failure(models_dir):
    write_model_without_graph(models_dir, "empty", 1)
    registry = ModelRegistry(models_dir)
    registry.load_all()
    shutil.rmtree(models_dir / "empty")

    registry.refresh()

    assert registry.errors() == []


# Execution providers and settings


def test_auto_providers_end_with_cpu():
    providers = resolve_providers(None)

    assert providers[-1] == CPU_PROVIDER
    assert (CUDA_PROVIDER in providers) == (CUDA_PROVIDER in onnxruntime.get_available_providers())


def test_unavailable_provider_skipped_with_warning(caplog):
    if CUDA_PROVIDER in onnxruntime.get_available_providers():
        pytest.skip("CUDA is available here, so it is not skipped")
    caplog.set_level(logging.WARNING, logger="service.settings")

    providers = resolve_providers([CUDA_PROVIDER])

    assert providers == [CPU_PROVIDER]
    assert "CUDAExecutionProvider is not available" in caplog.text


def test_explicit_cpu_stays_last():
    assert resolve_providers([CPU_PROVIDER, CPU_PROVIDER]) == [CPU_PROVIDER]


@pytest.mark.parametrize(
    "text, expected",
    [
        (None, None),
        ("auto", None),
        (" AUTO ", None),
        ("cpu", [CPU_PROVIDER]),
        ("cuda, cpu", [CUDA_PROVIDER, CPU_PROVIDER]),
        ("CUDAExecutionProvider,CPUExecutionProvider", [CUDA_PROVIDER, CPU_PROVIDER]),
    ],
)
def test_parse_providers(text, expected):
    assert Settings.parse_providers(text) == expected


@pytest.mark.parametrize("text", [",", " , ,"])
def test_parse_providers_rejects_empty_list(text):
    with pytest.raises(SettingsError, match="no execution provider in"):
        Settings.parse_providers(text)


def test_parse_providers_rejects_unknown_name():
    with pytest.raises(ValueError, match="unknown execution provider 'gpu'") as raised:
        Settings.parse_providers("gpu,cpu")

    assert "CPUExecutionProvider" in str(raised.value)
    assert isinstance(raised.value, SettingsError)


def test_settings_from_env(monkeypatch, tmp_path):
    monkeypatch.setenv("GANFORGE_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("GANFORGE_PROVIDERS", "cpu")
    monkeypatch.setenv("GANFORGE_INTRA_OP_THREADS", "2")
    monkeypatch.setenv("PORT", "8123")
    monkeypatch.setenv("GANFORGE_MAX_BODY_BYTES", "4096")

    settings = Settings.from_env()

    assert settings.models_dir == tmp_path / "models"
    assert settings.providers == [CPU_PROVIDER]
    assert settings.intra_op_threads == 2
    assert settings.port == 8123
    assert settings.host == "127.0.0.1"
    assert settings.max_count == 64
    assert settings.max_body_bytes == 4096


def test_settings_defaults(monkeypatch):
    for variable in ("GANFORGE_MODELS_DIR", "GANFORGE_FRONTEND_DIR", "GANFORGE_PROVIDERS", "GANFORGE_MAX_BODY_BYTES", "PORT"):
        monkeypatch.delenv(variable, raising=False)

    settings = Settings.from_env()

    assert settings.models_dir.name == "models"
    assert settings.frontend_dir.name == "frontend"
    assert settings.providers is None
    assert settings.port == 8000
    assert settings.max_body_bytes == 1024 * 1024


def test_settings_rejects_invalid_thread_count(monkeypatch):
    monkeypatch.setenv("GANFORGE_INTRA_OP_THREADS", "many")

    with pytest.raises(SettingsError, match="GANFORGE_INTRA_OP_THREADS='many'"):
        Settings.from_env()


@pytest.mark.parametrize("port", [0, -1, 65536, 99999])
def test_settings_validate_rejects_port(port):
    with pytest.raises(SettingsError, match=f"invalid port {port}: use a TCP port from 1 to 65535"):
        Settings(port=port).validate()


def test_settings_validate_rejects_zero_body_limit():
    with pytest.raises(SettingsError, match="invalid GANFORGE_MAX_BODY_BYTES=0"):
        Settings(max_body_bytes=0).validate()


def test_settings_validate_rejects_file_as_models_dir(tmp_path):
    models_file = tmp_path / "models.txt"
    models_file.write_text("not a folder\n", encoding="utf-8")

    with pytest.raises(SettingsError, match="is not a folder"):
        Settings(models_dir=models_file).validate()


def test_settings_validate_accepts_missing_models_dir(tmp_path):
    Settings(models_dir=tmp_path / "absent").validate()
