"""The `ganforge train` and `ganforge export` subcommands."""

import logging
import os

from ganforge.errors import InputError
from training.config import load_config, saved_options
from training.export_options import check_export_options

# Hide TensorFlow's C++ info and warning lines (CPU instruction notes, grappler remarks) unless the
# user set a level; errors still print.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

logger = logging.getLogger(__name__)

_TRAIN_FLAGS = (
    "name", "run_dir", "dataset", "data_dir", "limit", "image_size", "channels", "epochs", "batch_size",
    "latent_dim", "width", "learning_rate", "beta_1", "seed", "checkpoint_every", "max_steps", "log_every",
    "keep_checkpoints", "grid_size",
)


def run_train(args) -> None:
    """Train from parsed command-line arguments."""
    overrides = {flag: getattr(args, flag) for flag in _TRAIN_FLAGS}
    config = load_config(args.config, overrides)
    if args.resume:
        # A resumed run starts from its saved options, so only the changed ones need flags.
        config = load_config(args.config, overrides, saved=saved_options(config.run_dir))

    # Imported after the options are checked, because TensorFlow takes seconds to import.
    from training.run import train

    train(config, resume=args.resume)


def run_export(args) -> None:
    """Export a generator from parsed command-line arguments."""
    check_export_options(args.models_dir, args.name, args.version, args.opset)
    if args.run_dir is None and args.h5 is None:
        raise InputError("nothing to export: pass --run-dir (a training run folder) or --h5 (a generator file)")

    # Imported after the options are checked, because TensorFlow takes seconds to import.
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
