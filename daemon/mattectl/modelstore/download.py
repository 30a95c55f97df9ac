"""HTTP downloads from an ordered list of sources: redirects followed, Google Drive's confirmation
page answered, resumed where the last run stopped, checked, and never a partial file under the
final name.

Each source's bytes go to a hidden ``.<name>.<source key>.part`` beside the target (a source
split into parts: one such file per part, joined once all are whole), so a run resumes each
source where it stopped (``Range``) and never splices one server's bytes onto another's. A
server that cannot resume sends the whole file again. A connection that sends nothing for
``timeout`` seconds is given up. Only a complete file whose size and checksum are right (and that
``accept`` takes) is renamed into place (one ``rename``: a reader sees the old file or the new
one); a wrong one is deleted, a short one is kept for the next run. When every source fails,
the error lists each source and why.
"""

from __future__ import annotations

import hashlib
import http.cookiejar
import logging
import os
import re
import shutil
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from http.client import HTTPException, HTTPResponse
from pathlib import Path

from mattectl import __version__
from mattectl.backends.catalog import Source, WeightFile
from mattectl.errors import ChecksumError, DownloadError, MattectlError
from mattectl.fsutil import fsync_dir
from mattectl.modelstore import gdrive
from mattectl.modelstore.digest import Digest, checksum_problem, digest_file, size_problem

logger = logging.getLogger(__name__)

CHUNK = 1 << 16
TIMEOUT_S = 30.0  # per connection attempt and per read: a dead network fails, it does not hang
MAX_PAGE = 1 << 20  # a confirmation page is a few kB; more is not read
Progress = Callable[[int, int | None], None]  # (bytes so far, total or None)
Accept = Callable[[Path, Digest], None]


def source_key(source: Source) -> str:
    return hashlib.sha256("\n".join(source.urls).encode()).hexdigest()[:10]


def part_path(target: Path, source: Source, index: int | None = None) -> Path:
    """Where ``source``'s bytes for ``target`` collect (``index``: one part of a split file)."""
    suffix = "" if index is None else f"{index}"
    return target.with_name(f".{target.name}.{source_key(source)}.part{suffix}")


def _no_accept(path: Path, digest: Digest) -> None:
    return None


class _Session:
    """One source's connections: its cookies (Drive's confirmation sets one) and timeout."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))

    def open(self, url: str, offset: int) -> HTTPResponse:
        request = urllib.request.Request(url, headers={"User-Agent": f"mattectl/{__version__}"})
        if offset:
            request.add_header("Range", f"bytes={offset}-")
        try:
            return self.opener.open(request, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            if exc.code == 416 and offset:  # nothing left to send: the part is already whole
                return exc  # type: ignore[return-value]
            raise DownloadError(f"the server answered {exc.code} {exc.reason}") from None
        except TimeoutError:
            raise DownloadError(f"no answer within {self.timeout:g} s") from None
        except (urllib.error.URLError, OSError, HTTPException) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, TimeoutError):
                raise DownloadError(f"no answer within {self.timeout:g} s") from None
            raise DownloadError(f"cannot connect ({reason})") from None


def _resumes_at(response: HTTPResponse, offset: int) -> bool:
    """Whether the server sends the rest from ``offset`` (206) rather than the whole file."""
    match = re.match(r"bytes (\d+)-", response.headers.get("Content-Range", ""))
    return getattr(response, "status", 200) == 206 and match is not None \
        and int(match.group(1)) == offset


def _confirmed(session: _Session, response: HTTPResponse, url: str) -> str:
    """The address a web page (Drive's confirmation) leads to; raises when it leads nowhere."""
    page = response.read(MAX_PAGE).decode("utf-8", "replace")
    target = gdrive.confirmation_url(page, response.geturl(), session.cookies)
    if target is None:
        raise DownloadError(f"the server sent a web page, not the file: "
                            f"\"{gdrive.page_title(page)}\" (a quota, sign-in or removed-file "
                            "page?)")
    logger.info("%s answered a confirmation page; following it to %s", url, target)
    return target


def _copy_body(response: HTTPResponse, part: Path, offset: int, progress: Progress,
               timeout: float) -> None:
    """Write the response after the first ``offset`` bytes of ``part``; raises DownloadError
    (the bytes so far kept) when the transfer breaks or stops short."""
    length = response.headers.get("Content-Length")
    total = offset + int(length) if length is not None else None
    received = offset
    broke = None
    with part.open("ab" if offset else "wb") as out:
        progress(received, total)
        try:
            # read1: what has arrived, so that a stall loses none of the bytes before it.
            while chunk := response.read1(CHUNK):
                out.write(chunk)
                received += len(chunk)
                progress(received, total)
        except TimeoutError:
            broke = f"no data for {timeout:g} s"
        except (OSError, ValueError, HTTPException) as exc:  # a reset, a closed connection
            broke = str(exc) or type(exc).__name__
        out.flush()
        os.fsync(out.fileno())
    if broke is not None or (total is not None and received < total):
        of = f" of {total}" if total is not None else ""
        why = f" ({broke})" if broke else ""
        raise DownloadError(f"the download stopped at {received}{of} bytes{why}; run the same "
                            "command again to resume it")


def _receive(session: _Session, url: str, part: Path, progress: Progress) -> None:
    """Append the rest of ``url`` to ``part``, answering one confirmation page on the way."""
    for _ in range(2):  # the address itself, then the one its confirmation page gives
        offset = part.stat().st_size if part.exists() else 0
        with session.open(url, offset) as response:
            if getattr(response, "code", 200) == 416:
                return
            if "text/html" in response.headers.get("Content-Type", ""):
                url = _confirmed(session, response, url)
                continue
            if offset and not _resumes_at(response, offset):
                logger.info("%s cannot resume; starting over", url)
                offset = 0
            _copy_body(response, part, offset, progress, session.timeout)
            return
    raise DownloadError("the confirmation page led to another page, not the file")


def _join(parts: Sequence[Path], part: Path) -> None:
    with part.open("wb") as out:
        for piece in parts:
            with piece.open("rb") as fh:
                shutil.copyfileobj(fh, out, CHUNK)
        out.flush()
        os.fsync(out.fileno())


def _receive_source(source: Source, target: Path, progress: Progress, timeout: float) -> Path:
    """Every byte of ``source`` in its part file (whole, not yet checked); returns that file."""
    session = _Session(timeout)
    part = part_path(target, source)
    if len(source.urls) == 1:
        _receive(session, source.urls[0], part, progress)
        return part
    pieces = [part_path(target, source, i) for i in range(len(source.urls))]
    done = 0
    for i, (url, piece) in enumerate(zip(source.urls, pieces, strict=True)):
        def piece_progress(received: int, total: int | None, before: int = done) -> None:
            progress(before + received, None)

        try:
            _receive(session, url, piece, piece_progress)
        except DownloadError as exc:
            raise DownloadError(f"part {i + 1} of {len(pieces)} ({url}): {exc}") from None
        done += piece.stat().st_size
    _join(pieces, part)
    for piece in pieces:
        piece.unlink()
    return part


def check_file(path: Path, expected: WeightFile, *, name: str | None = None) -> Digest:
    """Size and published checksum of a complete file; raises ChecksumError when wrong."""
    digest = digest_file(path)
    name = name or expected.name
    problem = size_problem(name, digest.size, expected.size) or \
        checksum_problem(name, digest, expected)
    if problem:
        raise ChecksumError(problem)
    return digest


def _discard(target: Path, source: Source) -> None:
    for path in target.parent.glob(f"{part_path(target, source).name}*"):
        path.unlink(missing_ok=True)


def fetch(source: Source, target: Path, expected: WeightFile, progress: Progress,
          accept: Accept = _no_accept, *, timeout: float = TIMEOUT_S) -> Digest:
    """Fetch ``source`` into ``target`` (resuming an earlier run) and check it; ``accept`` may
    look at the complete file before it is renamed into place and raise to refuse it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    part = _receive_source(source, target, progress, timeout)
    size = part.stat().st_size
    if expected.size is not None and size < expected.size:
        raise DownloadError(f"the download stopped at {size} of {expected.size} bytes; run the "
                            "same command again to resume it")
    try:
        digest = check_file(part, expected)
        accept(part, digest)
    except ChecksumError as exc:
        _discard(target, source)
        raise ChecksumError(f"{exc}; the download was deleted") from None
    except Exception:
        _discard(target, source)
        raise
    os.replace(part, target)
    fsync_dir(target.parent)
    return digest


def download(url: str, target: Path, expected: WeightFile, progress: Progress,
             accept: Accept = _no_accept, *, timeout: float = TIMEOUT_S) -> Digest:
    """:func:`fetch` from one address."""
    return fetch(Source(url, (url,)), target, expected, progress, accept, timeout=timeout)


def fetch_first(sources: Sequence[Source], target: Path, expected: WeightFile,
                progress: Progress, accept: Accept = _no_accept, *,
                on_source: Callable[[Source], None] = lambda source: None,
                timeout: float = TIMEOUT_S) -> tuple[Source, Digest]:
    """:func:`fetch` from each source in turn until one delivers a file ``accept`` takes;
    raises DownloadError naming every source and why it failed."""
    failures = []
    for source in sources:
        on_source(source)
        try:
            digest = fetch(source, target, expected, progress, accept, timeout=timeout)
        except MattectlError as exc:  # a download, checksum or load failure: the next source
            logger.info("%s (%s) failed: %s", source.label, source.urls[0], exc)
            failures.append((source, str(exc)))
            continue
        for other in sources:  # what other sources left for resuming is no longer needed
            _discard(target, other)
        return source, digest
    if not failures:
        raise DownloadError(f"no download address is known for {expected.name}")
    lines = [f"  {i}. {source.label} ({source.urls[0]}{' ...' if len(source.urls) > 1 else ''})"
             f": {why}" for i, (source, why) in enumerate(failures, start=1)]
    raise DownloadError(f"no source could deliver {expected.name} ({len(failures)} tried):\n"
                        + "\n".join(lines))
