"""Downloads against a real HTTP server on loopback: resume, atomic landing, checksums."""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from mattectl.backends.catalog import WeightFile
from mattectl.errors import ChecksumError, DownloadError
from mattectl.modelstore.download import download, part_path

from .http_server import FileServer, serving

DATA = os.urandom(300_000)
EXPECTED = WeightFile("w.pth", size=len(DATA), md5=hashlib.md5(DATA).hexdigest())


@pytest.fixture
def server() -> Iterator[FileServer]:
    with serving(FileServer()) as srv:
        srv.files["/w.pth"] = DATA
        yield srv


def progress_log() -> tuple[list[tuple[int, int | None]], object]:
    seen: list[tuple[int, int | None]] = []
    return seen, lambda done, total: seen.append((done, total))


def test_a_cut_download_resumes_and_lands_whole(server: FileServer, tmp_path: Path) -> None:
    target = tmp_path / "m" / "w.pth"
    server.cut_after = 120_000
    with pytest.raises(DownloadError, match="stopped at 120000 of 300000 bytes"):
        download(f"{server.url}/w.pth", target, EXPECTED, lambda done, total: None)
    assert not target.exists()  # never a partial file under the final name
    assert part_path(target).stat().st_size == 120_000
    seen, progress = progress_log()
    digest = download(f"{server.url}/w.pth", target, EXPECTED, progress)
    assert target.read_bytes() == DATA
    assert digest.md5 == EXPECTED.md5
    assert not part_path(target).exists()
    assert server.requests[-1][2] == "bytes=120000-"  # only the rest was asked for
    assert seen[0] == (120_000, 300_000)
    assert seen[-1] == (300_000, 300_000)


def test_a_server_that_cannot_resume_starts_over(server: FileServer, tmp_path: Path) -> None:
    target = tmp_path / "w.pth"
    part_path(target).write_bytes(b"stale bytes from another file")
    server.ignore_range = True
    download(f"{server.url}/w.pth", target, EXPECTED, lambda done, total: None)
    assert target.read_bytes() == DATA


def test_a_wrong_checksum_is_refused_and_the_old_file_kept(server: FileServer,
                                                           tmp_path: Path) -> None:
    target = tmp_path / "w.pth"
    target.write_bytes(b"the weights in use")
    server.files["/w.pth"] = DATA[:-1] + bytes([DATA[-1] ^ 1])  # one bit differs
    with pytest.raises(ChecksumError, match=r"md5 .* expected .* was deleted"):
        download(f"{server.url}/w.pth", target, EXPECTED, lambda done, total: None)
    assert target.read_bytes() == b"the weights in use"
    assert not part_path(target).exists()


def test_a_short_file_is_reported_as_truncated_and_kept_for_resuming(
        server: FileServer, tmp_path: Path) -> None:
    server.files["/w.pth"] = DATA[:200_000]  # the server itself has a short copy
    target = tmp_path / "w.pth"
    with pytest.raises(DownloadError, match="stopped at 200000 of 300000 bytes"):
        download(f"{server.url}/w.pth", target, EXPECTED, lambda done, total: None)
    assert not target.exists()
    server.files["/w.pth"] = DATA
    download(f"{server.url}/w.pth", target, EXPECTED, lambda done, total: None)
    assert target.read_bytes() == DATA


def test_a_web_page_is_not_taken_for_the_file(server: FileServer, tmp_path: Path) -> None:
    server.html = True
    with pytest.raises(DownloadError, match="sent a web page"):
        download(f"{server.url}/w.pth", tmp_path / "w.pth", EXPECTED, lambda d, t: None)
    assert not (tmp_path / "w.pth").exists()


def test_missing_file_and_closed_port_fail_with_the_reason(server: FileServer,
                                                           tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="404"):
        download(f"{server.url}/nope.pth", tmp_path / "w.pth", EXPECTED, lambda d, t: None)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: connections are refused
        with pytest.raises(DownloadError, match="cannot connect"):
            download(f"http://127.0.0.1:{port}/w.pth", tmp_path / "w.pth", EXPECTED,
                     lambda d, t: None)
