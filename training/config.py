"""Training options: defaults, a TOML file, then command-line flags, each overriding the one before."""

import dataclasses
import tomllib
from dataclasses import dataclass
from pathlib import Path

from ganforge.errors import InputError
from ganforge.jsonfiles import read_json_object
from ganforge.naming import model_name_problem

DEFAULT_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")


@dataclass
class TrainConfig:
    """Every option that changes what a training run computes."""

    name: str = "fashion-mnist-dcgan"
    dataset: str = "fashion-mnist"
    data_dir: Path | None = None
    limit: int | None = None
    image_size: int = 28
    channels: int = 1
    latent_dim: int = 100
    width: int = 64
    batch_size: int = 128
    epochs: int = 10
    learning_rate: float = 2e-4
    beta_1: float = 0.5
    seed: int = 0
    checkpoint_every: int = 0
    max_steps: int | None = None
    keep_checkpoints: int = 3
    log_every: int = 20
    grid_size: int = 64
    run_dir: Path = Path("runs/fashion-mnist-dcgan")

    def validate(self) -> None:
        """Raise InputError naming the first option with an invalid value."""
        positive = ("latent_dim", "width", "batch_size", "epochs", "image_size", "grid_size", "keep_checkpoints", "log_every")
        for option in positive:
            if getattr(self, option) < 1:
                raise InputError(f"invalid {option.replace('_', '-')} {getattr(self, option)}: use a positive integer")
        if (problem := model_name_problem(self.name)) is not None:
            raise InputError(problem.replace("model name", "run name", 1) + "; the run name becomes the model name on export")
        if self.limit is not None and self.limit < 1:
            raise InputError(f"invalid limit {self.limit}: use a positive number of images")
        if self.max_steps is not None and self.max_steps < 1:
            raise InputError(f"invalid max-steps {self.max_steps}: use a positive step count")
        if self.checkpoint_every < 0:
            raise InputError(f"invalid checkpoint-every {self.checkpoint_every}: use 0 or a positive step count")
        if not 0 <= self.seed <= MAX_SEED:
            raise InputError(f"invalid seed {self.seed}: use an integer from 0 to {MAX_SEED}")
        if not 0 < self.learning_rate < 1:
            raise InputError(f"invalid learning-rate {self.learning_rate}: use a value in (0, 1)")
        if self.dataset not in ("fashion-mnist", "folder"):
            raise InputError(f"invalid dataset {self.dataset!r}: use 'fashion-mnist' or 'folder'")
        if self.dataset == "folder" and self.data_dir is None:
            raise InputError("dataset 'folder' needs --data-dir pointing to a folder of images")
        if self.image_size % 4 != 0:
            raise InputError(f"invalid image-size {self.image_size}: the DCGAN upsamples twice, so use a multiple of 4")
        if self.channels not in (1, 3):
            raise InputError(f"invalid channels {self.channels}: use 1 (grayscale) or 3 (RGB)")
        self._validate_paths()

    def _validate_paths(self) -> None:
        if self.data_dir is not None and not self.data_dir.is_dir():
            raise InputError(f"data folder not found: {self.data_dir}; pass an existing folder to --data-dir")
        for parent in (self.run_dir, *self.run_dir.parents):
            if parent.exists() and not parent.is_dir():
                raise InputError(f"invalid run-dir {self.run_dir}: {parent} is a file, not a folder")

    def to_json(self) -> dict:
        """Return the options as JSON-ready values."""
        values = dataclasses.asdict(self)
        return {key: str(value) if isinstance(value, Path) else value for key, value in values.items()}


# Options that may differ between a run and its resumption; every other option must match.
RESUMABLE_OPTIONS = {"epochs", "max_steps", "checkpoint_every", "keep_checkpoints", "log_every", "run_dir", "data_dir"}

# The type of each option that is not an integer.
_OPTION_KINDS = {
    "data_dir": "path", "run_dir": "path",
    "learning_rate": "number", "beta_1": "number",
    "name": "string", "dataset": "string",
}
# TensorFlow's and numpy's seeds must fit in an unsigned 32-bit integer.
MAX_SEED = 2**32 - 1


def _convert(option: str, value, source: str):
    """Return `value` as the option's type, or raise InputError naming the option, the value and its source."""
    kind = _OPTION_KINDS.get(option, "integer")
    is_integer = isinstance(value, int) and not isinstance(value, bool)

    if kind == "path" and isinstance(value, (str, Path)):
        return Path(value)
    if kind == "number" and (is_integer or isinstance(value, float)):
        return float(value)
    if kind == "string" and isinstance(value, str):
        return value
    if kind == "integer" and is_integer:
        return value

    article = "an" if kind == "integer" else "a"
    raise InputError(f"invalid {option.replace('_', '-')} {value!r} in {source}: expected {article} {kind}")


def _apply(config: TrainConfig, values: dict, source: str) -> None:
    known = {field.name for field in dataclasses.fields(TrainConfig)}
    for key, value in values.items():
        attribute = key.replace("-", "_")
        if attribute not in known:
            raise InputError(f"unknown option {key!r} in {source}; known options: {', '.join(sorted(known))}")
        if value is None:
            continue
        setattr(config, attribute, _convert(attribute, value, source))


def saved_options(run_dir: Path) -> dict:
    """Return the options saved in run_dir/config.json, except run_dir itself, or {} without the file."""
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        return {}
    return {option: value for option, value in read_json_object(path).items() if option != "run_dir"}


def load_config(path: Path | None, overrides: dict, saved: dict | None = None) -> TrainConfig:
    """Build a TrainConfig from the defaults, `saved` options of a run, the TOML file at `path`, then
    `overrides`; None values are skipped."""
    config = TrainConfig()
    if saved:
        _apply(config, saved, "the saved config.json")
    if path is not None:
        try:
            values = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(f"config file not found: {path}") from None
        except (OSError, UnicodeDecodeError) as error:
            raise InputError(f"cannot read config file {path}: {error}") from None
        except tomllib.TOMLDecodeError as error:
            raise InputError(f"invalid TOML in config file {path}: {error}") from None
        _apply(config, values, str(path))

    _apply(config, overrides, "the command line")
    config.validate()
    return config
