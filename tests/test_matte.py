"""Reading mattes in the formats people keep them in."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from mattectl.errors import InputError
from mattectl.imageio.matte import decode_matte, encode_matte

RAMP = np.tile(np.arange(0, 256, 5, dtype=np.uint8), (4, 1))


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_grey_8_bit() -> None:
    alpha = decode_matte(png(Image.fromarray(RAMP, "L")), name="m.png")
    np.testing.assert_allclose(alpha, RAMP / 255, atol=1e-7)
    assert alpha.dtype == np.float32


def test_grey_16_bit() -> None:
    wide = (RAMP.astype(np.uint16) * 257).astype(np.uint16)
    image = Image.fromarray(wide)
    assert image.mode == "I;16"
    alpha = decode_matte(png(image), name="m.png")
    np.testing.assert_allclose(alpha, RAMP / 255, atol=1e-6)


def test_the_alpha_channel_of_a_cutout() -> None:
    rgba = np.zeros((*RAMP.shape, 4), np.uint8)
    rgba[..., 0] = 255 - RAMP  # colour that must not leak into the matte
    rgba[..., 3] = RAMP
    alpha = decode_matte(png(Image.fromarray(rgba, "RGBA")), name="cut.png")
    np.testing.assert_allclose(alpha, RAMP / 255, atol=1e-7)


def test_an_rgb_matte_is_read_as_grey() -> None:
    rgb = np.repeat(RAMP[:, :, None], 3, axis=2)
    alpha = decode_matte(png(Image.fromarray(rgb, "RGB")), name="m.png")
    np.testing.assert_allclose(alpha, RAMP / 255, atol=1e-7)


def test_round_trip() -> None:
    alpha = np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8)
    back = decode_matte(encode_matte(alpha), name="m.png")
    assert np.abs(back - alpha).max() <= 0.5 / 255 + 1e-7


def test_garbage_is_a_clear_error() -> None:
    with pytest.raises(InputError, match=r"notes\.txt: not a readable matte"):
        decode_matte(b"shopping list", name="notes.txt")
