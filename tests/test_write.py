"""render()/encode(): each output format's pixels, bit depth, ICC profile and metadata, checked
by reading the files back with other readers (Pillow, OpenCV, tifffile)."""

from __future__ import annotations

import io
import struct
from dataclasses import replace

import cv2
import numpy as np
import pytest
import tifffile
from PIL import Image, IptcImagePlugin

from mattectl.imageio.compose import quantise, to_uint8
from mattectl.imageio.metadata import read_metadata, rights
from mattectl.imageio.options import OutputFormat, OutputOptions
from mattectl.imageio.read import DecodedImage, decode
from mattectl.imageio.write import render, with_iptc

from . import samples

LIMIT = 50_000_000
PLAIN = OutputOptions(clean_edges=False)
PROFILE = samples.icc_profile("Test Adobe RGB")


def alpha_for(height: int, width: int) -> np.ndarray:
    """Opaque left third, a ramp in the middle, transparent right third."""
    ramp = np.clip((np.arange(width) - width / 3) / (width / 3), 0, 1)
    return np.tile(1 - ramp, (height, 1)).astype(np.float32)


@pytest.fixture
def jpeg_source() -> DecodedImage:
    """A camera-like JPEG: turned (EXIF 6), Adobe RGB profile, EXIF, XMP and IPTC."""
    upright = samples.pattern(60, 40)
    stored = Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90)
    data = samples.encode(stored, "JPEG", quality=97, subsampling=0, icc_profile=PROFILE,
                          exif=samples.exif_bytes(6, pixel_size=(40, 60)), xmp=samples.xmp(),
                          dpi=(300, 300))
    data = with_iptc(data, samples.iptc())
    return decode(data, name="camera.jpg", max_pixels=LIMIT)


@pytest.fixture
def tiff16_source() -> DecodedImage:
    """A 16-bit TIFF with profile, creator and copyright tags and IPTC, but no XMP."""
    rng = np.random.default_rng(5)
    pixels = rng.integers(0, 65536, (40, 60, 3), dtype=np.uint16)
    info = samples.iptc("Ivy Iptc", "(c) IPTC notice")
    out = io.BytesIO()
    tifffile.imwrite(out, pixels, photometric="rgb", extratags=[
        (34675, "B", len(PROFILE), PROFILE, True), (315, "s", 0, "Tiff Artist", True),
        (33432, "s", 0, "(c) Tiff", True), (33723, "B", len(info), info, True)])
    return decode(out.getvalue(), name="scan.tif", max_pixels=LIMIT)


def png_chunks(data: bytes) -> list[bytes]:
    kinds, pos = [], 8
    while pos < len(data):
        size = struct.unpack(">I", data[pos:pos + 4])[0]
        kinds.append(data[pos + 4:pos + 8])
        pos += 12 + size
    return kinds


def assert_exif_carried(img: Image.Image) -> None:
    exif = img.getexif()
    assert exif.get(0x0112) == 1  # the pixels are upright now
    assert exif.get(0x013B) == "Ada Photographer"
    assert exif.get(0x8298) == "(c) 2024 Studio Test"
    assert exif.get_ifd(0x8769).get(0x9003) == "2024:05:06 07:08:09"


def test_png_keeps_pixels_profile_exif_and_xmp(jpeg_source: DecodedImage) -> None:
    alpha = alpha_for(jpeg_source.height, jpeg_source.width)
    out = render(jpeg_source, alpha, PLAIN)
    assert out.extension == "png"
    img = Image.open(io.BytesIO(out.data))
    rgba = np.asarray(img)
    assert img.mode == "RGBA"
    assert img.size == (60, 40)  # upright
    np.testing.assert_array_equal(rgba[:, :, 3], to_uint8(alpha))
    np.testing.assert_array_equal(rgba[:, :, :3], jpeg_source.pixels)
    assert img.info["icc_profile"] == PROFILE
    assert_exif_carried(img)
    xmp = img.info["XML:com.adobe.xmp"]
    assert 'tiff:Orientation="1"' in xmp
    assert "(c) XMP rights" in xmp
    kinds = png_chunks(out.data)
    assert kinds[:5] == [b"IHDR", b"iCCP", b"pHYs", b"eXIf", b"iTXt"]
    assert kinds[-1] == b"IEND"
    assert b"sRGB" not in kinds  # iCCP and sRGB must not both be present


def test_png_from_16bit_source_keeps_16_bits(tiff16_source: DecodedImage) -> None:
    alpha = alpha_for(40, 60)
    out = render(tiff16_source, alpha, PLAIN)
    arr = cv2.imdecode(np.frombuffer(out.data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert arr.dtype == np.uint16
    rgba = cv2.cvtColor(arr, cv2.COLOR_BGRA2RGBA)
    np.testing.assert_array_equal(rgba[:, :, :3], tiff16_source.pixels)
    np.testing.assert_array_equal(rgba[:, :, 3], quantise(alpha, np.dtype(np.uint16)))
    img = Image.open(io.BytesIO(out.data))
    assert img.info["icc_profile"] == PROFILE
    # No XMP in the source and PNG has no IPTC block: creator and copyright move to XMP.
    owner = rights(read_metadata(img))
    assert owner.creator == ("Ivy Iptc",)
    assert owner.copyright == "(c) IPTC notice"
    eight = render(tiff16_source, alpha, replace(PLAIN, keep_16bit=False))
    assert cv2.imdecode(np.frombuffer(eight.data, np.uint8), cv2.IMREAD_UNCHANGED).dtype \
        == np.uint8


def test_tiff_keeps_16_bits_alpha_profile_and_iptc(tiff16_source: DecodedImage) -> None:
    alpha = alpha_for(40, 60)
    out = render(tiff16_source, alpha, replace(PLAIN, format=OutputFormat.TIFF))
    assert out.extension == "tif"
    with tifffile.TiffFile(io.BytesIO(out.data)) as tif:
        page = tif.pages[0]
        rgba = page.asarray()
        tags = {tag.code: tag.value for tag in page.tags}
    assert rgba.dtype == np.uint16
    assert rgba.shape == (40, 60, 4)
    np.testing.assert_array_equal(rgba[:, :, :3], tiff16_source.pixels)
    np.testing.assert_array_equal(rgba[:, :, 3], quantise(alpha, np.dtype(np.uint16)))
    assert tags[338] == (2,) or tags[338] == 2  # unassociated alpha
    assert bytes(tags[34675]) == PROFILE
    owner = rights(read_metadata(Image.open(io.BytesIO(out.data))))
    assert owner.creator == ("Ivy Iptc",)
    assert owner.copyright == "(c) IPTC notice"


def test_tiff_from_8bit_jpeg_keeps_exif_subifd_and_xmp(jpeg_source: DecodedImage) -> None:
    out = render(jpeg_source, alpha_for(40, 60), replace(PLAIN, format=OutputFormat.TIFF))
    img = Image.open(io.BytesIO(out.data))
    assert img.mode == "RGBA"
    assert_exif_carried(img)
    assert img.info["icc_profile"] == PROFILE
    meta = read_metadata(img)
    assert b'tiff:Orientation="1"' in meta.xmp
    assert rights(meta).copyright == "(c) 2024 Studio Test"  # IPTC first, as in the source
    assert rights(meta).creator == ("Ada Photographer",)
    # OpenCV (libtiff) reads the same file.
    arr = cv2.imdecode(np.frombuffer(out.data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert arr.shape == (40, 60, 4)


def test_webp_is_lossless_where_visible(jpeg_source: DecodedImage) -> None:
    alpha = alpha_for(40, 60)
    out = render(jpeg_source, alpha, replace(PLAIN, format=OutputFormat.WEBP))
    img = Image.open(io.BytesIO(out.data))
    rgba = np.asarray(img)
    visible = to_uint8(alpha) > 0
    np.testing.assert_array_equal(rgba[:, :, 3], to_uint8(alpha))
    np.testing.assert_array_equal(rgba[visible][:, :3], jpeg_source.pixels[visible])
    assert img.info["icc_profile"] == PROFILE
    assert_exif_carried(img)
    assert b"(c) XMP rights" in img.info["xmp"]


def test_jpeg_is_flattened_onto_the_background(jpeg_source: DecodedImage) -> None:
    alpha = alpha_for(40, 60)
    options = replace(PLAIN, format=OutputFormat.JPEG, background=(10, 120, 250),
                      jpeg_quality=98)
    out = render(jpeg_source, alpha, options)
    assert out.extension == "jpg"
    img = Image.open(io.BytesIO(out.data))
    rgb = np.asarray(img).astype(int)
    assert img.mode == "RGB"
    np.testing.assert_allclose(rgb[5:35, 48:58].mean(axis=(0, 1)), (10, 120, 250), atol=3)
    np.testing.assert_allclose(rgb[5:15, 3:15].mean(axis=(0, 1)),
                               jpeg_source.pixels[5:15, 3:15].mean(axis=(0, 1)), atol=3)
    middle = 0.5 * jpeg_source.pixels[25, 30] + 0.5 * np.array([10, 120, 250])
    np.testing.assert_allclose(rgb[25, 30], middle, atol=12)
    assert img.info["icc_profile"] == PROFILE
    assert_exif_carried(img)
    iptc = IptcImagePlugin.getiptcinfo(img)
    assert iptc[(2, 80)] == b"Ada Photographer"
    assert iptc[(2, 116)] == b"(c) 2024 Studio Test"


def test_matte_is_the_alpha_alone(jpeg_source: DecodedImage) -> None:
    alpha = alpha_for(40, 60)
    out = render(jpeg_source, alpha, replace(PLAIN, format=OutputFormat.MATTE))
    img = Image.open(io.BytesIO(out.data))
    assert img.mode == "L"
    np.testing.assert_array_equal(np.asarray(img), to_uint8(alpha))
    assert "icc_profile" not in img.info  # coverage, not colour
    assert_exif_carried(img)


@pytest.mark.parametrize(("margin", "box"), [(0, (10, 20, 15, 35)), (4, (6, 24, 11, 39)),
                                             (50, (0, 40, 0, 60))])
def test_trim_to_the_subject_with_a_margin(jpeg_source: DecodedImage, margin: int,
                                           box: tuple[int, int, int, int]) -> None:
    alpha = np.zeros((40, 60), np.float32)
    alpha[10:20, 15:35] = 1.0
    alpha[0, 0] = 0.01  # fainter than the trim threshold: not subject
    out = render(jpeg_source, alpha, replace(PLAIN, trim=True, trim_margin=margin))
    top, bottom, left, right = box
    img = Image.open(io.BytesIO(out.data))
    assert img.size == (right - left, bottom - top)
    assert (out.width, out.height) == img.size
    rgba = np.asarray(img)
    np.testing.assert_array_equal(rgba[:, :, :3], jpeg_source.pixels[top:bottom, left:right])
    np.testing.assert_array_equal(rgba[:, :, 3], to_uint8(alpha[top:bottom, left:right]))
    assert Image.open(io.BytesIO(out.data)).getexif().get_ifd(0x8769).get(0xA002) == img.size[0]


@pytest.mark.parametrize("clean_edges", [False, True])
def test_input_alpha_multiplies_the_models(clean_edges: bool) -> None:
    rgba = np.zeros((80, 80, 4), np.uint8)
    rgba[:, :, :3] = 120
    rgba[:, :40, 3] = 255
    image = decode(samples.encode(Image.fromarray(rgba, "RGBA"), "PNG"), name="cut.png",
                   max_pixels=LIMIT)
    model = np.ones((80, 80), np.float32)
    model[:, 60:] = np.linspace(1, 0, 20, dtype=np.float32)
    out = render(image, model, replace(PLAIN, clean_edges=clean_edges), model_side=20)
    result = np.asarray(Image.open(io.BytesIO(out.data)))
    np.testing.assert_array_equal(result[:, :40, 3], 255)
    np.testing.assert_array_equal(result[:, 40:, 3], 0)  # stays transparent


@pytest.mark.parametrize("fmt", [OutputFormat.PNG, OutputFormat.TIFF, OutputFormat.JPEG,
                                 OutputFormat.MATTE])
def test_print_resolution_is_kept(jpeg_source: DecodedImage, fmt: OutputFormat) -> None:
    out = render(jpeg_source, alpha_for(40, 60), replace(PLAIN, format=fmt))
    dpi = Image.open(io.BytesIO(out.data)).info["dpi"]
    np.testing.assert_allclose([float(d) for d in dpi], (300, 300), atol=0.01)


def test_untagged_source_gets_no_invented_profile() -> None:
    image = decode(samples.encode(Image.fromarray(samples.pattern()), "PNG"), name="plain.png",
                   max_pixels=LIMIT)
    for fmt in OutputFormat:
        out = render(image, alpha_for(32, 48), replace(PLAIN, format=fmt))
        assert "icc_profile" not in Image.open(io.BytesIO(out.data)).info, fmt
