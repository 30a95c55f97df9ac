"""Whether a file's bytes are a whole image: its format's own end is there.

Used when the writer says it is done (inotify's close-after-write, or a rename into the drop
folder) so that such a photo is taken at once instead of after the quiet period. Only formats
whose end can be proven from a few bytes qualify: a JPEG whose segments lead to its scan and
which ends with the end-of-image marker, a PNG ending with its IEND chunk, a WebP as long as its
RIFF header says. Anything else (TIFF, HEIC, BMP, a JPEG with bytes after its end) is "not
proven" and waits out the quiet period as before. Reads the first and last bytes and, for a
JPEG, one header per segment before the scan: no decoding.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"
_JPEG_SOS = 0xDA
_JPEG_MAX_SEGMENTS = 256  # before the scan; real files have a handful


def whole_image(path: Path) -> bool:
    """True only when the file at ``path`` provably holds a complete JPEG, PNG or WebP."""
    try:
        with path.open("rb", buffering=0) as fh:
            size = os.fstat(fh.fileno()).st_size
            head = fh.read(16)
            if size < 32 or len(head) < 16:
                return False
            fh.seek(size - 12)
            tail = fh.read(12)
            if head.startswith(b"\xff\xd8\xff"):
                return tail.endswith(b"\xff\xd9") and _jpeg_reaches_scan(fh, size)
            if head.startswith(_PNG_SIGNATURE):
                return tail == _PNG_END
            if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
                return int.from_bytes(head[4:8], "little") + 8 == size
    except OSError:
        return False
    return False


def _jpeg_reaches_scan(fh: BinaryIO, size: int) -> bool:
    """Walk the marker segments from the start of image to the start of scan: each one must lie
    inside the file. (An end-of-image marker alone could be an embedded thumbnail's, at the end
    of a file cut short after its metadata.)"""
    pos = 2
    for _ in range(_JPEG_MAX_SEGMENTS):
        fh.seek(pos)
        header = fh.read(4)
        if len(header) < 4 or header[0] != 0xFF:
            return False
        marker = header[1]
        if marker == 0xFF:  # fill byte before a marker
            pos += 1
            continue
        length = int.from_bytes(header[2:4], "big")
        if length < 2 or pos + 2 + length > size:
            return False
        if marker == _JPEG_SOS:
            return True
        pos += 2 + length
    return False
