"""Which files in a drop folder are photos to process (pure)."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import PurePath

# Names that copy tools, browsers and operating systems use while a file is incomplete, or for
# their own bookkeeping. Hidden names (".DS_Store", "._x.jpg" AppleDouble files, rsync's
# ".x.jpg.Ab12Cd" temporaries, ".processed" folders) are all caught by the leading dot.
TEMP_SUFFIXES = (".part", ".partial", ".crdownload", ".download", ".tmp", ".temp", ".!qb",
                 ".swp", "~")
SYSTEM_NAMES = frozenset({"thumbs.db", "desktop.ini", "icon\r"})


def ignore_reason(rel_path: PurePath, extensions: Collection[str]) -> str | None:
    """Why a file (relative to its drop folder) is not a photo to process; None if it is."""
    if any(part.startswith(".") for part in rel_path.parts):
        return "hidden"
    name = rel_path.name.lower()
    if name in SYSTEM_NAMES:
        return "system file"
    if name.endswith(TEMP_SUFFIXES) or name.startswith("~$"):
        return "temporary file"
    if rel_path.suffix.lower().lstrip(".") not in extensions:
        return "extension not watched"
    return None
