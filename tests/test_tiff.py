"""The TIFF writer: layouts, depths, compression, read back by tifffile, Pillow and libtiff."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile
from PIL import Image

from mattectl.imageio.tiff import encode_tiff

from . import samples

LAYOUTS = [((30, 41), np.uint8), ((30, 41), np.uint16), ((30, 41, 2), np.uint8),
           ((30, 41, 3), np.uint8), ((30, 41, 3), np.uint16), ((30, 41, 4), np.uint8),
           ((30, 41, 4), np.uint16), ((600, 500, 4), np.uint16)]  # several strips


@pytest.mark.parametrize("compress", [True, False])
@pytest.mark.parametrize(("shape", "dtype"), LAYOUTS)
def test_round_trip_is_exact(shape: tuple[int, ...], dtype: type, compress: bool,
                             tmp_path: Path) -> None:
    rng = np.random.default_rng(sum(shape))
    pixels = rng.integers(0, np.iinfo(dtype).max + 1, shape, dtype=dtype)
    data = encode_tiff(pixels, compress=compress)
    with tifffile.TiffFile(io.BytesIO(data)) as tif:
        page = tif.pages[0]
        np.testing.assert_array_equal(page.asarray(), pixels)
        assert page.compression == (8 if compress else 1)
        if len(shape) == 3 and shape[2] in (2, 4):
            assert page.extrasamples == (2,)  # unassociated alpha
    if dtype == np.uint16 and len(shape) == 3 and shape[2] in (3, 4):  # libtiff via OpenCV
        code = cv2.COLOR_BGRA2RGBA if shape[2] == 4 else cv2.COLOR_BGR2RGB
        back = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        np.testing.assert_array_equal(cv2.cvtColor(back, code), pixels)
    if shutil.which("tiffinfo"):
        path = tmp_path / "x.tif"
        path.write_bytes(data)
        result = subprocess.run(["tiffinfo", "-D", str(path)], capture_output=True, text=True,
                                check=False)
        assert result.returncode == 0
        assert "Error" not in result.stderr


def test_8bit_rgba_reads_in_pillow_with_its_metadata() -> None:
    pixels = np.dstack([samples.pattern(), np.full((32, 48), 200, np.uint8)])
    profile = samples.icc_profile("Test Adobe RGB")
    data = encode_tiff(pixels, icc_profile=profile, exif=samples.exif_bytes(1),
                       xmp=samples.xmp(), iptc=samples.iptc())
    img = Image.open(io.BytesIO(data))
    assert img.mode == "RGBA"
    np.testing.assert_array_equal(np.asarray(img), pixels)
    assert img.info["icc_profile"] == profile
    exif = img.getexif()
    assert exif[0x013B] == "Ada Photographer"
    assert exif.get_ifd(0x8769)[0x9003] == "2024:05:06 07:08:09"
    assert img.tag_v2[700] == samples.xmp()


def test_rejects_what_it_cannot_write() -> None:
    with pytest.raises(ValueError, match="cannot write"):
        encode_tiff(np.zeros((4, 4), np.float32))
