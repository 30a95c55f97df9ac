"""whole_image on real photos written out whole, cut short, or with bytes after their end."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from mattectl.watch.complete import whole_image


def _encoded(small_photo: Path, fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.open(small_photo).convert("RGB").save(buffer, fmt)
    return buffer.getvalue()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_a_whole_photo_is_whole_and_every_cut_of_it_is_not(tmp_path: Path, small_photo: Path,
                                                           fmt: str) -> None:
    data = _encoded(small_photo, fmt)
    path = tmp_path / "photo"
    path.write_bytes(data)
    assert whole_image(path)
    cuts = sorted({*range(0, len(data), max(1, len(data) // 97)), len(data) - 1, len(data) - 2})
    for cut in cuts:
        path.write_bytes(data[:cut])
        assert not whole_image(path), f"{fmt} cut at {cut} of {len(data)} bytes taken as whole"


def test_the_drop_folders_own_jpeg_is_whole(tmp_path: Path, small_photo: Path) -> None:
    assert small_photo.read_bytes()[:3] == b"\xff\xd8\xff"
    assert whole_image(small_photo)


def test_a_jpeg_cut_right_after_its_embedded_thumbnail_is_not_whole(tmp_path: Path,
                                                                   small_photo: Path) -> None:
    """The thumbnail in the metadata ends with its own end-of-image marker: a file cut just
    after it ends with the same two bytes as a whole one, but its segments never reach a scan."""
    thumb = io.BytesIO()
    Image.open(small_photo).convert("RGB").resize((40, 30)).save(thumb, "JPEG")
    payload = b"Exif\0\0" + thumb.getvalue()
    app1 = b"\xff\xe1" + (len(payload) + 2).to_bytes(2, "big") + payload
    data = small_photo.read_bytes()
    photo = data[:2] + app1 + data[2:]
    path = tmp_path / "with-thumbnail.jpg"
    path.write_bytes(photo)
    assert whole_image(path)
    cut = photo[:2 + len(app1)]
    assert cut.endswith(b"\xff\xd9")
    path.write_bytes(cut)
    assert not whole_image(path)


def test_formats_whose_end_cannot_be_proven_are_not_taken_early(tmp_path: Path,
                                                                small_photo: Path) -> None:
    jpeg = small_photo.read_bytes()
    cases = {
        "trailing.jpg": jpeg + b"\0" * 100,  # bytes after the end marker
        "photo.tif": _encoded(small_photo, "TIFF"),
        "photo.bmp": _encoded(small_photo, "BMP"),
        "empty.jpg": b"",
        "text.jpg": b"not a photo at all, only some words\n" * 4,
    }
    for name, data in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        assert not whole_image(path), name
    assert not whole_image(tmp_path / "missing.jpg")
    assert not whole_image(tmp_path)  # a folder
