"""The model repository: load generators from models/<name>/<version>/, validate them, and rescan.

Model names and versions come only from directory listings. Request data is
used only as a key into the loaded models, so no request ever builds a path.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnxruntime
from onnxruntime.capi import onnxruntime_pybind11_state

from ganforge.naming import MODEL_NAME_PATTERN, VERSION_PATTERN
from service.metadata import METADATA_FILE, ModelLoadError, ModelMetadata, check_regular_file
from service.settings import resolve_providers

logger = logging.getLogger(__name__)

NAME_RULE = "use 1 to 128 characters from A-Z, a-z, 0-9, '.', '_' and '-'"
GRAPH_FILE = "generator.onnx"

# onnxruntime raises its own exception classes, which derive from Exception
# directly, and RuntimeError or ValueError from its Python wrapper.
ONNXRUNTIME_ERRORS = (RuntimeError, ValueError) + tuple(
    value
    for value in vars(onnxruntime_pybind11_state).values()
    if isinstance(value, type) and issubclass(value, Exception)
)


class ModelNotFoundError(KeyError):
    """A request named a model or version that is not loaded."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class GenerationError(RuntimeError):
    """onnxruntime failed to run a generator that had loaded."""

    def __init__(self, message: str, model_key: str):
        super().__init__(message)
        self.model_key = model_key


def _file_stamp(path: Path) -> tuple | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    except OSError as error:
        # A symbolic link loop or a denied permission: the error number is used as the stamp,
        # so the folder is retried once the error changes or goes away.
        return ("error", error.errno)
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


def folder_fingerprint(folder: Path) -> tuple:
    """Return the inode, size and mtime of model.json and generator.onnx. A change in any of them triggers a reload."""
    return _file_stamp(folder / METADATA_FILE), _file_stamp(folder / GRAPH_FILE)


def latents_from_seed(seed: int, count: int, latent_dim: int) -> np.ndarray:
    """Draw `count` latent vectors as float32 [count, latent_dim] from a seed.

    The rule is numpy.random.default_rng(seed).standard_normal((count, latent_dim))
    cast to float32. Clients rely on it to reproduce images, so it must not change.
    Vector i is the same for every count above i.
    """
    return np.random.default_rng(seed).standard_normal((count, latent_dim)).astype(np.float32)


class GeneratorModel:
    """One loaded model version: its metadata and its onnxruntime session."""

    def __init__(self, name: str, version: int, metadata: ModelMetadata, session, fingerprint: tuple):
        self.name = name
        self.version = version
        self.metadata = metadata
        self.session = session
        self.fingerprint = fingerprint
        self.providers = session.get_providers()
        self.load_seconds = 0.0

    @property
    def key(self) -> str:
        return f"{self.name}/{self.version}"

    @property
    def latent_dim(self) -> int:
        return self.metadata.latent_dim

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.metadata.image_shape

    @property
    def value_range(self) -> tuple[float, float]:
        return self.metadata.value_range

    def latents_from_seed(self, seed: int, count: int) -> np.ndarray:
        """Draw `count` latent vectors for this model with the documented seed rule (see latents_from_seed)."""
        return latents_from_seed(seed, count, self.latent_dim)

    def generate(self, z: np.ndarray) -> np.ndarray:
        """Run the generator on latent vectors z [N, latent_dim] and return images float32 [N, H, W, C].

        Raises ValueError on a z of the wrong shape, and GenerationError when onnxruntime fails
        or returns images of an unexpected shape.
        """
        z = np.ascontiguousarray(z, dtype=np.float32)
        if z.ndim != 2 or z.shape[1] != self.latent_dim or z.shape[0] == 0:
            raise ValueError(f"expected latent vectors [N, {self.latent_dim}] with N >= 1, got shape {z.shape}")

        try:
            (images,) = self.session.run([self.metadata.output_name], {self.metadata.input_name: z})
        except ONNXRUNTIME_ERRORS as error:
            message = f"onnxruntime failed to run model {self.key} on {len(z)} latent vectors: {error}"
            raise GenerationError(message, self.key) from error

        expected = (len(z), *self.image_shape)
        if images.shape != expected:
            message = f"model {self.key} returned images of shape {images.shape}, expected {expected}"
            raise GenerationError(message, self.key)
        return images


def _check_graph_input(session, metadata: ModelMetadata) -> None:
    inputs = session.get_inputs()
    names = [tensor.name for tensor in inputs]
    if names != [metadata.input_name]:
        raise ModelLoadError(
            f"{GRAPH_FILE} has inputs {names}, but {METADATA_FILE} expects one input {metadata.input_name!r}"
        )

    tensor = inputs[0]
    if tensor.type != "tensor(float)":
        raise ModelLoadError(f"{GRAPH_FILE} input {tensor.name!r} has type {tensor.type}, expected tensor(float)")

    # Symbolic dimensions (strings or None) pass here, because the test run in
    # _load_model checks the sizes they take.
    shape = tensor.shape
    if len(shape) != 2 or (isinstance(shape[1], int) and shape[1] != metadata.latent_dim):
        raise ModelLoadError(
            f"{GRAPH_FILE} input {tensor.name!r} has shape {shape}, "
            f"but {METADATA_FILE} says latent_dim {metadata.latent_dim}: expected [batch, {metadata.latent_dim}]"
        )


def _check_graph_output(session, metadata: ModelMetadata) -> None:
    outputs = {tensor.name: tensor for tensor in session.get_outputs()}
    tensor = outputs.get(metadata.output_name)
    if tensor is None:
        raise ModelLoadError(
            f"{GRAPH_FILE} has outputs {list(outputs)}, but {METADATA_FILE} expects {metadata.output_name!r}"
        )

    shape = tensor.shape
    sizes_match = len(shape) == 4 and all(
        not isinstance(actual, int) or actual == expected for actual, expected in zip(shape[1:], metadata.image_shape)
    )
    if not sizes_match:
        raise ModelLoadError(
            f"{GRAPH_FILE} output {tensor.name!r} has shape {shape}, "
            f"but {METADATA_FILE} says image_shape {list(metadata.image_shape)}: expected [batch, *image_shape]"
        )


def _test_run(model: GeneratorModel) -> None:
    # One zero vector checks the sizes that symbolic dimensions take and warms the session up.
    try:
        model.generate(np.zeros((1, model.latent_dim), dtype=np.float32))
    except GenerationError as error:
        raise ModelLoadError(f"test run with one latent vector failed: {error}") from None


def _session_options(intra_op_threads: int) -> onnxruntime.SessionOptions:
    options = onnxruntime.SessionOptions()
    if intra_op_threads > 0:
        options.intra_op_num_threads = intra_op_threads
    return options


@dataclass(frozen=True)
class FailedFolder:
    """A model folder that could not be loaded, remembered until its files change."""

    path: str
    error: str
    fingerprint: tuple | None


@dataclass
class RefreshChanges:
    """Model versions, as "name/version", that one scan of the model repository changed."""

    loaded: list[str] = field(default_factory=list)
    unloaded: list[str] = field(default_factory=list)
    reloaded: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


@dataclass
class _ScanResult:
    folders: dict[tuple[str, int], Path] = field(default_factory=dict)
    invalid: dict[str, str] = field(default_factory=dict)


class ModelRegistry:
    """The generators loaded from a model repository folder, models_dir/<name>/<version>/.

    Thread safety: refreshes run one at a time under a lock and swap in a new
    dictionary, so readers see either the old or the new set of models.
    """

    def __init__(self, models_dir: Path, providers: list[str] | None = None, intra_op_threads: int = 0):
        self.models_dir = Path(models_dir)
        self.providers = resolve_providers(providers)
        self.intra_op_threads = intra_op_threads
        self._models: dict[tuple[str, int], GeneratorModel] = {}
        self._failures: dict[str, FailedFolder] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._models)

    def load_all(self) -> RefreshChanges:
        """Scan the model repository and load every valid model, retrying folders that failed before."""
        with self._lock:
            self._failures = {}
        return self.refresh()

    def refresh(self) -> RefreshChanges:
        """Rescan the model repository: load new folders, drop removed ones and reload changed ones.

        A folder that failed to load is retried only when its model.json or generator.onnx changes.
        """
        with self._lock:
            scan = self._scan()
            changes = RefreshChanges()
            models: dict[tuple[str, int], GeneratorModel] = {}
            failures = self._keep_invalid_folders(scan.invalid, changes)

            for (name, version), folder in sorted(scan.folders.items()):
                self._refresh_folder(name, version, folder, models, failures, changes)

            for key, model in sorted(self._models.items()):
                if key not in scan.folders:
                    logger.info(
                        "unloaded model %s version %d because its folder was removed", model.name, model.version
                    )
                    changes.unloaded.append(model.key)

            self._models = models
            self._failures = failures
            return changes

    def get(self, name: str, version: int | None = None) -> GeneratorModel:
        """Return a loaded model version, or its latest version when `version` is None.

        Raises ModelNotFoundError, whose message lists the loaded models.
        """
        models = self._models
        if version is None:
            versions = [key[1] for key in models if key[0] == name]
            if versions:
                return models[(name, max(versions))]
        elif (name, version) in models:
            return models[(name, version)]

        requested = repr(name) if version is None else f"{name!r} version {version}"
        raise ModelNotFoundError(f"model {requested} not found; {self.describe_available()}")

    def list(self) -> list[GeneratorModel]:
        """Return the loaded model versions, sorted by name, then version."""
        models = self._models
        return [models[key] for key in sorted(models)]

    def versions(self, name: str) -> list[int]:
        """Return the loaded versions of one model name, in ascending order."""
        return sorted(key[1] for key in self._models if key[0] == name)

    def errors(self) -> list[FailedFolder]:
        """Return the folders that failed to load, sorted by path."""
        failures = self._failures
        return [failures[path] for path in sorted(failures)]

    def describe_available(self) -> str:
        """Describe the loaded models for error messages, e.g. "available models: digits (versions 1, 2)"."""
        names = sorted({key[0] for key in self._models})
        if not names:
            return f"no models are loaded from {self.models_dir}"

        parts = []
        for name in names:
            versions = self.versions(name)
            label = "version" if len(versions) == 1 else "versions"
            parts.append(f"{name} ({label} {', '.join(str(version) for version in versions)})")
        return "available models: " + "; ".join(parts)

    def _scan(self) -> _ScanResult:
        scan = _ScanResult()
        if not _is_folder(self.models_dir):
            # Not an error here: the folder may be created later, and POST /models/reload then finds it.
            logger.warning("model repository %s does not exist or is not a folder", self.models_dir)
            return scan

        try:
            name_dirs = _visible_subfolders(self.models_dir, "", scan.invalid)
        except OSError as error:
            logger.error("failed to list %s: %s", self.models_dir, error)
            return scan

        for name_dir in name_dirs:
            if not MODEL_NAME_PATTERN.fullmatch(name_dir.name):
                scan.invalid[name_dir.name] = f"invalid model name: {NAME_RULE}"
                continue
            _scan_versions(name_dir, scan)
        return scan

    def _keep_invalid_folders(self, invalid: dict[str, str], changes: RefreshChanges) -> dict[str, FailedFolder]:
        failures = {}
        for path, reason in invalid.items():
            if path not in self._failures:
                logger.error("skipped folder %s in %s: %s", path, self.models_dir, reason)
                changes.failed.append(path)
            failures[path] = FailedFolder(path, reason, None)
        return failures

    def _refresh_folder(self, name, version, folder, models, failures, changes) -> None:
        path = f"{name}/{version}"
        fingerprint = folder_fingerprint(folder)
        current = self._models.get((name, version))
        if current is not None and current.fingerprint == fingerprint:
            models[(name, version)] = current
            return

        previous_failure = self._failures.get(path)
        if previous_failure is not None and previous_failure.fingerprint == fingerprint:
            failures[path] = previous_failure
            return

        try:
            model = self._load_model(name, version, folder, fingerprint)
        except ModelLoadError as error:
            logger.error("failed to load model %s version %d from %s: %s", name, version, folder, error)
            reason = str(error)
        except Exception as error:
            # A bug or a case that the checks miss fails only this folder, so the scan goes on.
            # KeyboardInterrupt and SystemExit do not derive from Exception, so they still stop the process.
            logger.exception("failed to load model %s version %d from %s: unexpected error", name, version, folder)
            reason = f"unexpected {type(error).__name__}: {str(error)[:200]}; see the server log"
        else:
            self._add_model(model, current, models, changes)
            return

        failures[path] = FailedFolder(path, reason, fingerprint)
        changes.failed.append(path)
        if current is not None:
            # The files on disk changed, so the old session no longer matches them.
            logger.warning("unloaded model %s version %d because its changed files failed to load", name, version)
            changes.unloaded.append(path)

    @staticmethod
    def _add_model(model: GeneratorModel, current: GeneratorModel | None, models, changes: RefreshChanges) -> None:
        models[(model.name, model.version)] = model
        if current is None:
            verb = "loaded"
            changes.loaded.append(model.key)
        else:
            verb = "reloaded"
            changes.reloaded.append(model.key)
        logger.info(
            "%s model %s version %d (latent_dim %d, image_shape %s) with providers %s in %.3f s",
            verb, model.name, model.version, model.latent_dim, list(model.image_shape), model.providers,
            model.load_seconds,
        )

    def _load_model(self, name: str, version: int, folder: Path, fingerprint: tuple) -> GeneratorModel:
        started = time.perf_counter()
        metadata = ModelMetadata.read(folder / METADATA_FILE)
        _warn_on_metadata_mismatch(name, version, metadata)

        graph_path = folder / GRAPH_FILE
        # NOTE: a FIFO that replaces the file between this check and onnxruntime's open still blocks the scan.
        check_regular_file(graph_path)
        try:
            session = onnxruntime.InferenceSession(
                str(graph_path), sess_options=_session_options(self.intra_op_threads), providers=self.providers
            )
        except ONNXRUNTIME_ERRORS as error:
            raise ModelLoadError(f"onnxruntime could not load {GRAPH_FILE}: {error}") from None

        _check_graph_input(session, metadata)
        _check_graph_output(session, metadata)
        model = GeneratorModel(name, version, metadata, session, fingerprint)
        _test_run(model)
        _warn_on_provider_fallback(model, self.providers)

        model.load_seconds = time.perf_counter() - started
        return model


def _is_folder(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:
        return False


def _visible_subfolders(folder: Path, prefix: str, invalid: dict[str, str]) -> list[Path]:
    """Return the subfolders of `folder` whose names do not start with ".", sorted by name.

    Names starting with "." are exports in progress or hidden folders. An entry that cannot be
    examined, such as a symbolic link loop, goes into `invalid` under prefix + its name.
    Raises OSError when `folder` itself cannot be listed.
    """
    entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
    folders = []
    for entry in entries:
        if entry.name.startswith("."):
            continue
        try:
            is_folder = entry.is_dir()
        except OSError as error:
            invalid[prefix + entry.name] = f"failed to read folder entry: {error.strerror or error}"
            continue
        if is_folder:
            folders.append(Path(entry.path))
    return folders


def _scan_versions(name_dir: Path, scan: _ScanResult) -> None:
    try:
        version_dirs = _visible_subfolders(name_dir, f"{name_dir.name}/", scan.invalid)
    except OSError as error:
        scan.invalid[name_dir.name] = f"failed to list folder: {error.strerror or error}"
        return

    for version_dir in version_dirs:
        path = f"{name_dir.name}/{version_dir.name}"
        if not VERSION_PATTERN.fullmatch(version_dir.name):
            scan.invalid[path] = "invalid version folder name: expected a positive integer such as 1"
            continue
        scan.folders[(name_dir.name, int(version_dir.name))] = version_dir


def _warn_on_metadata_mismatch(name: str, version: int, metadata: ModelMetadata) -> None:
    # The folder names are the model's identity, and model.json may disagree with them after a manual copy.
    document = metadata.document
    if document.get("name", name) != name or document.get("version", version) != version:
        logger.warning(
            "%s of model %s version %d contains name %r version %r; serving it under its folder names",
            METADATA_FILE, name, version, document.get("name"), document.get("version"),
        )


def _warn_on_provider_fallback(model: GeneratorModel, requested: list[str]) -> None:
    missing = [provider for provider in requested if provider not in model.providers]
    if missing:
        logger.warning(
            "model %s version %d runs without execution providers %s; the session got %s",
            model.name, model.version, missing, model.providers,
        )
