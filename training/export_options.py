"""Checks of the export options that run before TensorFlow is imported."""

from pathlib import Path

from ganforge.errors import InputError
from ganforge.naming import model_name_problem, version_problem

# Opsets that tf2onnx 1.17 converts to and onnxruntime 1.31 runs; 13 is the first with every op the DCGAN uses.
MIN_OPSET, MAX_OPSET = 13, 18


def check_export_options(models_dir: Path, name: str | None, version: int | None, opset: int) -> None:
    """Raise InputError for an invalid name, version, opset or models folder; needs no TensorFlow."""
    if name is not None and (problem := model_name_problem(name)) is not None:
        raise InputError(problem)
    if version is not None and (problem := version_problem(version)) is not None:
        raise InputError(problem)
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise InputError(f"invalid opset {opset}: use an ONNX opset from {MIN_OPSET} to {MAX_OPSET}")
    for folder in (models_dir, *models_dir.parents):
        if folder.exists() and not folder.is_dir():
            raise InputError(f"invalid models-dir {models_dir}: {folder} is a file, not a folder")
