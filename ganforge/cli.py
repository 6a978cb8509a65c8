"""The `ganforge` command line: train, export and serve.

Each subcommand imports its package only when it runs, so `ganforge serve`
works in an environment without TensorFlow.
"""

import argparse
import logging
import sys
from pathlib import Path

from ganforge.errors import InputError

logger = logging.getLogger(__name__)

EXIT_INPUT_ERROR = 2


class _OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser that reports a usage error in one line, without the usage text."""

    def error(self, message: str):
        self.exit(EXIT_INPUT_ERROR, f"{self.prog}: error: {message}; see {self.prog.split()[0]} --help\n")


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid port {text!r}: use an integer from 1 to 65535") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"invalid port {port}: use an integer from 1 to 65535")
    return port


def _add_train_parser(subparsers) -> None:
    parser = subparsers.add_parser("train", help="train a DCGAN and write generator.h5 to the run folder")
    parser.add_argument("--config", type=Path, help="TOML file of training options; flags override it")
    parser.add_argument("--name", help="run name, used as the model name on export")
    parser.add_argument("--run-dir", type=Path, help="folder for checkpoints, samples, logs and generator.h5")
    parser.add_argument("--dataset", choices=["fashion-mnist", "folder"], help="training data source")
    parser.add_argument("--data-dir", type=Path, help="Fashion-MNIST IDX folder, or the image folder for --dataset folder")
    parser.add_argument("--limit", type=int, help="use only the first N training images")
    parser.add_argument("--image-size", type=int, help="height and width of the images, a multiple of 4")
    parser.add_argument("--channels", type=int, help="image channels: 1 (grayscale) or 3 (RGB)")
    parser.add_argument("--epochs", type=int, help="number of passes over the training images")
    parser.add_argument("--batch-size", type=int, help="images per training step")
    parser.add_argument("--latent-dim", type=int, help="length of the latent vector z")
    parser.add_argument("--width", type=int, help="filters in the widest convolution of each net")
    parser.add_argument("--learning-rate", type=float, help="Adam learning rate of both nets")
    parser.add_argument("--beta-1", type=float, help="Adam beta_1 (first-moment decay) of both nets")
    parser.add_argument("--keep-checkpoints", type=int, help="number of newest checkpoints to keep")
    parser.add_argument("--grid-size", type=int, help="images in the per-epoch sample grid")
    parser.add_argument("--seed", type=int, help="seed for weights, shuffling, noise and the sample grid")
    parser.add_argument("--checkpoint-every", type=int, help="also checkpoint every N steps (0: only at epoch ends)")
    parser.add_argument("--max-steps", type=int, help="stop after this global step, with a checkpoint")
    parser.add_argument("--log-every", type=int, help="write TensorBoard loss scalars every N steps")
    parser.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --run-dir")


def _add_export_parser(subparsers) -> None:
    parser = subparsers.add_parser("export", help="export a trained generator to models/<name>/<version>/")
    parser.add_argument("--run-dir", type=Path, help="training run folder holding generator.h5 and run.json")
    parser.add_argument("--h5", type=Path, help="generator .h5 file (default: RUN_DIR/generator.h5)")
    parser.add_argument("--name", help="model name, of characters [A-Za-z0-9._-] (default: the run's name)")
    parser.add_argument("--version", type=int, help="model version, a positive integer (default: next free)")
    parser.add_argument("--models-dir", type=Path, default=Path("models"), help="model repository folder")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing model version")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset of the exported graph")


def _add_serve_parser(subparsers) -> None:
    parser = subparsers.add_parser("serve", help="serve the models in a model repository over HTTP")
    parser.add_argument("--models-dir", type=Path, help="model repository folder (default: GANFORGE_MODELS_DIR, else the repository's models/)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    parser.add_argument("--port", type=_port, help="TCP port to bind (default: PORT or 8000)")
    parser.add_argument(
        "--providers",
        help="comma-separated ONNX Runtime execution providers in order of preference, "
        "or 'auto' for CUDA first when available, then CPU (default: GANFORGE_PROVIDERS or auto)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(prog="ganforge", description="Train, export and serve image GANs.")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    subparsers = parser.add_subparsers(dest="command", required=True)
    _add_train_parser(subparsers)
    _add_export_parser(subparsers)
    _add_serve_parser(subparsers)
    return parser


def _run_train(args) -> None:
    from training.cli import run_train

    run_train(args)


def _run_export(args) -> None:
    from training.cli import run_export

    run_export(args)


def _run_serve(args) -> None:
    from service.server import run_server
    from service.settings import Settings

    settings = Settings.from_env()
    if args.models_dir is not None:
        settings.models_dir = args.models_dir
    if args.providers is not None:
        settings.providers = Settings.parse_providers(args.providers)
    settings.host = args.host
    if args.port is not None:
        settings.port = args.port
    run_server(settings)


_COMMANDS = {"train": _run_train, "export": _run_export, "serve": _run_serve}
_EXTRAS = {"train": "train", "export": "train", "serve": "serve"}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    try:
        _COMMANDS[args.command](args)
    except InputError as error:
        print(f"ganforge {args.command}: error: {error}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    except ModuleNotFoundError as error:
        extra = _EXTRAS[args.command]
        print(
            f"ganforge {args.command}: error: missing module {error.name!r}; "
            f"install the '{extra}' extra: pip install -e '.[{extra}]'",
            file=sys.stderr,
        )
        return EXIT_INPUT_ERROR
    except KeyboardInterrupt:
        logger.warning("interrupted")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
