"""A real HTTP server on 127.0.0.1 for download tests, and, on top of it, a Google Drive and a
small ModelScope hub that behave like the real ones.

``FileServer`` serves files the test puts in ``files`` (path -> bytes), honours ``Range``, and can
misbehave on request: ``cut_after`` closes the connection after that many bytes of the next
file it sends, ``ignore_range`` always sends the whole file, ``html`` answers with a web page,
``redirects`` (path -> location) answers 302 like a release asset that lives on a storage host,
and ``stall`` (path -> bytes) sends the headers and that many bytes of the file, then nothing
(-1: not even the headers) until the server stops: a connection that hangs.
Every request is kept in ``requests`` as ``(method, path, Range header)``, and its ``Cookie``
header in ``cookies``.

``DriveServer`` answers ``/uc?export=download&id=ID`` for the files in ``drive`` the way Google
Drive answers a large file: with a confirmation page (``page``: the current
``download-form`` with ``confirm`` and ``uuid`` inputs leading to ``/download`` (usercontent),
the older "Download anyway" link with a token, the still older ``download_warning`` cookie, or
a quota page that leads nowhere), and serves the file only to the confirmed request.

``ModelScopeHub`` answers the two calls ``snapshot_download`` makes: the file listing
(``/api/v1/models/<id>/repo/files``, with each file's size and sha256) and the file download
(``/api/v1/models/<id>/repo?FilePath=...``).
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
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
        self.redirects: dict[str, str] = {}
        self.stall: dict[str, int] = {}
        self.cookies: list[str | None] = []
        self._release = threading.Event()  # ends every stalled response
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="test-http-server", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._release.set()
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
                server.cookies.append(self.headers.get("Cookie"))
                server.respond(self)

        return Handler

    def respond(self, handler: BaseHTTPRequestHandler) -> None:
        if self.html:
            return self._send(handler, 200, b"<html>Google Drive quota</html>", "text/html")
        path = urlparse(handler.path).path
        if path in self.redirects:
            return self._send(handler, 302, b"", "text/plain",
                              {"Location": self.redirects[path]})
        if self.stall.get(path) == -1:
            self._release.wait(120)
            return None
        body = self.lookup(handler.path)
        if body is None:
            return self._send(handler, 404, b"not found", "text/plain")
        self.serve_body(handler, body)
        return None

    def serve_body(self, handler: BaseHTTPRequestHandler, body: bytes,
                   headers: dict[str, str] | None = None) -> None:
        """``body``, or the part of it a ``Range`` header asks for."""
        match = re.fullmatch(r"bytes=(\d+)-", handler.headers.get("Range") or "")
        if match and not self.ignore_range:
            start = int(match.group(1))
            if start >= len(body):
                return self._send(handler, 416, b"", "text/plain")
            return self._send(handler, 206, body[start:], "application/octet-stream",
                              {"Content-Range": f"bytes {start}-{len(body) - 1}/{len(body)}",
                               **(headers or {})})
        return self._send(handler, 200, body, "application/octet-stream", headers)

    def _send(self, handler: BaseHTTPRequestHandler, code: int, body: bytes, kind: str,
              headers: dict[str, str] | None = None) -> None:
        handler.send_response(code)
        handler.send_header("Content-Type", kind)
        handler.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            handler.send_header(key, value)
        handler.end_headers()
        if self.cut_after is not None and code in (200, 206):  # a file, not a redirect
            body, self.cut_after = body[: self.cut_after], None
            handler.close_connection = True
        stall = self.stall.get(urlparse(handler.path).path)
        if stall is not None:
            handler.wfile.write(body[:stall])
            handler.wfile.flush()
            self._release.wait(120)  # the client gives up first
            handler.close_connection = True
            return
        handler.wfile.write(body)


DRIVE_PAGE = """<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title>
<meta http-equiv="content-type" content="text/html; charset=utf-8"/></head><body>
<div class="uc-main"><div id="uc-text"><p class="uc-warning-caption">Google Drive can't scan this
file for viruses.</p><p class="uc-warning-subcaption"><span class="uc-name-size">
<a href="/open?id={id}">{name}</a> (4.4M)</span> is too large for Google to scan for viruses.
Would you still like to download this file?</p>{action}</div></div></body></html>"""
DRIVE_FORM = """<form id="download-form" action="{url}/download" method="get">
<input type="submit" id="uc-download-link" class="goog-inline-block jfk-button"
 value="Download anyway"/>
<input type="hidden" name="id" value="{id}"><input type="hidden" name="export" value="download">
<input type="hidden" name="confirm" value="t"><input type="hidden" name="uuid" value="{uuid}">
</form>"""
DRIVE_LINK = """<a id="uc-download-link" class="goog-inline-block jfk-button jfk-button-action"
href="/uc?export=download&amp;confirm={token}&amp;id={id}">Download anyway</a>"""
DRIVE_QUOTA = """<!DOCTYPE html><html><head><title>Google Drive - Quota exceeded</title></head>
<body><p>Too many users have viewed or downloaded this file recently. Please try accessing the
file again later.</p></body></html>"""


class DriveServer(FileServer):
    """Google Drive's download flow for ``drive[file_id] = bytes``, answered as ``page``
    ("form", "link", "cookie" or "quota") says."""

    def __init__(self, page: str = "form") -> None:
        super().__init__()
        self.drive: dict[str, bytes] = {}
        self.page = page
        self.uuid = secrets.token_hex(8)
        self.token = secrets.token_hex(4)

    def respond(self, handler: BaseHTTPRequestHandler) -> None:
        url = urlparse(handler.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        body = self.drive.get(query.get("id", ""))
        if url.path not in ("/uc", "/download") or body is None:
            return super().respond(handler)
        if self._confirmed(url.path, query, handler.headers.get("Cookie") or ""):
            return self.serve_body(handler, body, {
                "Content-Disposition": f'attachment; filename="{query["id"]}.pth"'})
        if self.page == "quota":
            return self._send(handler, 200, DRIVE_QUOTA.encode(), "text/html; charset=utf-8")
        action = {"form": DRIVE_FORM, "link": DRIVE_LINK, "cookie": ""}[self.page].format(
            url=self.url, id=query["id"], uuid=self.uuid, token=self.token)
        page = DRIVE_PAGE.format(id=query["id"], name="u2netp.pth", action=action)
        cookie = {"Set-Cookie": f"download_warning_13058876669334088843_{query['id']}="
                                f"{self.token}; Path=/; HttpOnly"} if self.page == "cookie" else {}
        return self._send(handler, 200, page.encode(), "text/html; charset=utf-8", cookie)

    def _confirmed(self, path: str, query: dict[str, str], cookie: str) -> bool:
        if self.page == "form":
            return path == "/download" and query.get("confirm") == "t" \
                and query.get("uuid") == self.uuid
        if self.page == "link":
            return path == "/uc" and query.get("confirm") == self.token
        if self.page == "cookie":
            return path == "/uc" and query.get("confirm") == self.token \
                and f"={self.token}" in cookie
        return False


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
