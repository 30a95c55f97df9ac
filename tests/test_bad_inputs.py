"""A corpus of hostile and odd files, generated here, through the real daemon: each ends in a
clear state with a readable reason, good photos beside them succeed, and the daemon never stops."""

from __future__ import annotations

import io
import os
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mattectl.store.status import JobStatus

from .daemon_process import DaemonProcess, write_config
from .support import AS_ROOT, wait_for

# `mattectl run` in a subprocess: not in the fast lane (scripts/dev.sh test --fast).
pytestmark = pytest.mark.slow


def png_header_claiming(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def encoded(img: Image.Image, fmt: str, **params) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **params)
    return buf.getvalue()


def corpus(photo: Path) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """``(files that must fail, files that must succeed)``, name -> content."""
    rgb = Image.open(photo).convert("RGB")
    jpeg = photo.read_bytes()
    png = encoded(rgb, "PNG")
    frames = [rgb.resize((64, 48)), rgb.resize((64, 48)).rotate(90)]
    gif = io.BytesIO()
    frames[0].save(gif, "GIF", save_all=True, append_images=frames[1:], duration=100)
    wide = (np.asarray(rgb.convert("L"), dtype=np.uint16) * 257)
    must_fail = {
        "truncated.jpg": jpeg[: len(jpeg) // 3],
        "truncated.png": png[: len(png) // 3],
        "zero.jpg": b"",
        "text.jpg": b"Call the client back about the retouching.\n",
        "one-pixel.png": encoded(Image.new("RGB", (1, 1), "red"), "PNG"),
        "bomb.png": png_header_claiming(50_000, 50_000),
        "animated.gif": gif.getvalue(),
    }
    must_succeed = {
        "cmyk.jpg": encoded(rgb.convert("CMYK"), "JPEG"),
        "sixteen-bit.png": encoded(Image.fromarray(wide), "PNG"),
        "name with spaces.jpg": jpeg,
        "ünïcödé – ✓.jpg": encoded(rgb.transpose(Image.Transpose.FLIP_LEFT_RIGHT), "JPEG"),
        "new\nline.jpg": encoded(rgb.transpose(Image.Transpose.FLIP_TOP_BOTTOM), "JPEG"),
    }
    return must_fail, must_succeed


def test_bad_input_corpus(tmp_path: Path, small_photo: Path) -> None:
    write_config(tmp_path, watch='extensions = ["jpg", "png", "gif"]')
    # As root, permissions do not stop reads; dropping the DAC capabilities makes them count.
    prefix = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"] \
        if AS_ROOT and shutil.which("setpriv") else []
    proc = DaemonProcess(tmp_path, prefix=prefix)
    proc.start()
    inbox = tmp_path / "in"
    must_fail, must_succeed = corpus(small_photo)
    try:
        for name, data in {**must_fail, **must_succeed}.items():
            (inbox / name).write_bytes(data)
        unreadable = inbox / "unreadable.jpg"
        unreadable.write_bytes(small_photo.read_bytes()[::-1])
        unreadable.chmod(0)
        (inbox / "loop-a.jpg").symlink_to(inbox / "loop-b.jpg")
        (inbox / "loop-b.jpg").symlink_to(inbox / "loop-a.jpg")
        secret = tmp_path / "outside.jpg"
        secret.write_bytes(small_photo.read_bytes() + b"outside")
        (inbox / "escape.jpg").symlink_to(secret)
        expected = len(must_fail) + len(must_succeed) + 1
        jobs = wait_for(lambda: (js := proc.jobs()) and len(js) == expected
                        and all(j.status in (JobStatus.DONE, JobStatus.FAILED) for j in js)
                        and js, timeout=240, what="every file to end")
        by_name = {j.rel_path: j for j in jobs}
        reasons = {
            "truncated.jpg": "truncated", "truncated.png": "truncated",
            "zero.jpg": "empty file (0 bytes)", "text.jpg": "not an image",
            "one-pixel.png": "too small to matte", "bomb.png": "over the limit",
            "animated.gif": "animated GIF",
            "unreadable.jpg": "permission denied" if (prefix or not AS_ROOT) else "",
        }
        for name, reason in reasons.items():
            job = by_name[name]
            if name == "unreadable.jpg" and not reason:
                continue  # root without setpriv reads it anyway
            assert job.status == JobStatus.FAILED, (name, job.error)
            assert reason in job.error and name in job.error, (name, job.error)
        for name in must_succeed:
            job = by_name[name]
            assert job.status == JobStatus.DONE, (name, job.error)
            with Image.open(job.output_path) as out:
                assert out.mode == "RGBA"
        assert not {"loop-a.jpg", "loop-b.jpg", "escape.jpg"} & set(by_name)
        log = proc.log_text()
        assert "loop-a.jpg: a symbolic link to nothing, or a loop" in log
        assert "escape.jpg: a symbolic link that points outside" in log
        for name in (*must_fail, *must_succeed):  # nothing deleted or rewritten
            assert (inbox / name).read_bytes() == {**must_fail, **must_succeed}[name]
        assert proc.cli("status").returncode == 0  # still running, still healthy
    finally:
        os.chmod(inbox / "unreadable.jpg", 0o644)
        assert proc.stop() == 0
