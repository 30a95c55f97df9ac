"""Downloads against real HTTP servers on loopback that behave like the sources the catalog lists:
a release asset behind a redirect, Google Drive's confirmation pages, range requests, a wrong
file, a connection that hangs; and the order sources are tried in."""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from mattectl.backends.catalog import Source, WeightFile
from mattectl.errors import ChecksumError, DownloadError
from mattectl.modelstore.download import download, fetch, fetch_first, part_path

from .http_server import DriveServer, FileServer, serving

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


def one(url: str) -> Source:
    return Source(url, (url,))


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".part" in p.name)


def test_a_cut_download_resumes_and_lands_whole(server: FileServer, tmp_path: Path) -> None:
    target = tmp_path / "m" / "w.pth"
    url = f"{server.url}/w.pth"
    server.cut_after = 120_000
    with pytest.raises(DownloadError, match="stopped at 120000 of 300000 bytes"):
        download(url, target, EXPECTED, lambda done, total: None)
    assert not target.exists()  # never a partial file under the final name
    assert part_path(target, one(url)).stat().st_size == 120_000
    seen, progress = progress_log()
    digest = download(url, target, EXPECTED, progress)
    assert target.read_bytes() == DATA
    assert digest.md5 == EXPECTED.md5
    assert leftovers(target.parent) == []
    assert server.requests[-1][2] == "bytes=120000-"  # only the rest was asked for
    assert seen[0] == (120_000, 300_000)
    assert seen[-1] == (300_000, 300_000)


def test_a_server_that_cannot_resume_starts_over(server: FileServer, tmp_path: Path) -> None:
    target = tmp_path / "w.pth"
    url = f"{server.url}/w.pth"
    part_path(target, one(url)).write_bytes(b"stale bytes from another file")
    server.ignore_range = True
    download(url, target, EXPECTED, lambda done, total: None)
    assert target.read_bytes() == DATA


def test_a_wrong_checksum_is_refused_and_the_old_file_kept(server: FileServer,
                                                           tmp_path: Path) -> None:
    target = tmp_path / "w.pth"
    target.write_bytes(b"the weights in use")
    server.files["/w.pth"] = DATA[:-1] + bytes([DATA[-1] ^ 1])  # one bit differs
    with pytest.raises(ChecksumError, match=r"md5 .* expected .* was deleted"):
        download(f"{server.url}/w.pth", target, EXPECTED, lambda done, total: None)
    assert target.read_bytes() == b"the weights in use"
    assert leftovers(tmp_path) == []


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


def test_a_release_asset_behind_a_redirect_downloads_and_resumes(server: FileServer,
                                                                 tmp_path: Path) -> None:
    # GitHub answers a release asset's address with a redirect to its storage host.
    server.redirects["/releases/download/3.2/w.pth"] = f"{server.url}/w.pth"
    url = f"{server.url}/releases/download/3.2/w.pth"
    target = tmp_path / "w.pth"
    server.cut_after = 100_000
    with pytest.raises(DownloadError, match="stopped at 100000"):
        download(url, target, EXPECTED, lambda d, t: None)
    download(url, target, EXPECTED, lambda d, t: None)
    assert target.read_bytes() == DATA
    # The resumed request asked for the rest at the redirect and at the file it led to.
    assert server.requests[-2:] == [("GET", "/releases/download/3.2/w.pth", "bytes=100000-"),
                                    ("GET", "/w.pth", "bytes=100000-")]


@pytest.mark.parametrize("page", ["form", "link", "cookie"])
def test_google_drives_confirmation_page_is_answered(page: str, tmp_path: Path) -> None:
    with serving(DriveServer(page)) as drive:
        drive.drive["FILEID"] = DATA
        target = tmp_path / "w.pth"
        download(f"{drive.url}/uc?export=download&id=FILEID", target, EXPECTED,
                 lambda d, t: None)
        assert target.read_bytes() == DATA
        first, confirmed = drive.requests
        assert first[1] == "/uc?export=download&id=FILEID"
        if page == "form":  # the usercontent address, with the page's confirm and uuid
            assert confirmed[1].startswith("/download?id=FILEID&export=download&confirm=t")
            assert f"uuid={drive.uuid}" in confirmed[1]
        else:
            assert f"confirm={drive.token}" in confirmed[1]
        if page == "cookie":  # the token came as a cookie, and the cookie went back
            assert drive.cookies[1] is not None and drive.token in drive.cookies[1]


def test_a_drive_download_that_breaks_resumes_with_a_range(tmp_path: Path) -> None:
    with serving(DriveServer("form")) as drive:
        drive.drive["FILEID"] = DATA
        url = f"{drive.url}/uc?export=download&id=FILEID"
        target = tmp_path / "w.pth"
        part = part_path(target, one(url))
        part.write_bytes(DATA[:70_000])  # what an earlier, broken run left
        download(url, target, EXPECTED, lambda d, t: None)
        assert target.read_bytes() == DATA
        assert drive.requests[-1][2] == "bytes=70000-"
        assert drive.requests[-1][1].startswith("/download?")


def test_drives_quota_page_is_reported_by_its_title(tmp_path: Path) -> None:
    with serving(DriveServer("quota")) as drive:
        drive.drive["FILEID"] = DATA
        with pytest.raises(DownloadError, match=r"web page.*Quota exceeded"):
            download(f"{drive.url}/uc?export=download&id=FILEID", tmp_path / "w.pth",
                     EXPECTED, lambda d, t: None)
    assert list(tmp_path.iterdir()) == []  # nothing written, nothing installed


def test_a_wrong_file_makes_way_for_the_next_source_and_is_never_installed(
        server: FileServer, tmp_path: Path) -> None:
    server.files["/mirror/w.pth"] = DATA[::-1]  # same size, another file
    target = tmp_path / "w.pth"
    offered: list[str] = []
    tried: list[str] = []

    def accept(path: Path, digest: object) -> None:
        offered.append(path.name)
        assert not target.exists()  # nothing in place before a file passed every check

    sources = (Source("mirror", (f"{server.url}/mirror/w.pth",)),
               Source("release", (f"{server.url}/w.pth",)))
    used, digest = fetch_first(sources, target, EXPECTED, lambda d, t: None, accept,
                               on_source=lambda s: tried.append(s.label))
    assert (used.label, tried) == ("release", ["mirror", "release"])
    assert offered == [part_path(target, sources[1]).name]  # the wrong file was never offered
    assert target.read_bytes() == DATA and digest.md5 == EXPECTED.md5
    assert leftovers(tmp_path) == []


def test_a_stalled_connection_times_out_and_the_next_source_is_used(
        server: FileServer, tmp_path: Path) -> None:
    server.files["/slow/w.pth"] = DATA
    server.stall["/slow/w.pth"] = 10_000  # headers and 10 kB, then nothing
    server.files["/silent/w.pth"] = DATA
    server.stall["/silent/w.pth"] = -1  # not even the headers
    target = tmp_path / "w.pth"
    sources = (Source("silent", (f"{server.url}/silent/w.pth",)),
               Source("slow", (f"{server.url}/slow/w.pth",)),
               Source("good", (f"{server.url}/w.pth",)))
    used, _ = fetch_first(sources, target, EXPECTED, lambda d, t: None, timeout=0.5)
    assert used.label == "good"
    assert target.read_bytes() == DATA
    assert leftovers(tmp_path) == []  # the slow source's partial file went with the success


def test_when_no_source_answers_each_is_named_with_its_reason(server: FileServer,
                                                              tmp_path: Path) -> None:
    server.files["/bad/w.pth"] = DATA[::-1]
    server.stall["/hang/w.pth"] = -1
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}/w.pth"
        sources = (Source("GitHub release", (closed,)),
                   Source("mirror", (f"{server.url}/bad/w.pth",)),
                   Source("hangs", (f"{server.url}/hang/w.pth",)),
                   Source("Google Drive", (f"{server.url}/gone.pth",)))
        with pytest.raises(DownloadError) as caught:
            fetch_first(sources, tmp_path / "w.pth", EXPECTED, lambda d, t: None, timeout=0.5)
    lines = str(caught.value).splitlines()
    assert lines[0] == "no source could deliver w.pth (4 tried):"
    assert lines[1].startswith(f"  1. GitHub release ({closed}): cannot connect")
    assert lines[2].startswith(f"  2. mirror ({server.url}/bad/w.pth): w.pth: md5 ")
    assert lines[3] == f"  3. hangs ({server.url}/hang/w.pth): no answer within 0.5 s"
    assert lines[4] == f"  4. Google Drive ({server.url}/gone.pth): the server answered 404 " \
        "Not Found"
    assert not (tmp_path / "w.pth").exists()


def test_a_file_in_parts_is_joined_and_each_part_resumes(server: FileServer,
                                                         tmp_path: Path) -> None:
    for i, start in enumerate(range(0, len(DATA), 100_000)):
        server.files[f"/models/u2a{'abc'[i]}"] = DATA[start:start + 100_000]
    source = Source("mirror in parts", tuple(f"{server.url}/models/u2a{c}" for c in "abc"))
    target = tmp_path / "w.pth"
    server.stall["/models/u2ab"] = 40_000  # the first part comes whole, the second hangs
    with pytest.raises(DownloadError, match=r"part 2 of 3 .*stopped at 40000 of 100000"):
        fetch(source, target, EXPECTED, lambda d, t: None, timeout=0.5)
    del server.stall["/models/u2ab"]
    seen, progress = progress_log()
    fetch(source, target, EXPECTED, progress)
    assert target.read_bytes() == DATA
    assert ("GET", "/models/u2ab", "bytes=40000-") in server.requests
    assert seen[-1][0] == len(DATA)
    assert leftovers(tmp_path) == []
