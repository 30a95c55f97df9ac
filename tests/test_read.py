"""decode(): every input kind, upright, colour-managed for the model, the source kept for output."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
import tifffile
from PIL import Image

from mattectl.errors import InputError
from mattectl.imageio.colour import srgb_profile
from mattectl.imageio.read import decode, read_header

from . import samples

LIMIT = 50_000_000
T = Image.Transpose
# What turns the upright picture into the stored one, for each EXIF orientation: the inverse of
# what a viewer does to show it (orientation 6 is shown turned 90 degrees clockwise).
STORED = {2: T.FLIP_LEFT_RIGHT, 3: T.ROTATE_180, 4: T.FLIP_TOP_BOTTOM, 5: T.TRANSPOSE,
          6: T.ROTATE_90, 7: T.TRANSVERSE, 8: T.ROTATE_270}


def stored(original: np.ndarray, orientation: int) -> Image.Image:
    img = Image.fromarray(original)
    return img.transpose(STORED[orientation]) if orientation in STORED else img


@pytest.mark.parametrize("orientation", range(1, 9))
def test_each_exif_orientation_of_a_jpeg_is_applied(orientation: int) -> None:
    original = samples.pattern(48, 32)
    data = samples.encode(stored(original, orientation), "JPEG", quality=95,
                          exif=samples.exif_bytes(orientation))
    image = decode(data, name="turned.jpg", max_pixels=LIMIT)
    assert image.rgb.shape == original.shape
    np.testing.assert_allclose(samples.block_means(image.rgb), samples.block_means(original),
                               atol=12)
    np.testing.assert_allclose(samples.block_means(image.pixels),
                               samples.block_means(original), atol=12)


def test_orientation_of_a_png_exif_chunk_is_applied_exactly() -> None:
    original = samples.pattern(48, 32)
    data = samples.encode(stored(original, 6), "PNG", exif=samples.exif_bytes(6))
    image = decode(data, name="turned.png", max_pixels=LIMIT)
    np.testing.assert_array_equal(image.pixels, original)


def test_16bit_tiff_keeps_its_depth_profile_and_orientation() -> None:
    rng = np.random.default_rng(1)
    upright = rng.integers(0, 65536, (20, 30, 3), dtype=np.uint16)
    turned = np.rot90(upright, 1)  # stored turned left; orientation 6 turns it back right
    profile = samples.icc_profile("Test Adobe RGB")
    out = io.BytesIO()
    tifffile.imwrite(out, turned, photometric="rgb", compression="zlib",
                     extratags=[(274, "H", 1, 6, True), (34675, "B", len(profile), profile, True)])
    image = decode(out.getvalue(), name="scan.tif", max_pixels=LIMIT)
    assert image.bit_depth == 16
    np.testing.assert_array_equal(image.pixels, upright)
    assert image.icc_profile == profile
    assert image.rgb.dtype == np.uint8
    assert image.rgb.shape == (20, 30, 3)


def test_16bit_rgba_tiff_and_png_keep_pixels_and_alpha() -> None:
    rng = np.random.default_rng(2)
    rgba = rng.integers(0, 65536, (16, 24, 4), dtype=np.uint16)
    tiff = io.BytesIO()
    tifffile.imwrite(tiff, rgba, photometric="rgb", extrasamples=["unassalpha"])
    ok, png = cv2.imencode(".png", cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
    assert ok
    for name, data in (("a.tif", tiff.getvalue()), ("a.png", png.tobytes())):
        image = decode(data, name=name, max_pixels=LIMIT)
        np.testing.assert_array_equal(image.pixels, rgba[:, :, :3])
        np.testing.assert_allclose(image.alpha, rgba[:, :, 3] / 65535, atol=1e-6)


def test_wide_gamut_png_keeps_pixels_and_profile_and_the_model_sees_srgb() -> None:
    profile = samples.icc_profile("Test Adobe RGB")
    pixels = samples.pattern()
    image = decode(samples.encode(Image.fromarray(pixels), "PNG", icc_profile=profile),
                   name="adobe.png", max_pixels=LIMIT)
    np.testing.assert_array_equal(image.pixels, pixels)
    assert image.icc_profile == profile
    means = samples.block_means(image.rgb)
    # Adobe RGB's green (30, 200, 40) lies outside sRGB: in sRGB it is purer and less blue-ish.
    assert means[1][1] > 200
    assert means[1][0] < 30
    assert not np.array_equal(image.rgb, pixels)


def test_srgb_tagged_and_untagged_photos_reach_the_model_unchanged() -> None:
    pixels = samples.pattern()
    for profile in (srgb_profile(), None):
        data = samples.encode(Image.fromarray(pixels), "PNG", icc_profile=profile)
        image = decode(data, name="srgb.png", max_pixels=LIMIT)
        np.testing.assert_array_equal(image.rgb, pixels)
        assert image.icc_profile == profile


def test_grey_profile_is_converted_to_srgb_and_tagged_so() -> None:
    gray = np.tile(np.arange(0, 256, 16, dtype=np.uint8), (8, 1))
    data = samples.encode(Image.fromarray(gray, "L"), "PNG",
                          icc_profile=samples.icc_profile("Test Gray", space="GRAY", gamma=1.8))
    image = decode(data, name="gray.png", max_pixels=LIMIT)
    assert image.icc_profile == srgb_profile()
    assert image.pixels.shape == (8, 16, 3)
    # 128 in gamma 1.8 is 29% linear light, which sRGB encodes as about 146.
    assert gray[0, 8] == 128
    assert abs(int(image.pixels[0, 8, 0]) - 146) <= 3


def test_grayscale_8_and_16_bit_become_rgb_of_the_same_depth() -> None:
    gray8 = np.tile(np.arange(0, 256, 8, dtype=np.uint8), (4, 1))
    gray16 = gray8.astype(np.uint16) * 257 + 3
    ok, png16 = cv2.imencode(".png", gray16)
    assert ok
    image8 = decode(samples.encode(Image.fromarray(gray8, "L"), "PNG"), name="g.png",
                    max_pixels=LIMIT)
    image16 = decode(png16.tobytes(), name="g16.png", max_pixels=LIMIT)
    np.testing.assert_array_equal(image8.pixels, np.dstack([gray8] * 3))
    np.testing.assert_array_equal(image16.pixels, np.dstack([gray16] * 3))
    np.testing.assert_array_equal(image16.rgb[:, :, 0], gray8)


def test_cmyk_jpeg_and_tiff_without_profile_are_converted() -> None:
    cmyk = np.zeros((8, 12, 4), np.uint8)
    cmyk[:, :6] = (255, 0, 0, 0)  # cyan
    cmyk[:, 6:] = (0, 255, 255, 0)  # red
    img = Image.fromarray(cmyk, "CMYK")
    for fmt in ("JPEG", "TIFF"):
        image = decode(samples.encode(img, fmt, quality=95) if fmt == "JPEG"
                       else samples.encode(img, fmt), name=f"cmyk.{fmt.lower()}",
                       max_pixels=LIMIT)
        assert image.source_mode == "CMYK"
        assert image.icc_profile is None
        np.testing.assert_allclose(image.pixels[4, 2], (0, 255, 255), atol=8)
        np.testing.assert_allclose(image.pixels[4, 9], (255, 0, 0), atol=8)


def test_cmyk_with_a_profile_is_converted_through_it_and_tagged_srgb() -> None:
    cmyk = np.zeros((8, 12, 4), np.uint8)
    cmyk[:, :6] = (255, 0, 0, 0)  # cyan
    cmyk[:, 6:] = (0, 255, 255, 0)  # red
    cmyk[0] = (0, 0, 0, 255)  # black ink
    img = Image.fromarray(cmyk, "CMYK")
    profile = samples.cmyk_profile()
    for fmt, params in (("JPEG", {"quality": 95}), ("TIFF", {})):
        data = samples.encode(img, fmt, icc_profile=profile, **params)
        image = decode(data, name=f"print.{fmt.lower()}", max_pixels=LIMIT)
        assert image.icc_profile == srgb_profile()
        np.testing.assert_allclose(image.pixels[4, 2], (0, 255, 255), atol=10)
        np.testing.assert_allclose(image.pixels[4, 9], (255, 0, 0), atol=10)
        np.testing.assert_allclose(image.pixels[0, 5], (0, 0, 0), atol=10)
        np.testing.assert_array_equal(image.rgb, image.pixels)  # already sRGB


def test_palette_with_transparency_and_rgba_keep_their_alpha() -> None:
    rgba = np.zeros((10, 10, 4), np.uint8)
    rgba[:, :5] = (200, 20, 20, 255)
    rgba[:, 5:] = (0, 0, 0, 0)
    palette = Image.fromarray((rgba[:, :, 3] == 0).astype(np.uint8), "P")
    palette.putpalette([200, 20, 20, 0, 0, 0])
    palette.info["transparency"] = 1  # palette entry 1 is transparent
    for name, img in (("p.png", palette), ("rgba.png", Image.fromarray(rgba, "RGBA")),
                      ("p.gif", palette)):
        fmt = "GIF" if name.endswith("gif") else "PNG"
        data = samples.encode(img, fmt, transparency=1 if img.mode == "P" else None)
        image = decode(data, name=name, max_pixels=LIMIT)
        assert image.alpha is not None
        np.testing.assert_array_equal(image.alpha[:, :5], 1.0)
        np.testing.assert_array_equal(image.alpha[:, 5:], 0.0)
        np.testing.assert_array_equal(image.rgb[0, 7], (255, 255, 255))  # over white
        np.testing.assert_allclose(image.rgb[0, 2], (200, 20, 20), atol=2)


def test_gray_with_alpha() -> None:
    la = Image.merge("LA", (Image.new("L", (6, 4), 90), Image.new("L", (6, 4), 51)))
    image = decode(samples.encode(la, "PNG"), name="la.png", max_pixels=LIMIT)
    np.testing.assert_array_equal(image.pixels[0, 0], (90, 90, 90))
    np.testing.assert_allclose(image.alpha, 0.2, atol=1e-6)


def test_webp_and_bmp_inputs() -> None:
    pixels = samples.pattern()
    for fmt, params in (("WEBP", {"lossless": True}), ("BMP", {})):
        image = decode(samples.encode(Image.fromarray(pixels), fmt, **params),
                       name=f"x.{fmt.lower()}", max_pixels=LIMIT)
        np.testing.assert_array_equal(image.pixels, pixels)


def test_first_page_of_a_multipage_tiff() -> None:
    first, second = samples.pattern(), 255 - samples.pattern()
    out = io.BytesIO()
    Image.fromarray(first).save(out, "TIFF", save_all=True,
                                append_images=[Image.fromarray(second)])
    image = decode(out.getvalue(), name="pages.tif", max_pixels=LIMIT)
    np.testing.assert_array_equal(image.pixels, first)


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "PNG"])
def test_animated_images_fail_clearly(fmt: str) -> None:
    frames = [Image.fromarray(samples.pattern()), Image.fromarray(255 - samples.pattern())]
    out = io.BytesIO()
    frames[0].save(out, fmt, save_all=True, append_images=frames[1:], duration=100)
    with pytest.raises(InputError, match=r"anim\.x: animated .*2 frames"):
        decode(out.getvalue(), name="anim.x", max_pixels=LIMIT)


def test_decompression_bomb_is_rejected_from_its_header() -> None:
    with pytest.raises(InputError, match=r"bomb\.png: 100000x100000 .*max_pixels.*not decoded"):
        decode(samples.bomb_png(100_000, 100_000), name="bomb.png", max_pixels=200_000_000)


def _png16(rgb16: np.ndarray) -> bytes:
    return cv2.imencode(".png", rgb16[:, :, ::-1])[1].tobytes()


@pytest.mark.parametrize(("data", "wide", "transparent"), [
    (samples.encode(Image.fromarray(samples.pattern()), "JPEG"), False, False),
    (samples.encode(Image.fromarray(samples.pattern()).convert("RGBA"), "PNG"), False, True),
    (samples.encode(Image.fromarray(samples.pattern()).convert("P"), "PNG", transparency=0),
     False, True),
    (samples.encode(Image.fromarray(samples.pattern()).convert("CMYK"), "JPEG"), False, False),
    (_png16(samples.pattern().astype(np.uint16) * 257), True, False),
    (samples.encode(Image.fromarray(samples.pattern()[:, :, 0].astype(np.uint16) * 257), "PNG"),
     True, False),
])
def test_the_header_alone_says_size_depth_and_transparency(data: bytes, wide: bool,
                                                           transparent: bool) -> None:
    header = read_header(data, name="x", max_pixels=LIMIT)
    assert (header.width, header.height, header.pixels) == (48, 32, 48 * 32)
    assert (header.wide, header.transparent) == (wide, transparent)
    assert header.wide == (decode(data, name="x", max_pixels=LIMIT).bit_depth == 16)


def test_the_header_of_a_huge_photo_is_read_without_its_pixels() -> None:
    header = read_header(samples.huge_png(12_000, 8_400), name="huge.png", max_pixels=LIMIT * 4)
    assert (header.width, header.height, header.wide, header.transparent) == (
        12_000, 8_400, False, False)
    with pytest.raises(InputError, match=r"bomb\.png: 100000x100000 .*max_pixels"):
        read_header(samples.bomb_png(100_000, 100_000), name="bomb.png", max_pixels=LIMIT)


@pytest.mark.parametrize(("data", "why"), [
    (b"", "empty file"),
    (b"hello, not an image at all", "not an image"),
])
def test_unreadable_inputs_name_the_file_and_the_cause(data: bytes, why: str) -> None:
    with pytest.raises(InputError, match=rf"^bad\.jpg: {why}"):
        decode(data, name="bad.jpg", max_pixels=LIMIT)


def test_truncated_jpeg_fails_clearly() -> None:
    rng = np.random.default_rng(3)
    data = samples.encode(Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)),
                          "JPEG")
    with pytest.raises(InputError, match=r"^cut\.jpg: corrupt or truncated JPEG"):
        decode(data[:len(data) // 2], name="cut.jpg", max_pixels=LIMIT)


def test_heic_when_the_plugin_is_installed() -> None:
    pytest.importorskip("pillow_heif", reason="HEIC support is the optional 'heic' extra")
    pixels = samples.pattern(64, 48)
    profile = samples.icc_profile("Test Adobe RGB")
    data = samples.encode(Image.fromarray(pixels), "HEIF", quality=95, icc_profile=profile)
    image = decode(data, name="phone.heic", max_pixels=LIMIT)
    assert image.format == "HEIF"
    assert image.pixels.shape == pixels.shape
    np.testing.assert_allclose(samples.block_means(image.pixels), samples.block_means(pixels),
                               atol=12)
    assert image.icc_profile == profile


def test_lab_tiff_is_converted_to_srgb() -> None:
    lab = Image.new("LAB", (4, 4), (128, 128, 128))  # L=50%, neutral grey
    image = decode(samples.encode(lab, "TIFF"), name="lab.tif", max_pixels=LIMIT)
    assert image.icc_profile == srgb_profile()
    r, g, b = image.pixels[0, 0].astype(int)
    assert abs(r - g) <= 3
    assert abs(g - b) <= 3
    assert 100 < r < 140


def test_model_view_of_16bit_is_rounded_to_8bit() -> None:
    pixels = np.array([[[257 * 100, 257 * 100 + 128, 257 * 100 + 129]]], np.uint16)
    ok, png = cv2.imencode(".png", pixels[:, :, ::-1])
    assert ok
    image = decode(png.tobytes(), name="r.png", max_pixels=LIMIT)
    np.testing.assert_array_equal(image.rgb[0, 0], (100, 100, 101))


def test_heic_rotation_is_taken_from_the_container() -> None:
    pytest.importorskip("pillow_heif", reason="HEIC support is the optional 'heic' extra")
    original = samples.pattern(64, 48)
    # pillow-heif stores an EXIF orientation as the container's rotation (irot), as phones do.
    data = samples.encode(stored(original, 6), "HEIF", quality=95,
                          exif=samples.exif_bytes(6))
    image = decode(data, name="portrait.heic", max_pixels=LIMIT)
    assert image.pixels.shape == original.shape
    np.testing.assert_allclose(samples.block_means(image.pixels),
                               samples.block_means(original), atol=12)


def test_16bit_grey_with_alpha_png() -> None:
    from mattectl.imageio.png import encode_png  # round-trip tested against OpenCV and Pillow

    la = np.zeros((4, 5, 2), np.uint16)
    la[..., 0], la[..., 1] = 40000, 30000
    image = decode(encode_png(la), name="la16.png", max_pixels=LIMIT)
    assert image.bit_depth == 16
    np.testing.assert_array_equal(image.pixels[0, 0], (40000, 40000, 40000))
    np.testing.assert_allclose(image.alpha, 30000 / 65535, atol=1e-6)
