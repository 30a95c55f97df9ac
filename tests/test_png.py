"""The PNG writer: every layout and depth reads back exactly, in more than one reader."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from mattectl.imageio.png import encode_png

LAYOUTS = [((33, 47), np.uint8), ((33, 47), np.uint16), ((33, 47, 2), np.uint8),
           ((33, 47, 3), np.uint8), ((33, 47, 3), np.uint16), ((33, 47, 4), np.uint8),
           ((33, 47, 4), np.uint16), ((700, 900, 4), np.uint16)]  # > 1 MB: several pieces


def opencv_order(arr: np.ndarray) -> np.ndarray:
    if arr.ndim == 3 and arr.shape[2] == 3:
        return cv2.cvtColor(arr, cv2.COLOR_BGR2RGB)
    if arr.ndim == 3 and arr.shape[2] == 4:
        return cv2.cvtColor(arr, cv2.COLOR_BGRA2RGBA)
    return arr


@pytest.mark.parametrize(("shape", "dtype"), LAYOUTS)
def test_round_trip_is_exact(shape: tuple[int, ...], dtype: type, tmp_path: Path) -> None:
    rng = np.random.default_rng(sum(shape))
    pixels = rng.integers(0, np.iinfo(dtype).max + 1, shape, dtype=dtype)
    pixels[: shape[0] // 2] //= 64  # some compressible content as well
    data = encode_png(pixels)
    if len(shape) == 3 and shape[2] == 2:  # OpenCV has no grey+alpha: check with Pillow
        np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(data))), pixels)
    else:
        back = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(opencv_order(back), pixels)
    Image.open(io.BytesIO(data)).load()  # Pillow checks every CRC and the zlib stream
    if shutil.which("pngcheck"):
        path = tmp_path / "x.png"
        path.write_bytes(data)
        assert subprocess.run(["pngcheck", "-q", str(path)], check=False).returncode == 0


def test_metadata_chunks_come_before_the_pixels() -> None:
    data = encode_png(np.zeros((4, 4, 4), np.uint8), icc_profile=b"p" * 200,
                      exif=b"Exif\0\0II*\0\x08\0\0\0\0\0\0\0", xmp=b"<x:xmpmeta/>")
    img = Image.open(io.BytesIO(data))
    img.load()
    assert img.info["icc_profile"] == b"p" * 200
    assert img.info["XML:com.adobe.xmp"] == "<x:xmpmeta/>"
    assert data.index(b"eXIf") < data.index(b"IDAT")
    assert data.index(b"iCCP") < data.index(b"IDAT")
    assert b"Exif\0\0" not in data  # eXIf holds the TIFF structure alone


def test_rejects_what_png_cannot_hold() -> None:
    with pytest.raises(ValueError, match="expected"):
        encode_png(np.zeros((4, 4, 5), np.uint8))
    with pytest.raises(ValueError, match="expected"):
        encode_png(np.zeros((4, 4), np.float32))
