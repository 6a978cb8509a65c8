"""The files of a training run folder: config.json, run.json and generator.h5, each replaced atomically."""

import os
from pathlib import Path

import tensorflow as tf

from ganforge.errors import InputError
from ganforge.jsonfiles import read_json_object, write_json_atomic
from training.config import RESUMABLE_OPTIONS, TrainConfig

__all__ = ["check_run_dir", "read_json_object", "read_run_record", "save_generator", "write_json_atomic"]


def save_generator(generator, path: Path) -> None:
    """Save the generator as HDF5 through a temporary file; Keras requires the .h5 suffix on both."""
    partial = path.with_name(path.stem + ".partial.h5")
    generator.save(partial)
    os.replace(partial, path)


def check_run_dir(config: TrainConfig, resume: bool) -> None:
    """Raise InputError when the run folder does not fit the request: a resume needs a checkpoint and
    the same options, and a new run needs a folder without checkpoints."""
    has_checkpoint = tf.train.latest_checkpoint(str(config.run_dir / "checkpoints")) is not None
    if resume and not has_checkpoint:
        raise InputError(f"no checkpoint to resume in {config.run_dir / 'checkpoints'}; drop --resume to start a new run")
    if not resume and has_checkpoint:
        raise InputError(f"run folder {config.run_dir} already has checkpoints; pass --resume or choose another --run-dir")
    if not resume:
        return

    saved_path = config.run_dir / "config.json"
    if not saved_path.is_file():
        raise InputError(f"{saved_path} is missing, so the options of the run cannot be checked; start a new run")
    saved = read_json_object(saved_path)
    current = config.to_json()
    for option, value in saved.items():
        if option not in RESUMABLE_OPTIONS and current.get(option) != value:
            raise InputError(
                f"cannot resume with {option.replace('_', '-')}={current.get(option)!r}: "
                f"the run in {config.run_dir} was started with {value!r}"
            )


def read_run_record(run_dir: Path) -> dict:
    """Return run_dir/run.json, or {} when there is none."""
    path = run_dir / "run.json"
    return read_json_object(path) if path.is_file() else {}
