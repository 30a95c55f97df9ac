from __future__ import annotations

from pathlib import PurePath

import pytest

from mattectl.config import DEFAULT_EXTENSIONS
from mattectl.watch.filters import ignore_reason


@pytest.mark.parametrize(("name", "reason"), [
    ("photo.jpg", None),
    ("PHOTO.JPEG", None),
    ("sub/dir/portrait.tif", None),
    ("photo.jpg.part", "temporary file"),
    ("photo.jpg.crdownload", "temporary file"),
    ("photo.tmp", "temporary file"),
    ("~$photo.jpg", "temporary file"),
    ("._photo.jpg", "hidden"),
    (".DS_Store", "hidden"),
    (".photo.jpg.AbC123", "hidden"),  # rsync's temporary name
    (".processed/photo.jpg", "hidden"),
    ("Thumbs.db", "system file"),
    ("desktop.ini", "system file"),
    ("notes.txt", "extension not watched"),
    ("photo", "extension not watched"),
])
def test_ignore_reason(name: str, reason: str | None) -> None:
    assert ignore_reason(PurePath(name), DEFAULT_EXTENSIONS) == reason
