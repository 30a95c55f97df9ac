"""``<models dir>/manifest.json``: what was installed, from where, with which checksums.

One record per model, written when `mattectl models pull` or `import` installs it. The file is
replaced atomically; a missing or unreadable manifest means nothing is recorded.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from mattectl.fsutil import write_file
from mattectl.modelstore.digest import Digest

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
VERSION = 1


class Published(StrEnum):
    """How the installed files compare with the publisher's checksums."""

    MATCH = "match"  # every file matches the published checksum
    NONE = "none"  # nothing published: the recorded checksums are the reference
    DIFFERS = "differs"  # imported with --custom although it differs from the published file


@dataclass(frozen=True)
class ModelRecord:
    name: str
    location: str  # the weight file, or the model folder
    source: str  # the URL, ModelScope id or path it came from
    published: Published
    files: dict[str, Digest]
    recorded_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(
        timespec="seconds"))

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["published"] = self.published.value
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelRecord:
        files = {name: Digest(**d) for name, d in data["files"].items()}
        return cls(data["name"], data["location"], data["source"], Published(data["published"]),
                   files, data["recorded_at"])


def load_manifest(models_dir: Path) -> dict[str, ModelRecord]:
    path = models_dir / MANIFEST
    try:
        data = json.loads(path.read_text())
        return {name: ModelRecord.from_json(rec) for name, rec in data["models"].items()}
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        logger.warning("ignoring unreadable %s: %s", path, exc)
        return {}


def save_record(models_dir: Path, record: ModelRecord) -> None:
    records = load_manifest(models_dir)
    records[record.name] = record
    data = {"version": VERSION,
            "models": {name: rec.to_json() for name, rec in sorted(records.items())}}
    models_dir.mkdir(parents=True, exist_ok=True)
    write_file(models_dir / MANIFEST, json.dumps(data, indent=2).encode(), "overwrite")
