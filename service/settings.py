"""Service settings, read from environment variables, and execution provider resolution."""

import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import onnxruntime

from ganforge.errors import InputError

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent

CUDA_PROVIDER = "CUDAExecutionProvider"
CPU_PROVIDER = "CPUExecutionProvider"
PROVIDER_ALIASES = {"cuda": CUDA_PROVIDER, "cpu": CPU_PROVIDER}

# Maximum images per /generate request, counted as the seed count or the number of latent vectors in z.
MAX_COUNT = 64
# Default maximum request body: 1 MiB fits 64 latent vectors of about 800 numbers each, written at
# full float precision (about 20 bytes per number), so latent_dim 100 leaves room to spare.
MAX_BODY_BYTES = 1024 * 1024
MAX_PORT = 65535


class SettingsError(InputError, ValueError):
    """An invalid setting value from the environment or the command line.

    It is an InputError so that `ganforge serve` reports it in one line, and a
    ValueError for callers that parse settings themselves.
    """


def _int_from_env(variable: str, default: int) -> int:
    text = os.environ.get(variable)
    if text is None or text.strip() == "":
        return default

    try:
        return int(text)
    except ValueError:
        raise SettingsError(f"invalid {variable}={text!r}: expected a whole number") from None


def _path_from_env(variable: str, default: Path) -> Path:
    text = os.environ.get(variable)
    if text is None or text.strip() == "":
        return default
    return Path(text)


def _is_file_but_not_folder(path: Path) -> bool:
    try:
        mode = os.stat(path).st_mode
    except OSError:
        # Missing or unreadable: the startup scan logs a warning and serves no models.
        return False
    return not stat.S_ISDIR(mode)


@dataclass
class Settings:
    """Options of the HTTP service."""

    models_dir: Path = REPO_ROOT / "models"
    frontend_dir: Path = REPO_ROOT / "frontend"
    # Execution providers in order of preference. None picks CUDA first when available, then CPU.
    providers: list[str] | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    # Threads that ONNX Runtime uses inside one operator, or 0 for ONNX Runtime's default.
    intra_op_threads: int = 0
    max_count: int = MAX_COUNT
    # Requests with a larger body get 413 before their JSON is parsed.
    max_body_bytes: int = MAX_BODY_BYTES

    @classmethod
    def from_env(cls) -> "Settings":
        """Build settings from GANFORGE_* variables and PORT, with defaults for the unset ones."""
        intra_op_threads = _int_from_env("GANFORGE_INTRA_OP_THREADS", 0)
        if intra_op_threads < 0:
            raise SettingsError(
                f"invalid GANFORGE_INTRA_OP_THREADS={intra_op_threads}: expected 0 (the default) or a positive count"
            )

        return cls(
            models_dir=_path_from_env("GANFORGE_MODELS_DIR", cls.models_dir),
            frontend_dir=_path_from_env("GANFORGE_FRONTEND_DIR", cls.frontend_dir),
            providers=cls.parse_providers(os.environ.get("GANFORGE_PROVIDERS")),
            port=_int_from_env("PORT", cls.port),
            intra_op_threads=intra_op_threads,
            max_body_bytes=_int_from_env("GANFORGE_MAX_BODY_BYTES", MAX_BODY_BYTES),
        )

    def validate(self) -> None:
        """Raise SettingsError on a port outside 1..65535, a non-positive body limit, or a models_dir that is a file.

        A models_dir that does not exist passes, so that the server can start first and
        POST /models/reload loads the models once the folder is created.
        """
        if not 1 <= self.port <= MAX_PORT:
            raise SettingsError(f"invalid port {self.port}: use a TCP port from 1 to {MAX_PORT}, such as 8000")
        if self.max_body_bytes < 1:
            raise SettingsError(
                f"invalid GANFORGE_MAX_BODY_BYTES={self.max_body_bytes}: expected a positive number of bytes "
                f"such as {MAX_BODY_BYTES}"
            )
        if _is_file_but_not_folder(self.models_dir):
            raise SettingsError(
                f"model repository {self.models_dir} is not a folder: pass --models-dir with the folder "
                f"that contains <name>/<version>/ subfolders"
            )

    @staticmethod
    def parse_providers(text: str | None) -> list[str] | None:
        """Parse a comma-separated provider list. None, an empty string and "auto" return None, the automatic choice.

        Accepts full names such as "CUDAExecutionProvider" and the aliases "cuda" and "cpu".
        Raises SettingsError on a name that onnxruntime does not know at all, and on a list
        without any name, such as ",".
        """
        if text is None or text.strip().lower() in ("", "auto"):
            return None

        # Providers that onnxruntime supports but this build lacks pass here, and resolve_providers skips them.
        known = set(onnxruntime.get_all_providers())
        available = onnxruntime.get_available_providers()
        providers = []
        for item in text.split(","):
            name = item.strip()
            if not name:
                continue
            name = PROVIDER_ALIASES.get(name.lower(), name)
            if name not in known:
                raise SettingsError(
                    f"unknown execution provider {item.strip()!r}: use 'auto', 'cuda', 'cpu' "
                    f"or one of the available providers {available}"
                )
            if name not in providers:
                providers.append(name)

        if not providers:
            raise SettingsError(f"no execution provider in {text!r}: use 'auto', 'cuda', 'cpu' or a list such as 'cuda,cpu'")
        return providers


def resolve_providers(requested: list[str] | None) -> list[str]:
    """Return the execution providers to create sessions with, always ending with the CPU provider.

    Logs a warning for each requested provider that this onnxruntime build lacks.
    """
    available = onnxruntime.get_available_providers()
    if requested is None:
        if CUDA_PROVIDER in available:
            return [CUDA_PROVIDER, CPU_PROVIDER]
        return [CPU_PROVIDER]

    providers = []
    for name in requested:
        if name not in available:
            logger.warning("execution provider %s is not available (available: %s); skipping it", name, available)
        elif name != CPU_PROVIDER and name not in providers:
            providers.append(name)

    providers.append(CPU_PROVIDER)
    return providers
