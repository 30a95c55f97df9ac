"""The studio page's HTTP server: uvicorn on a thread of the daemon.

The socket is bound in :meth:`WebServer.start`, on the caller's thread, so that a port in use or
an address the machine does not have stops ``mattectl run`` with a clear message instead of
failing later on a thread nobody watches.
"""

from __future__ import annotations

import logging
import socket
import threading

import uvicorn
from starlette.types import ASGIApp

from mattectl.config import WebConfig, is_loopback
from mattectl.errors import ConfigError, MattectlError

logger = logging.getLogger(__name__)


def check_listen(web: WebConfig, has_token: bool) -> None:
    """Refuse to listen beyond this computer without a token (the config check says the same;
    this is the last word, at the moment of listening)."""
    host, _port = web.address
    if not has_token and not is_loopback(host):
        raise ConfigError("web", [("web.listen", (
            f"{host} is reachable from other computers: listening there needs a token "
            "(web.token = true), or listen on 127.0.0.1"))])


def bind(host: str, port: int) -> socket.socket:
    try:
        family, kind, proto, _name, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise MattectlError(f"web page: cannot listen on {host}:{port}: {exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(64)
    except OSError as exc:
        sock.close()
        raise MattectlError(f"web page: cannot listen on {host}:{port}: "
                            f"{exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


class WebServer:
    def __init__(self, app: ASGIApp, web: WebConfig, has_token: bool) -> None:
        self.app = app
        self.web = web
        self.has_token = has_token
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None

    @property
    def port(self) -> int | None:
        return self._sock.getsockname()[1] if self._sock is not None else None

    def start(self) -> None:
        check_listen(self.web, self.has_token)
        host, port = self.web.address
        self._sock = bind(host, port)
        config = uvicorn.Config(self.app, log_config=None, access_log=False, lifespan="off",
                                log_level="warning", timeout_graceful_shutdown=2,
                                server_header=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]},
                                        name="mattectl-web", daemon=True)
        self._thread.start()
        logger.info("studio page on http://%s:%d/", host, self.port)

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)
        if self._sock is not None:
            self._sock.close()
        self._server = self._thread = self._sock = None
