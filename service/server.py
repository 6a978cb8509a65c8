"""Run the HTTP service with uvicorn."""

import errno
import logging
import socket
import sys

import uvicorn
from uvicorn.config import STARTUP_FAILURE

from service.app import create_app
from service.settings import Settings, SettingsError

logger = logging.getLogger(__name__)


def run_server(settings: Settings) -> None:
    """Serve the application until SIGINT or SIGTERM, which uvicorn turns into a clean shutdown.

    Raises SettingsError, before any model is loaded, on invalid settings and when host:port
    cannot be bound.
    """
    settings.validate()
    listener = bind_listener(settings.host, settings.port)
    app = create_app(settings)
    # log_config=None keeps the logging setup of the caller, so uvicorn's lines share its format.
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_config=None)
    server = uvicorn.Server(config)
    logger.info("serving ganforge on http://%s:%d once the models are loaded", settings.host, settings.port)

    try:
        # uvicorn loads the models in the lifespan startup, then listens on the bound socket.
        server.run(sockets=[listener])
    except KeyboardInterrupt:
        pass
    finally:
        listener.close()

    if not server.started:
        # The same exit code as uvicorn.run when the lifespan startup fails.
        sys.exit(STARTUP_FAILURE)


def bind_listener(host: str, port: int) -> socket.socket:
    """Bind a TCP socket to host:port for uvicorn, or raise SettingsError with the reason and the fix.

    Binding before the models load reports a port in use at once, and handing the bound
    socket to uvicorn leaves no gap in which another process could take the port.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # asyncio sets TCP_NODELAY only on sockets whose proto is IPPROTO_TCP. Without it, Nagle's
    # algorithm meets the client's delayed ACK and each keep-alive response waits about 40 ms.
    listener = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    # The same option as uvicorn: on Linux it allows a restart while old connections are in
    # TIME_WAIT, but a bind still fails while another socket listens on the port.
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((host, port))
    except OSError as error:
        listener.close()
        raise SettingsError(f"cannot listen on {host}:{port}: {_describe_bind_error(error)}") from None
    return listener


def _describe_bind_error(error: OSError) -> str:
    if error.errno == errno.EADDRINUSE:
        return "address already in use; stop the other server or pass --port"
    if error.errno == errno.EACCES:
        return "permission denied; ports below 1024 need privileges, so pass --port 1024 or above"
    if error.errno == errno.EADDRNOTAVAIL:
        return "no network interface of this machine has that address; pass --host 127.0.0.1 or 0.0.0.0"
    if isinstance(error, socket.gaierror):
        return f"host name not resolved ({error.strerror}); pass --host with an address such as 127.0.0.1"
    return f"{error.strerror or error}; pass another --host or --port"
