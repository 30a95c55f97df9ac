"""What a running daemon reports about itself: kept with its heartbeat in the job log, read back
by `mattectl status` and `mattectl models list`.

Plain dataclasses that import nothing from mattectl, so that the backends (which describe their
models), the store (which keeps the JSON) and the readers may all use them. ``to_json`` and
``from_json`` are the one place the report is serialised.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any


@dataclass(frozen=True)
class ModelReport:
    """One model as the daemon sees it. ``warning`` says when it runs on the CPU of a machine
    that has a GPU; ``reason`` why it is not available."""

    available: bool | None = None
    reason: str | None = None
    backend: str | None = None
    isolation: str | None = None
    weights: str | None = None
    loaded: bool | None = None
    device: str | None = None
    precision: str | None = None  # the number format inference runs in (float32, bfloat16...)
    warning: str | None = None


@dataclass(frozen=True)
class DaemonReport:
    config: str | None = None
    paused: dict[str, str] = field(default_factory=dict)  # folder -> why its jobs wait
    models: dict[str, ModelReport] = field(default_factory=dict)
    gpus: tuple[str, ...] = ()
    pending_files: int = 0  # files seen, not yet stable
    workers: int = 0
    unhealthy: str | None = None  # why the daemon is not making progress
    reload_refused: str | None = None  # why the last SIGHUP was refused, until a good one

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None) -> DaemonReport:
        """Tolerant of rows from other versions: missing keys take their defaults, unknown
        keys are ignored."""
        data = _known(cls, json.loads(text) if text else {})
        models = {name: ModelReport(**_known(ModelReport, m))
                  for name, m in (data.pop("models", None) or {}).items()}
        gpus = tuple(data.pop("gpus", None) or ())
        return cls(**data, models=models, gpus=gpus)


def _known(cls: type, data: Any) -> dict[str, Any]:
    names = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in names} if isinstance(data, dict) else {}
