"""ICC colour management with LittleCMS (Pillow's ImageCms): whatever the source, the model sees
sRGB. Conversions use relative colorimetric intent with black-point compensation, as Photoshop
does by default."""

from __future__ import annotations

import functools
import io
import logging

from PIL import Image, ImageCms

logger = logging.getLogger(__name__)


@functools.cache
def srgb_profile() -> bytes:
    """LittleCMS's built-in sRGB profile, embedded in outputs that were converted to sRGB."""
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def colour_space(profile: bytes | None) -> str | None:
    """The ICC header's data colour space (``'RGB'``, ``'GRAY'``, ``'CMYK'``, ``'Lab'``...)."""
    if not profile or len(profile) < 20:
        return None
    return profile[16:20].decode("latin-1").strip()


def is_srgb(profile: bytes | None) -> bool:
    """No profile (taken as sRGB, as browsers do) or a profile whose description says sRGB."""
    if not profile:
        return True
    try:
        description = ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(profile)))
    except (ImageCms.PyCMSError, OSError, TypeError):
        return False
    return "srgb" in description.lower().replace(" ", "").replace("-", "")


@functools.lru_cache(maxsize=16)
def _transform(profile: bytes | None, in_mode: str, out_mode: str) -> ImageCms.ImageCmsTransform:
    source = (ImageCms.createProfile("LAB") if profile is None
              else ImageCms.ImageCmsProfile(io.BytesIO(profile)))
    return ImageCms.buildTransform(
        source, ImageCms.createProfile("sRGB"), in_mode, out_mode,
        renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC,
        flags=ImageCms.Flags.BLACKPOINTCOMPENSATION)


def to_srgb(img: Image.Image, profile: bytes | None) -> Image.Image:
    """An 8-bit ``RGB``/``CMYK``/``L``/``LAB`` image in ``profile`` -> ``RGB`` in sRGB.

    ``profile=None`` is allowed for ``LAB`` only (Lab is device independent). Raises
    ``ImageCms.PyCMSError`` (or OSError) for a profile LittleCMS cannot use.
    """
    return ImageCms.applyTransform(img, _transform(profile, img.mode, "RGB"))
