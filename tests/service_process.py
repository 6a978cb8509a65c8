"""Start the real `ganforge serve` command in a subprocess for HTTP tests."""

import contextlib
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent
STARTUP_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0


@dataclass
class RunningServer:
    """A server subprocess: its base URL and the file that collects its stdout and stderr."""

    url: str
    log_path: Path
    process: subprocess.Popen

    def log(self) -> str:
        """Return everything the server has written so far."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until_healthy(server: RunningServer) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited with code {server.process.returncode} during startup:\n{server.log()}")
        try:
            if httpx.get(f"{server.url}/health", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server did not answer /health within {STARTUP_TIMEOUT_SECONDS} s:\n{server.log()}")


def _stop(process: subprocess.Popen) -> None:
    # SIGTERM lets uvicorn run the lifespan shutdown, and SIGKILL follows only if it hangs.
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextlib.contextmanager
def running_server(models_dir: Path, log_dir: Path, frontend_dir: Path | None = None, env: dict | None = None):
    """Run `ganforge serve` on a free port of 127.0.0.1 and yield a RunningServer once /health returns 200.

    The server's output goes to log_dir/server-<port>.log. On startup failure
    the raised RuntimeError contains that log.
    """
    port = free_port()
    log_path = Path(log_dir) / f"server-{port}.log"
    process_env = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
    # A folder that does not exist turns the web page off, so tests never serve the real frontend/.
    process_env["GANFORGE_FRONTEND_DIR"] = str(frontend_dir or Path(log_dir) / "no-frontend")
    command = [
        sys.executable, "-m", "ganforge.cli", "serve",
        "--models-dir", str(models_dir), "--host", "127.0.0.1", "--port", str(port),
    ]

    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=process_env, stdout=log_file, stderr=subprocess.STDOUT)
    server = RunningServer(url=f"http://127.0.0.1:{port}", log_path=log_path, process=process)
    try:
        _wait_until_healthy(server)
        yield server
    finally:
        _stop(process)
