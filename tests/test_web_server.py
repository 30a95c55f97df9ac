"""The studio page's server: uvicorn on a thread, bound at start, refused beyond loopback
without a token."""

from __future__ import annotations

import socket
import urllib.request
from collections.abc import Callable

import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from mattectl.config import Settings
from mattectl.errors import ConfigError, MattectlError
from mattectl.web.server import WebServer, check_listen


def hello_app() -> Starlette:
    return Starlette(routes=[Route("/", lambda request: PlainTextResponse("hello"))])


def test_the_server_serves_on_its_thread_and_stops(make_settings: Callable[..., Settings]) -> None:
    web = make_settings(web={"enabled": True, "listen": "127.0.0.1:0"}).web
    server = WebServer(hello_app(), web, has_token=True)
    server.start()
    port = server.port
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as reply:
            assert reply.read() == b"hello"
    finally:
        server.stop()
    with pytest.raises(ConnectionRefusedError), \
            socket.create_connection(("127.0.0.1", port), timeout=5):
        pass  # closed: the thread is gone (the fixture fails a test that leaks it)


def test_listening_beyond_loopback_without_a_token_is_refused(
        make_settings: Callable[..., Settings]) -> None:
    for listen in ("0.0.0.0:8750", "192.0.2.7:8750", "[::]:8750", "studio-pc:8750"):
        web = make_settings(web={"listen": listen}).web
        with pytest.raises(ConfigError) as exc:
            WebServer(hello_app(), web, has_token=False).start()
        assert dict(exc.value.problems)["web.listen"].startswith(listen.rpartition(":")[0]
                                                                  .strip("[]"))
        check_listen(web, has_token=True)  # with a token it may
    for listen in ("127.0.0.1:8750", "127.0.0.2:1", "localhost:8750", "[::1]:8750"):
        check_listen(make_settings(web={"listen": listen}).web, has_token=False)


def test_a_port_in_use_is_a_clear_error_at_start(make_settings: Callable[..., Settings]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        web = make_settings(web={"enabled": True, "listen": f"127.0.0.1:{port}"}).web
        with pytest.raises(MattectlError, match=f"cannot listen on 127.0.0.1:{port}: "):
            WebServer(hello_app(), web, has_token=True).start()
