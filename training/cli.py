"""The `ganforge train` and `ganforge export` subcommands."""

import logging
import os

from ganforge.errors import InputError
from ganforge.naming import model_name_problem
from training.config import load_config

# Hide TensorFlow's C++ info and warning lines (CPU instruction notes, grappler remarks) unless the
# user set a level; errors still print.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

logger = logging.getLogger(__name__)

_TRAIN_FLAGS = (
    "run_dir", "dataset", "data_dir", "limit", "epochs", "batch_size", "latent_dim", "width",
    "learning_rate", "seed", "checkpoint_every", "max_steps", "log_every",
)


def run_train(args) -> None:
    """Train from parsed command-line arguments."""
    from training.run import train

    overrides = {flag: getattr(args, flag) for flag in _TRAIN_FLAGS}
    config = load_config(args.config, overrides)
    train(config, resume=args.resume)


def run_export(args) -> None:
    """Export a generator from parsed command-line arguments."""
    # Check the cheap options before TensorFlow spends seconds importing.
    if args.name is not None and (problem := model_name_problem(args.name)) is not None:
        raise InputError(problem)
    if args.version is not None and args.version < 1:
        raise InputError(f"invalid model version {args.version}: use a positive integer")

    from training.export import export_from_run

    export_from_run(
        run_dir=args.run_dir,
        h5_path=args.h5,
        models_dir=args.models_dir,
        name=args.name,
        version=args.version,
        overwrite=args.overwrite,
        opset=args.opset,
    )
