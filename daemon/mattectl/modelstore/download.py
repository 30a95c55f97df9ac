"""HTTP downloads that resume, never show a partial file under the final name, and are checked.

The bytes go to a hidden ``.<name>.part`` beside the target. A second run asks the server for
the rest (``Range``) and starts over when the server cannot resume. Only a complete file whose
size and published checksum are right is renamed into place (one ``rename``, so a reader sees the
old file or the new one); a wrong one is deleted, a short one is kept for the next run.
"""

from __future__ import annotations

import logging
import os
import re
import urllib.error
import urllib.request
from collections.abc import Callable
from http.client import HTTPException
from pathlib import Path
from typing import IO

from mattectl import __version__
from mattectl.backends.catalog import WeightFile
from mattectl.errors import ChecksumError, DownloadError
from mattectl.fsutil import fsync_dir
from mattectl.modelstore.digest import Digest, checksum_problem, digest_file, size_problem

logger = logging.getLogger(__name__)

CHUNK = 1 << 16
TIMEOUT_S = 30.0  # per connection attempt and per read: a dead network fails, it does not hang
Progress = Callable[[int, int | None], None]  # (bytes so far, total or None)


def part_path(target: Path) -> Path:
    return target.with_name(f".{target.name}.part")


def _open(url: str, offset: int) -> IO[bytes]:
    request = urllib.request.Request(url, headers={"User-Agent": f"mattectl/{__version__}"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        return urllib.request.urlopen(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # nothing left to send: the part is already whole
            return exc
        raise DownloadError(f"{url}: the server answered {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DownloadError(f"{url}: cannot connect ({reason})") from None


def _resumes_at(response: IO[bytes], offset: int) -> bool:
    """Whether the server sends the rest from ``offset`` (206) rather than the whole file."""
    match = re.match(r"bytes (\d+)-", response.headers.get("Content-Range", ""))
    return getattr(response, "status", 200) == 206 and match is not None \
        and int(match.group(1)) == offset


def _receive(url: str, part: Path, progress: Progress) -> None:
    """Append the rest of ``url`` to ``part``; raises DownloadError when it stops early."""
    offset = part.stat().st_size if part.exists() else 0
    with _open(url, offset) as response:
        if getattr(response, "code", 200) == 416:
            return
        if "text/html" in response.headers.get("Content-Type", ""):
            raise DownloadError(f"{url}: the server sent a web page, not the file (a login, "
                                "quota or confirmation page?)")
        if offset and not _resumes_at(response, offset):
            logger.info("%s cannot resume; starting over", url)
            offset = 0
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length is not None else None
        received = offset
        with part.open("ab" if offset else "wb") as out:
            progress(received, total)
            try:
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    received += len(chunk)
                    progress(received, total)
            except (OSError, ValueError, HTTPException) as exc:  # a reset, a timeout
                logger.info("%s: the transfer broke: %s", url, exc)
            out.flush()
            os.fsync(out.fileno())
    if total is not None and received < total:
        raise DownloadError(f"{url}: the download stopped at {received} of {total} bytes; run "
                            "the same command again to resume it")


def check_file(path: Path, expected: WeightFile, *, name: str | None = None) -> Digest:
    """Size and published checksum of a complete file; raises ChecksumError when wrong."""
    digest = digest_file(path)
    name = name or expected.name
    problem = size_problem(name, digest.size, expected.size) or \
        checksum_problem(name, digest, expected)
    if problem:
        raise ChecksumError(problem)
    return digest


def download(url: str, target: Path, expected: WeightFile, progress: Progress,
             accept: Callable[[Path, Digest], None] = lambda path, digest: None) -> Digest:
    """Fetch ``url`` into ``target`` (resuming an earlier ``.part``) and check it; ``accept``
    may look at the complete file before it is renamed into place and raise to refuse it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    part = part_path(target)
    _receive(url, part, progress)
    size = part.stat().st_size
    if expected.size is not None and size < expected.size:
        raise DownloadError(f"{url}: the download stopped at {size} of {expected.size} bytes; "
                            "run the same command again to resume it")
    try:
        digest = check_file(part, expected)
        accept(part, digest)
    except ChecksumError as exc:
        part.unlink(missing_ok=True)
        raise ChecksumError(f"{exc}; the download from {url} was deleted") from None
    except Exception:
        part.unlink(missing_ok=True)
        raise
    os.replace(part, target)
    fsync_dir(target.parent)
    return digest
