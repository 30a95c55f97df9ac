"""Metadata: read from each container, rights found wherever they are, prepared for outputs."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from mattectl.imageio.metadata import (
    Metadata,
    Rights,
    for_output,
    iptc_records,
    read_metadata,
    rights,
    rights_xmp,
)
from mattectl.imageio.write import with_iptc

from . import samples


def test_jpeg_exif_xmp_and_iptc_are_read() -> None:
    data = samples.encode(Image.fromarray(samples.pattern()), "JPEG",
                          exif=samples.exif_bytes(3), xmp=samples.xmp())
    meta = read_metadata(Image.open(io.BytesIO(with_iptc(data, samples.iptc()))))
    assert meta.exif.startswith(b"Exif\0\0")
    assert b"dc:rights" in meta.xmp
    assert (2, 80, b"Ada Photographer") in iptc_records(meta.iptc)


def test_rights_prefer_iptc_then_xmp_then_exif() -> None:
    exif = samples.exif_bytes(artist="Exif Artist", copyright_="(c) Exif")
    assert rights(Metadata(exif=exif)) == Rights(("Exif Artist",), "(c) Exif")
    assert rights(Metadata(exif=exif, xmp=samples.xmp())) == \
        Rights(("Xavier Mp",), "(c) XMP rights")
    assert rights(Metadata(exif=exif, xmp=samples.xmp(), iptc=samples.iptc())) == \
        Rights(("Ada Photographer",), "(c) 2024 Studio Test")


def test_for_output_turns_orientation_to_1_and_sets_the_size() -> None:
    meta = Metadata(exif=samples.exif_bytes(8, pixel_size=(4000, 6000)), xmp=samples.xmp(),
                    iptc=samples.iptc())
    out = for_output(meta, 1200, 900, holds_iptc=True)
    exif = Image.Exif()
    exif.load(out.exif)
    assert exif[0x0112] == 1
    assert exif.get_ifd(0x8769)[0xA002] == 1200
    assert exif.get_ifd(0x8769)[0xA003] == 900
    assert b'tiff:Orientation="1"' in out.xmp
    assert b'tiff:Orientation="6"' not in out.xmp
    assert out.iptc == meta.iptc


def test_formats_without_iptc_get_rights_in_xmp() -> None:
    out = for_output(Metadata(iptc=samples.iptc("Zoë Ünicode", "© 2024 Zoë")), 10, 10,
                     holds_iptc=False)
    assert out.iptc is None
    assert rights(out) == Rights(("Zoë Ünicode",), "© 2024 Zoë")
    # An existing XMP packet is kept as it is.
    kept = for_output(Metadata(xmp=samples.xmp(), iptc=samples.iptc()), 10, 10,
                      holds_iptc=False)
    assert b"Xavier Mp" in kept.xmp


def test_rights_xmp_escapes_markup() -> None:
    packet = rights_xmp(Rights(("A & B <studio>",), "(c) \"Q\""))
    assert rights(Metadata(xmp=packet)) == Rights(("A & B <studio>",), "(c) \"Q\"")


def test_broken_exif_is_left_out_not_fatal() -> None:
    img = Image.open(io.BytesIO(samples.encode(Image.fromarray(samples.pattern()), "PNG")))
    img.info["exif"] = b"Exif\0\0garbage that is not TIFF"
    assert read_metadata(img).exif is None


def test_png_raw_profile_iptc_is_read() -> None:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    raw = samples.iptc()
    info.add_text("Raw profile type iptc", f"\niptc\n{len(raw):8d}\n{raw.hex()}\n")
    data = samples.encode(Image.fromarray(np.zeros((4, 4, 3), np.uint8)), "PNG", pnginfo=info)
    meta = read_metadata(Image.open(io.BytesIO(data)))
    assert rights(meta).copyright == "(c) 2024 Studio Test"


def test_camera_exif_is_edited_in_place() -> None:
    from .support import HUMAN_IMAGES, need

    camera = need(HUMAN_IMAGES / "julia+trotti_17.jpg")
    meta = read_metadata(Image.open(camera))
    out = for_output(meta, 100, 50, holds_iptc=True)
    assert len(out.exif) == len(meta.exif)  # maker notes and offsets untouched
    changed = sum(a != b for a, b in zip(out.exif, meta.exif, strict=True))
    assert 0 < changed <= 8
    exif = Image.Exif()
    exif.load(out.exif)
    assert exif.get_ifd(0x8769)[0xA002] == 100


def test_the_old_thumbnail_is_dropped() -> None:
    import struct

    thumb = b"\xff\xd8old picture\xff\xd9"
    ifd0 = struct.pack("<H", 1) + struct.pack("<HHIHH", 0x0112, 3, 1, 6, 0) + struct.pack("<I", 26)
    ifd1_at, thumb_at = 26, 26 + 2 + 24 + 4
    ifd1 = (struct.pack("<H", 2) + struct.pack("<HHII", 0x0201, 4, 1, thumb_at)
            + struct.pack("<HHII", 0x0202, 4, 1, len(thumb)) + struct.pack("<I", 0))
    raw = b"Exif\0\0" + b"II*\0" + struct.pack("<I", 8) + ifd0 + ifd1 + thumb
    assert len(b"II*\0") + 4 + len(ifd0) == ifd1_at
    out = for_output(Metadata(exif=raw), 10, 10, holds_iptc=True).exif
    assert b"old picture" not in out
    exif = Image.Exif()
    exif.load(out)
    assert exif[0x0112] == 1
    assert struct.unpack_from("<I", out, 6 + 8 + 2 + 12)[0] == 0  # no IFD1 any more
