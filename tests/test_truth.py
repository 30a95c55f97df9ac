"""Reading true mattes as datasets ship them, and refusing a truth of the wrong size."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from mattectl.errors import InputError
from mattectl.evaluation.truth import Reading, load_truth, read_truth

# A matte with every level, so a wrong reading (e.g. all opaque) cannot pass by chance.
MATTE = np.tile(np.arange(256, dtype=np.uint8), (4, 1))  # 256x4
EXPECTED = MATTE.astype(np.float32) / 255


def png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def colour(matte: np.ndarray) -> np.ndarray:
    return np.repeat(matte[:, :, None], 3, axis=2)


def test_a_grey_matte_is_the_matte() -> None:
    truth = read_truth(png(Image.fromarray(MATTE, "L")), name="t.png")
    assert truth.reading is Reading.GREY
    np.testing.assert_allclose(truth.alpha, EXPECTED, atol=1e-6)


def test_a_sixteen_bit_matte_keeps_its_levels() -> None:
    wide = (MATTE.astype(np.uint16) * 257).astype(np.uint16)
    truth = read_truth(png(Image.fromarray(wide)), name="t.png")
    assert truth.reading is Reading.GREY
    np.testing.assert_allclose(truth.alpha, EXPECTED, atol=1e-4)


def test_an_rgba_cutout_gives_its_alpha_channel() -> None:
    rgba = np.dstack([np.full((4, 256, 3), 200, np.uint8), MATTE])  # colour unrelated to alpha
    truth = read_truth(png(Image.fromarray(rgba, "RGBA")), name="t.png")
    assert truth.reading is Reading.ALPHA
    np.testing.assert_allclose(truth.alpha, EXPECTED, atol=1e-6)


def test_an_rgba_with_opaque_alpha_is_read_from_its_grey_channels() -> None:
    # As some public sets ship their truth: the old reading took the alpha, all opaque.
    rgba = np.dstack([colour(MATTE), np.full((4, 256), 255, np.uint8)])
    truth = read_truth(png(Image.fromarray(rgba, "RGBA")), name="t.png")
    assert truth.reading is Reading.GREY_OPAQUE_ALPHA
    np.testing.assert_allclose(truth.alpha, EXPECTED, atol=1e-6)


def test_a_grey_with_opaque_alpha_is_read_from_its_grey_channel() -> None:
    la = Image.merge("LA", (Image.fromarray(MATTE, "L"),
                            Image.fromarray(np.full((4, 256), 255, np.uint8), "L")))
    truth = read_truth(png(la), name="t.png")
    assert truth.reading is Reading.GREY_OPAQUE_ALPHA
    np.testing.assert_allclose(truth.alpha, EXPECTED, atol=1e-6)


def test_an_rgb_matte_is_read_from_its_grey_channels() -> None:
    truth = read_truth(png(Image.fromarray(colour(MATTE), "RGB")), name="t.png")
    assert truth.reading is Reading.GREY_CHANNELS
    np.testing.assert_allclose(truth.alpha, EXPECTED, atol=1e-6)


def test_a_truth_of_another_size_is_refused_not_resized() -> None:
    data = png(Image.fromarray(MATTE, "L"))
    assert load_truth(data, name="t.png", width=256, height=4).alpha.shape == (4, 256)
    with pytest.raises(InputError, match=r"t\.png: the truth is 256x4 but its photo is "
                                         r"512x8.*not resized"):
        load_truth(data, name="t.png", width=512, height=8)


def test_an_unreadable_truth_is_named() -> None:
    with pytest.raises(InputError, match=r"notes\.png: not a readable matte"):
        read_truth(b"shopping list", name="notes.png")
