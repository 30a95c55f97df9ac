"""EXIF, XMP and IPTC: read from any input, prepared for an output of another size and format.

EXIF is kept as Pillow writes it (``b"Exif\\0\\0"`` + a TIFF structure), XMP as the packet's bytes,
IPTC as raw IIM records. For an output, EXIF orientation and XMP ``tiff:Orientation`` are reset to
1 (the pixels are already turned), the EXIF thumbnail (a picture of the old background) is
dropped and the EXIF pixel size follows the output. Formats without an IPTC block (PNG, WebP)
get the creator and copyright in XMP instead, as the IPTC/XMP standards map them.
"""

from __future__ import annotations

import logging
import re
import struct
from dataclasses import dataclass, replace
from xml.sax.saxutils import escape, unescape

from PIL import Image

logger = logging.getLogger(__name__)

ORIENTATION = 0x0112
EXIF_IFD = 0x8769
GPS_IFD = 0x8825
ARTIST = 0x013B
COPYRIGHT = 0x8298
PIXEL_X, PIXEL_Y = 0xA002, 0xA003
TIFF_XMP, TIFF_IPTC = 700, 33723
IPTC_RESOURCE = 0x0404
# Descriptive IFD0 tags worth carrying from a TIFF (its structural tags are the writer's business).
TIFF_DESCRIPTIVE = (0x010E, 0x010F, 0x0110, ORIENTATION, 0x011A, 0x011B, 0x0128, 0x0131, 0x0132,
                    ARTIST, COPYRIGHT)


@dataclass(frozen=True)
class Metadata:
    exif: bytes | None = None  # b"Exif\0\0" + TIFF structure
    xmp: bytes | None = None  # the XMP packet
    iptc: bytes | None = None  # raw IPTC-IIM records
    dpi: tuple[float, float] | None = None  # print resolution (JFIF, pHYs, TIFF)


@dataclass(frozen=True)
class Rights:
    creator: tuple[str, ...] = ()
    copyright: str | None = None


# -- reading --------------------------------------------------------------------------------------

def read_metadata(img: Image.Image) -> Metadata:
    """Whatever EXIF, XMP and IPTC the opened image carries (a broken block is left out)."""
    return Metadata(exif=_read_exif(img), xmp=_read_xmp(img), iptc=_read_iptc(img),
                    dpi=_read_dpi(img))


def _read_dpi(img: Image.Image) -> tuple[float, float] | None:
    dpi = img.info.get("dpi")
    try:
        x, y = float(dpi[0]), float(dpi[1])
    except (TypeError, ValueError, IndexError):
        return None
    return (x, y) if x > 0 and y > 0 else None


def _read_exif(img: Image.Image) -> bytes | None:
    try:
        if img.format == "TIFF":
            source = img.getexif()
            exif = Image.Exif()
            for tag in TIFF_DESCRIPTIVE:
                if tag in source:
                    exif[tag] = source[tag]
            for ifd in (EXIF_IFD, GPS_IFD):
                if tag_dict := source.get_ifd(ifd):
                    exif[ifd] = dict(tag_dict)
            return exif.tobytes() if len(exif) else None
        raw = img.info.get("exif")
        if not raw:
            return None
        raw = raw if raw.startswith(b"Exif\0\0") else b"Exif\0\0" + raw
        Image.Exif().load(raw)  # proves it parses
        return raw
    except Exception as exc:  # a damaged EXIF block must not cost the photo
        logger.warning("EXIF left out, it cannot be read: %s", exc)
        return None


def _read_xmp(img: Image.Image) -> bytes | None:
    xmp = img.info.get("xmp") or img.info.get("XML:com.adobe.xmp")
    if xmp is None and img.format == "TIFF":
        xmp = img.tag_v2.get(TIFF_XMP)
    if isinstance(xmp, str):
        xmp = xmp.encode("utf-8")
    if isinstance(xmp, tuple):
        xmp = bytes(xmp)
    return xmp or None


def _read_iptc(img: Image.Image) -> bytes | None:
    if img.format == "TIFF":
        # Photoshop tags it as LONGs, which Pillow would decode to one number: read it raw,
        # as Pillow's own IptcImagePlugin does.
        data = img.tag_v2._tagdata.get(TIFF_IPTC) or img.tag_v2.get(TIFF_IPTC)
        return bytes(data).rstrip(b"\0") or None if isinstance(data, bytes) else None
    photoshop = img.info.get("photoshop")
    if isinstance(photoshop, dict) and photoshop.get(IPTC_RESOURCE):
        return photoshop[IPTC_RESOURCE]
    raw_profile = img.info.get("Raw profile type iptc")  # ImageMagick's and exiftool's PNG form
    if isinstance(raw_profile, str):
        return _from_raw_profile(raw_profile)
    return None


def _from_raw_profile(text: str) -> bytes | None:
    lines = text.strip().split("\n")
    try:
        data = bytes.fromhex("".join(lines[2:]))
    except ValueError:
        return None
    if data.startswith(b"8BIM"):
        return _irb_resources(data).get(IPTC_RESOURCE)
    return data or None


def _irb_resources(data: bytes) -> dict[int, bytes]:
    """Photoshop image resource blocks -> {resource id: payload}."""
    found, pos = {}, 0
    while pos + 12 <= len(data) and data[pos:pos + 4] == b"8BIM":
        rid = struct.unpack(">H", data[pos + 4:pos + 6])[0]
        name_len = data[pos + 6]
        pos += 6 + ((name_len + 2) & ~1)
        size = struct.unpack(">I", data[pos:pos + 4])[0]
        found[rid] = data[pos + 4:pos + 4 + size]
        pos += 4 + size + (size & 1)
    return found


# -- IPTC records and rights ----------------------------------------------------------------------

def iptc_records(iptc: bytes | None) -> list[tuple[int, int, bytes]]:
    """``(record, dataset, value)`` for each IIM record (stops at the first malformed one)."""
    out, pos = [], 0
    data = iptc or b""
    while pos + 5 <= len(data) and data[pos] == 0x1C:
        record, dataset = data[pos + 1], data[pos + 2]
        size = struct.unpack(">H", data[pos + 3:pos + 5])[0]
        if size & 0x8000:  # extended length: not used for text fields
            break
        out.append((record, dataset, data[pos + 5:pos + 5 + size]))
        pos += 5 + size
    return out


def _text(value: bytes | str) -> str:
    if isinstance(value, str):
        return value.strip("\0 ")
    try:
        return value.decode("utf-8").strip("\0 ")
    except UnicodeDecodeError:
        return value.decode("latin-1").strip("\0 ")


def _xmp_items(xmp: bytes, prop: str) -> list[str]:
    match = re.search(rf"<{prop}>(.*?)</{prop}>".encode(), xmp, re.S)
    if match is None:
        return []
    values = re.findall(rb"<rdf:li[^>]*>(.*?)</rdf:li>", match.group(1), re.S)
    return [unescape(_text(v), {"&quot;": '"', "&apos;": "'"}) for v in values]


def rights(meta: Metadata) -> Rights:
    """Creator and copyright, from IPTC, else XMP, else EXIF."""
    creator: list[str] = []
    notice: str | None = None
    for record, dataset, value in iptc_records(meta.iptc):
        if (record, dataset) == (2, 80):
            creator.append(_text(value))
        elif (record, dataset) == (2, 116):
            notice = _text(value)
    if meta.xmp:
        creator = creator or _xmp_items(meta.xmp, "dc:creator")
        notice = notice or next(iter(_xmp_items(meta.xmp, "dc:rights")), None)
    if meta.exif and (not creator or not notice):
        exif = Image.Exif()
        exif.load(meta.exif)
        if not creator and exif.get(ARTIST):
            creator = [_text(exif[ARTIST])]
        notice = notice or (_text(exif[COPYRIGHT]) if exif.get(COPYRIGHT) else None)
    return Rights(tuple(c for c in creator if c), notice or None)


def rights_xmp(owner: Rights) -> bytes:
    """A minimal XMP packet carrying creator (dc:creator) and copyright (dc:rights)."""
    parts = []
    if owner.creator:
        items = "".join(f"<rdf:li>{escape(c)}</rdf:li>" for c in owner.creator)
        parts.append(f"<dc:creator><rdf:Seq>{items}</rdf:Seq></dc:creator>")
    if owner.copyright:
        parts.append("<dc:rights><rdf:Alt><rdf:li xml:lang=\"x-default\">"
                     f"{escape(owner.copyright)}</rdf:li></rdf:Alt></dc:rights>")
    return ("<?xpacket begin=\"\ufeff\" id=\"W5M0MpCehiHzreSzNTczkc9d\"?>"
            "<x:xmpmeta xmlns:x=\"adobe:ns:meta/\"><rdf:RDF "
            "xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\">"
            "<rdf:Description rdf:about=\"\" xmlns:dc=\"http://purl.org/dc/elements/1.1/\">"
            f"{''.join(parts)}</rdf:Description></rdf:RDF></x:xmpmeta>"
            "<?xpacket end=\"w\"?>").encode()


def photoshop_irb(iptc: bytes) -> bytes:
    """The IPTC block as a Photoshop image resource (the payload of a JPEG APP13 segment)."""
    pad = b"\0" if len(iptc) & 1 else b""
    return b"8BIM" + struct.pack(">H", IPTC_RESOURCE) + b"\0\0" + struct.pack(">I", len(iptc)) \
        + iptc + pad


# -- preparing for an output ----------------------------------------------------------------------

_XMP_ORIENTATION = (
    (re.compile(rb'tiff:Orientation="\d"'), b'tiff:Orientation="1"'),
    (re.compile(rb"<tiff:Orientation>\d</tiff:Orientation>"),
     b"<tiff:Orientation>1</tiff:Orientation>"),
)


def for_output(meta: Metadata, width: int, height: int, *, holds_iptc: bool) -> Metadata:
    """Metadata for an output of ``width`` x ``height`` whose pixels are already upright.

    With ``holds_iptc=False`` the IPTC block is dropped and, when there is no XMP, creator and
    copyright move into a new XMP packet.
    """
    exif = _exif_for_output(meta.exif, width, height) if meta.exif else None
    xmp = meta.xmp
    if xmp is not None:
        for pattern, upright in _XMP_ORIENTATION:
            xmp = pattern.sub(upright, xmp)
    out = replace(meta, exif=exif, xmp=xmp)
    if holds_iptc:
        return out
    owner = rights(meta)
    if xmp is None and (owner.creator or owner.copyright):
        xmp = rights_xmp(owner)
    return replace(out, xmp=xmp, iptc=None)


def _exif_for_output(raw: bytes, width: int, height: int) -> bytes | None:
    try:
        return _patched_exif(raw, width, height)
    except (struct.error, IndexError, ValueError):
        pass  # an unusual layout: rewrite it with Pillow instead (types may be normalised)
    try:
        exif = Image.Exif()
        exif.load(raw)
        if ORIENTATION in exif:
            exif[ORIENTATION] = 1
        sub = exif.get_ifd(EXIF_IFD)
        if sub:
            if PIXEL_X in sub:
                sub[PIXEL_X] = width
            if PIXEL_Y in sub:
                sub[PIXEL_Y] = height
        return exif.tobytes()
    except Exception as exc:
        logger.warning("EXIF left out of the output, it cannot be rewritten: %s", exc)
        return None


def _patched_exif(raw: bytes, width: int, height: int) -> bytes:
    """Edit the EXIF block in place, so every other byte (maker notes, tag types) is kept:
    orientation 1, pixel size, and no thumbnail (IFD1 unlinked, its JPEG zeroed)."""
    if not raw.startswith(b"Exif\0\0"):
        raise ValueError("no Exif header")
    data = bytearray(raw)
    base = 6
    order = {b"II": "<", b"MM": ">"}[bytes(data[base:base + 2])]

    def entries(ifd: int) -> list[tuple[int, int, int, int]]:
        count = struct.unpack_from(order + "H", data, base + ifd)[0]
        return [(*struct.unpack_from(order + "HHI", data, base + ifd + 2 + 12 * i),
                 base + ifd + 10 + 12 * i) for i in range(count)]

    def set_value(typ: int, pos: int, value: int) -> None:
        if typ == 3 and value < 65536:
            struct.pack_into(order + "H", data, pos, value)
        elif typ == 4:
            struct.pack_into(order + "I", data, pos, value)

    ifd0 = struct.unpack_from(order + "I", data, base + 4)[0]
    for tag, typ, _count, pos in entries(ifd0):
        if tag == ORIENTATION:
            set_value(typ, pos, 1)
        elif tag == EXIF_IFD:
            sub = struct.unpack_from(order + "I", data, pos)[0]
            for sub_tag, sub_typ, _n, sub_pos in entries(sub):
                if sub_tag in (PIXEL_X, PIXEL_Y):
                    set_value(sub_typ, sub_pos, width if sub_tag == PIXEL_X else height)
    next_link = base + ifd0 + 2 + 12 * len(entries(ifd0))
    ifd1 = struct.unpack_from(order + "I", data, next_link)[0]
    if ifd1:
        values = {tag: struct.unpack_from(order + "I", data, pos)[0]
                  for tag, _t, _n, pos in entries(ifd1)}
        start, size = values.get(0x0201, 0), values.get(0x0202, 0)
        if start and size > 0 and base + start + size <= len(data):
            data[base + start:base + start + size] = bytes(size)
        struct.pack_into(order + "I", data, next_link, 0)
    return bytes(data)
