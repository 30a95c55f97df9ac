"""Decode an input photo: what the model sees (8-bit sRGB) and what the output keeps (the source's
pixels, bit depth, ICC profile and metadata), upright, with clear errors."""

from __future__ import annotations

import io
import logging
import warnings
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageCms, UnidentifiedImageError

from mattectl.errors import InputError
from mattectl.imageio.colour import colour_space, is_srgb, srgb_profile, to_srgb
from mattectl.imageio.metadata import ORIENTATION, Metadata, read_metadata

logger = logging.getLogger(__name__)

# We enforce our own pixel limit (daemon.max_pixels) from the header, before decoding.
Image.MAX_IMAGE_PIXELS = None

try:  # HEIC/HEIF is an optional extra: pip install 'mattectl[heic]'
    import pillow_heif

    pillow_heif.register_heif_opener()
    HEIF_SUPPORTED = True
except ImportError:  # pragma: no cover - depends on the extra
    HEIF_SUPPORTED = False

HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1")


@dataclass(frozen=True)
class DecodedImage:
    """A photo, upright (EXIF orientation applied).

    ``rgb`` (HxWx3 uint8, sRGB) is what the model sees: colour-managed, and composited over
    white where the input was already transparent. ``pixels`` (HxWx3, uint8 or uint16) is what
    the output keeps, in the colour space of ``icc_profile`` (None: untagged, taken as sRGB).
    ``alpha`` (HxW float32 in [0, 1]) is the transparency the input already had, if any.
    """

    rgb: np.ndarray
    pixels: np.ndarray
    alpha: np.ndarray | None
    icc_profile: bytes | None
    metadata: Metadata
    format: str | None
    source_mode: str

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def bit_depth(self) -> int:
        return 16 if self.pixels.dtype == np.uint16 else 8


def _open(data: bytes, name: str) -> Image.Image:
    if not data:
        raise InputError(f"{name}: empty file (0 bytes)")
    try:
        return Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        if data[4:8] == b"ftyp" and data[8:12] in HEIF_BRANDS and not HEIF_SUPPORTED:
            raise InputError(f"{name}: HEIC/HEIF needs the optional plug-in: "
                             "pip install 'mattectl[heic]'") from None
        raise InputError(
            f"{name}: not an image, or a format mattectl cannot read "
            f"(file starts with {data[:12]!r})") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"{name}: unreadable image header: {exc}") from None


def _check_header(img: Image.Image, name: str, max_pixels: int) -> None:
    width, height = img.size
    if width * height > max_pixels:
        raise InputError(
            f"{name}: {width}x{height} is {width * height / 1e6:.0f} MP, over the limit of "
            f"{max_pixels / 1e6:.0f} MP (daemon.max_pixels); not decoded")
    frames = getattr(img, "n_frames", 1)
    if frames > 1 and img.format in ("TIFF", "MPO"):
        logger.info("%s: %s with %d pages: using the first", name, img.format, frames)
    elif frames > 1 and img.format not in ("HEIF",):
        raise InputError(f"{name}: animated {img.format} ({frames} frames) is not supported; "
                         "save one frame as a still image")


@dataclass(frozen=True)
class Header:
    """What a photo's header says, before a pixel is decoded: enough to know what decoding it
    will cost (see :mod:`mattectl.matting.memory`)."""

    width: int
    height: int
    wide: bool  # 16 bits (or more) per sample
    transparent: bool  # it may carry an alpha channel or a transparent colour
    format: str | None
    mode: str

    @property
    def pixels(self) -> int:
        return self.width * self.height


def read_header(data: bytes, *, name: str, max_pixels: int) -> Header:
    """The header of image bytes, checked as :func:`decode` checks it (``max_pixels``, frames);
    decodes no pixels. Raises :class:`InputError` naming the file."""
    img = _open(data, name)
    _check_header(img, name, max_pixels)
    return _header_of(img)


def _header_of(img: Image.Image) -> Header:
    mode = img.mode
    wide = _is_wide(img) or mode in ("I", "F") or mode.startswith("I;16")
    transparent = mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info
    width, height = img.size
    return Header(width, height, wide, transparent, img.format, mode)


def _is_wide(img: Image.Image) -> bool:
    """Whether the file stores 16 bits per sample (Pillow would decode RGB ones to 8 bits)."""
    for tile in img.tile:
        rawmode = tile.args[0] if isinstance(tile.args, tuple) else tile.args
        if isinstance(rawmode, str) and ";16" in rawmode:
            return True
    return False


def _decode_wide(data: bytes) -> tuple[np.ndarray, np.ndarray | None] | None:
    """16-bit RGB(A)/gray(+alpha) PNG and TIFF through OpenCV: (HxWx3 uint16, alpha or None)."""
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None or arr.dtype != np.uint16:
        return None
    if arr.ndim == 2:
        return np.repeat(arr[:, :, None], 3, axis=2), None
    if arr.shape[2] == 4:
        rgba = cv2.cvtColor(arr, cv2.COLOR_BGRA2RGBA)
        return np.ascontiguousarray(rgba[:, :, :3]), rgba[:, :, 3].astype(np.float32) / 65535
    if arr.shape[2] == 3:
        return cv2.cvtColor(arr, cv2.COLOR_BGR2RGB), None
    return None


def _alpha_of(img: Image.Image) -> np.ndarray:
    return np.asarray(img.getchannel("A"), dtype=np.float32) * np.float32(1 / 255)


def _gray16(img: Image.Image) -> np.ndarray:
    gray = np.clip(np.asarray(img, dtype=np.int64), 0, 65535).astype(np.uint16)
    return np.repeat(gray[:, :, None], 3, axis=2)


def _pixels(img: Image.Image, name: str) -> tuple[np.ndarray, np.ndarray | None, bytes | None]:
    """(pixels, alpha, profile) for an 8-bit-or-gray-16 Pillow image, by its mode."""
    profile = img.info.get("icc_profile") or None
    space = colour_space(profile)
    mode = img.mode
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif mode in ("PA", "RGBa", "La"):
        img = img.convert("RGBA")
    elif mode == "1":
        img = img.convert("L")
    elif mode in ("YCbCr", "HSV", "RGBX"):
        img = img.convert("RGB")
    mode = img.mode
    if mode.startswith("I;16") or mode == "I":
        if space == "GRAY":  # LittleCMS via Pillow converts 8 bits only: keep the 16 bits
            logger.warning("%s: 16-bit grey ICC profile left out (values kept as they are)",
                           name)
        return _gray16(img), None, profile if space == "RGB" else None
    if mode == "F":
        raise InputError(f"{name}: 32-bit floating-point images are not supported")
    alpha = _alpha_of(img) if mode in ("RGBA", "LA") else None
    if mode in ("L", "LA"):
        if space == "GRAY":  # a grey profile cannot describe RGB output: convert to sRGB
            return np.asarray(_converted(img.convert("L"), profile, name)), alpha, srgb_profile()
        return np.repeat(np.asarray(img.convert("L"))[:, :, None], 3, axis=2), alpha, None
    if mode == "CMYK":
        if space == "CMYK":
            return np.asarray(_converted(img, profile, name)), None, srgb_profile()
        logger.warning("%s: CMYK without an ICC profile: converted naively", name)
        return np.asarray(img.convert("RGB")), None, None
    if mode == "LAB":
        return np.asarray(to_srgb(img, None)), None, srgb_profile()
    rgb = np.asarray(img if mode == "RGB" else img.convert("RGB"))  # no copy of an RGB photo
    if profile is not None and space != "RGB":
        logger.warning("%s: ignoring an embedded %s profile on an RGB image", name, space)
        profile = None
    return rgb, alpha, profile


def _converted(img: Image.Image, profile: bytes | None, name: str) -> Image.Image:
    try:
        return to_srgb(img, profile)
    except (ImageCms.PyCMSError, OSError) as exc:
        raise InputError(f"{name}: its {img.mode} ICC profile cannot be used: {exc}") from None


def _model_view(pixels: np.ndarray, alpha: np.ndarray | None, profile: bytes | None,
                name: str) -> np.ndarray:
    """8-bit sRGB for the model: colour-converted, and composited over white where transparent."""
    rgb = pixels if pixels.dtype == np.uint8 else \
        ((pixels.astype(np.uint32) + 128) // 257).astype(np.uint8)
    if profile is not None and not is_srgb(profile):
        try:
            rgb = np.asarray(to_srgb(Image.fromarray(rgb, "RGB"), profile))
        except (ImageCms.PyCMSError, OSError) as exc:
            logger.warning("%s: ICC profile unusable (%s): the model sees the raw values", name,
                           exc)
    if alpha is not None:
        a = alpha[:, :, None]
        rgb = (rgb * a + 255.0 * (1 - a) + 0.5).astype(np.uint8)
    return rgb


def upright(arr: np.ndarray, orientation: int) -> np.ndarray:
    """Apply an EXIF orientation (1..8) to an HxW[xC] array."""
    axes = (1, 0, 2) if arr.ndim == 3 else (1, 0)
    turned = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.transpose(axes),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: a.transpose(axes)[::-1, ::-1],
        8: lambda a: np.rot90(a, 1),
    }.get(orientation, lambda a: a)(arr)
    return np.ascontiguousarray(turned)


def _orientation(img: Image.Image) -> int:
    if img.format == "HEIF":
        return 1  # libheif applies the container's rotation; the EXIF value must be ignored
    try:
        value = img.getexif().get(ORIENTATION, 1)
    except Exception:
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def decode(data: bytes, *, name: str, max_pixels: int) -> DecodedImage:
    """Decode image bytes; any problem with the file raises :class:`InputError` naming it."""
    img = _open(data, name)
    _check_header(img, name, max_pixels)
    wide_file = _is_wide(img) and img.mode in ("RGB", "RGBA", "LA")  # before load() clears tiles
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            img.load()
        wide = _decode_wide(data) if wide_file else None
        if wide is not None:
            pixels, alpha = wide
            profile = img.info.get("icc_profile") or None
            profile = profile if colour_space(profile) == "RGB" else None
        else:
            pixels, alpha, profile = _pixels(img, name)
    except InputError:
        raise
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InputError(f"{name}: corrupt or truncated {img.format or 'image'}: {exc}") from None
    turn = _orientation(img)
    pixels = upright(pixels, turn)
    alpha = upright(alpha, turn) if alpha is not None else None
    if alpha is not None and float(alpha.min()) >= 1.0:
        alpha = None  # an alpha channel that hides nothing
    return DecodedImage(
        rgb=_model_view(pixels, alpha, profile, name),
        pixels=pixels,
        alpha=alpha,
        icc_profile=profile,
        metadata=read_metadata(img),
        format=img.format,
        source_mode=img.mode,
    )
