"""Small image files the imageio tests build themselves: patterns, ICC profiles, EXIF, IPTC,
and files in every input kind (a real encoder writes each one)."""

from __future__ import annotations

import io
import struct
from typing import Any

import numpy as np
from PIL import Image

D50 = (0.9642, 1.0, 0.8249)
# Adobe RGB (1998) colorants, adapted to D50 (as in Adobe's published profile).
ADOBE_RGB = ((0.60974, 0.31111, 0.01947), (0.20528, 0.62567, 0.06087),
             (0.14919, 0.06322, 0.74457))
ADOBE_GAMMA = 563 / 256
COLOURS = np.array([[230, 30, 30], [30, 200, 40], [40, 60, 220],
                    [240, 220, 30], [200, 40, 200], [30, 210, 210]], np.uint8)


def pattern(width: int = 48, height: int = 32) -> np.ndarray:
    """HxWx3 uint8: 2 rows x 3 columns of distinct colours, so every turn and flip differs."""
    out = np.empty((height, width, 3), np.uint8)
    for index, colour in enumerate(COLOURS):
        row, col = divmod(index, 3)
        out[row * height // 2:(row + 1) * height // 2, col * width // 3:(col + 1) * width // 3] \
            = colour
    return out


def block_means(rgb: np.ndarray) -> np.ndarray:
    """6x3: the mean colour of each block of :func:`pattern` (robust to JPEG's blur)."""
    height, width = rgb.shape[:2]
    means = []
    for index in range(6):
        row, col = divmod(index, 3)
        block = rgb[row * height // 2 + 3:(row + 1) * height // 2 - 3,
                    col * width // 3 + 3:(col + 1) * width // 3 - 3]
        means.append(block.reshape(-1, block.shape[-1]).mean(axis=0))
    return np.array(means)


# -- ICC profiles ---------------------------------------------------------------------------------

def _s15(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def _xyz(values: tuple[float, float, float]) -> bytes:
    return b"XYZ \0\0\0\0" + b"".join(_s15(v) for v in values)


def _curve(gamma: float) -> bytes:
    return b"curv\0\0\0\0" + struct.pack(">IH", 1, round(gamma * 256)) + b"\0\0"


def _desc(text: str) -> bytes:
    ascii_ = text.encode("ascii") + b"\0"
    return (b"desc\0\0\0\0" + struct.pack(">I", len(ascii_)) + ascii_
            + struct.pack(">II", 0, 0) + struct.pack(">HB", 0, 0) + b"\0" * 67)


def icc_profile(description: str, space: str = "RGB", gamma: float = ADOBE_GAMMA,
                colorants: tuple = ADOBE_RGB) -> bytes:
    """A valid ICC v2 display profile: matrix/TRC for RGB, a TRC for GRAY."""
    tags = [(b"desc", _desc(description)), (b"cprt", b"text\0\0\0\0test profile\0"),
            (b"wtpt", _xyz(D50))]
    if space == "RGB":
        tags += [(b"rXYZ", _xyz(colorants[0])), (b"gXYZ", _xyz(colorants[1])),
                 (b"bXYZ", _xyz(colorants[2]))]
        tags += [(sig, _curve(gamma)) for sig in (b"rTRC", b"gTRC", b"bTRC")]
    else:
        tags.append((b"kTRC", _curve(gamma)))
    table_size = 4 + 12 * len(tags)
    offset = 128 + table_size
    table, data = struct.pack(">I", len(tags)), b""
    for sig, payload in tags:
        payload += b"\0" * (-len(payload) % 4)
        table += sig + struct.pack(">II", offset + len(data), len(payload))
        data += payload
    size = 128 + table_size + len(data)
    header = (struct.pack(">I", size) + b"lcms" + struct.pack(">I", 0x02100000) + b"mntr"
              + f"{space:<4}".encode() + b"XYZ " + struct.pack(">6H", 2024, 1, 1, 0, 0, 0)
              + b"acsp" + b"\0" * 24 + b"\0" * 4 + b"".join(_s15(v) for v in D50) + b"\0" * 4)
    header += b"\0" * (128 - len(header))
    return header + table + data


# -- metadata -------------------------------------------------------------------------------------

def exif_bytes(orientation: int = 1, *, artist: str | None = "Ada Photographer",
               copyright_: str | None = "(c) 2024 Studio Test",
               original: str = "2024:05:06 07:08:09",
               pixel_size: tuple[int, int] | None = None) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "TestCam"
    if artist:
        exif[0x013B] = artist
    if copyright_:
        exif[0x8298] = copyright_
    sub: dict[int, Any] = {0x9003: original}
    if pixel_size:
        sub[0xA002], sub[0xA003] = pixel_size
    exif[0x8769] = sub
    return exif.tobytes()


def iptc(creator: str = "Ada Photographer", notice: str = "(c) 2024 Studio Test") -> bytes:
    def record(dataset: int, value: str) -> bytes:
        data = value.encode()
        return b"\x1c\x02" + bytes([dataset]) + struct.pack(">H", len(data)) + data
    charset = b"\x1c\x01\x5a\x00\x03\x1b%G"  # UTF-8
    return charset + record(80, creator) + record(116, notice)


def xmp(creator: str = "Xavier Mp", notice: str = "(c) XMP rights") -> bytes:
    return (
        '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
        'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about="" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/" '
        'xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:Orientation="6">'
        f'<dc:creator><rdf:Seq><rdf:li>{creator}</rdf:li></rdf:Seq></dc:creator>'
        f'<dc:rights><rdf:Alt><rdf:li xml:lang="x-default">{notice}</rdf:li></rdf:Alt>'
        '</dc:rights></rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>').encode()


# -- files ----------------------------------------------------------------------------------------

def encode(img: Image.Image, fmt: str, **params: Any) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **{k: v for k, v in params.items() if v is not None})
    return out.getvalue()


def bomb_png(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` but whose data is a few bytes."""
    import zlib

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (struct.pack(">I", len(payload)) + kind + payload
                + struct.pack(">I", zlib.crc32(kind + payload)))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def huge_png(width: int, height: int) -> bytes:
    """A real, valid black RGB PNG of ``width`` x ``height`` that is small on disk (a 100 MP
    one is 0.3 MB) and made in milliseconds without holding its pixels: one deflate block of
    black rows, fully flushed so that it can be repeated, then the rest, and the Adler-32 of
    that many zero bytes."""
    import zlib

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (struct.pack(">I", len(payload)) + kind + payload
                + struct.pack(">I", zlib.crc32(kind + payload)))
    row = b"\0" * (1 + 3 * width)  # filter byte 0 (none), then black pixels
    rows = max(1, (1 << 20) // len(row))
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = deflate.compress(row * rows) + deflate.flush(zlib.Z_FULL_FLUSH)
    full, rest = divmod(height, rows)
    tail = deflate.compress(row * rest) + deflate.flush(zlib.Z_FINISH)
    adler = (height * len(row) % 65521) << 16 | 1
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = b"\x78\xda" + block * full + tail + struct.pack(">I", adler)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat)
            + chunk(b"IEND", b""))


def cmyk_profile() -> bytes:
    """A small but valid CMYK output profile (lut8 A2B0, Lab PCS) whose colours are the naive
    ones (cyan ink = sRGB cyan...), so a conversion through LittleCMS can be checked."""
    from PIL import ImageCms

    corners = [(c, m, y, k) for c in (0, 1) for m in (0, 1) for y in (0, 1) for k in (0, 1)]
    rgb = np.array([[[round(255 * (1 - c) * (1 - k)), round(255 * (1 - m) * (1 - k)),
                      round(255 * (1 - y) * (1 - k))] for c, m, y, k in corners]], np.uint8)
    to_lab = ImageCms.buildTransform(ImageCms.createProfile("sRGB"),
                                     ImageCms.createProfile("LAB"), "RGB", "LAB")
    lab = np.asarray(ImageCms.applyTransform(Image.fromarray(rgb, "RGB"), to_lab))[0].copy()
    lab[:, 1:] ^= 0x80  # Pillow keeps a* and b* as signed bytes; ICC's lut8 offsets them by 128
    identity = bytes(range(256))
    lut = (b"mft1\0\0\0\0" + bytes([4, 3, 2, 0])
           + b"".join(_s15(v) for v in (1, 0, 0, 0, 1, 0, 0, 0, 1))
           + identity * 4 + lab.astype(np.uint8).tobytes() + identity * 3)
    tags = [(b"desc", _desc("Test CMYK")), (b"cprt", b"text\0\0\0\0test profile\0"),
            (b"wtpt", _xyz(D50)), (b"A2B0", lut)]
    table_size = 4 + 12 * len(tags)
    table, data = struct.pack(">I", len(tags)), b""
    for sig, payload in tags:
        payload += b"\0" * (-len(payload) % 4)
        table += sig + struct.pack(">II", 128 + table_size + len(data), len(payload))
        data += payload
    header = (struct.pack(">I", 128 + table_size + len(data)) + b"lcms"
              + struct.pack(">I", 0x02100000) + b"prtr" + b"CMYK" + b"Lab "
              + struct.pack(">6H", 2024, 1, 1, 0, 0, 0) + b"acsp" + b"\0" * 28
              + b"".join(_s15(v) for v in D50) + b"\0" * 4)
    return header + b"\0" * (128 - len(header)) + table + data
