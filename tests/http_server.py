"""A real HTTP server on 127.0.0.1 for download tests, and a small ModelScope hub on top of it.

``FileServer`` serves files the test puts in ``files`` (path -> bytes), honours ``Range``, and can
misbehave on request: ``cut_after`` closes the connection after that many bytes of the next
response, ``ignore_range`` always sends the whole file, ``html`` answers with a web page.
Every request is kept in ``requests`` as ``(method, path, Range header)``.

``ModelScopeHub`` answers the two calls ``snapshot_download`` makes: the file listing
(``/api/v1/models/<id>/repo/files``, with each file's size and sha256) and the file download
(``/api/v1/models/<id>/repo?FilePath=...``).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse


class FileServer:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[tuple[str, str, str | None]] = []
        self.cut_after: int | None = None
        self.ignore_range = False
        self.html = False
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="test-http-server", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def lookup(self, path: str) -> bytes | None:
        """The body for a GET; a subclass may answer API paths."""
        return self.files.get(urlparse(path).path)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                server.requests.append(("GET", self.path, self.headers.get("Range")))
                server.respond(self)

        return Handler

    def respond(self, handler: BaseHTTPRequestHandler) -> None:
        if self.html:
            return self._send(handler, 200, b"<html>Google Drive quota</html>", "text/html")
        body = self.lookup(handler.path)
        if body is None:
            return self._send(handler, 404, b"not found", "text/plain")
        match = re.fullmatch(r"bytes=(\d+)-", handler.headers.get("Range") or "")
        if match and not self.ignore_range:
            start = int(match.group(1))
            if start >= len(body):
                return self._send(handler, 416, b"", "text/plain")
            return self._send(handler, 206, body[start:], "application/octet-stream",
                              {"Content-Range": f"bytes {start}-{len(body) - 1}/{len(body)}"})
        return self._send(handler, 200, body, "application/octet-stream")

    def _send(self, handler: BaseHTTPRequestHandler, code: int, body: bytes, kind: str,
              headers: dict[str, str] | None = None) -> None:
        handler.send_response(code)
        handler.send_header("Content-Type", kind)
        handler.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            handler.send_header(key, value)
        handler.end_headers()
        if self.cut_after is not None:
            body, self.cut_after = body[: self.cut_after], None
            handler.close_connection = True
        handler.wfile.write(body)


class ModelScopeHub(FileServer):
    """Serves ``models[model_id] = {file name: bytes}`` the way the ModelScope hub does."""

    def __init__(self) -> None:
        super().__init__()
        self.models: dict[str, dict[str, bytes]] = {}

    def lookup(self, path: str) -> bytes | None:
        url = urlparse(path)
        query = parse_qs(url.query)
        match = re.fullmatch(r"/api/v1/models/([^/]+/[^/]+)/repo(/files)?", url.path)
        if match is None or match.group(1) not in self.models:
            return None
        files = self.models[match.group(1)]
        if match.group(2):
            listing = [{"Path": name, "Name": name, "Type": "blob", "Size": len(data),
                        "Sha256": hashlib.sha256(data).hexdigest()}
                       for name, data in files.items()]
            return json.dumps({"Code": 200, "Success": True,
                               "Data": {"Files": listing}}).encode()
        return files.get(query.get("FilePath", [""])[0])


@contextmanager
def serving(server: FileServer) -> Iterator[FileServer]:
    server.start()
    try:
        yield server
    finally:
        server.stop()
