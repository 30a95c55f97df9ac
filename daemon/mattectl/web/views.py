"""What the templates show: jobs, times and decisions put into words, and the templates' setup."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from importlib import resources
from typing import Any

import jinja2

from mattectl.overview import ModelOverview, when
from mattectl.rules.report import describe
from mattectl.store.repository import Job
from mattectl.store.status import JobStatus

STAGES = (("decode", "decode_ms"), ("inference", "inference_ms"),
          ("encode", "encode_ms"), ("of which edges", "refine_ms"), ("job log", "db_ms"),
          ("total", "total_ms"))


def templates() -> jinja2.Environment:
    """Autoescaped: a file name or a failure's reason is text, never markup."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(resources.files("mattectl.web") / "templates")),
        autoescape=True, trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    env.filters["when"] = when
    env.filters["ms"] = ms
    return env


def ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value / 1000:.1f} s" if value >= 10_000 else f"{value:.0f} ms"


def stages(job: Job) -> list[tuple[str, str]]:
    """``(stage, time)`` for the stages the job measured (edges are part of encode)."""
    return [(label, ms(getattr(job, name))) for label, name in STAGES
            if getattr(job, name) is not None]


def rule_of(job: Job) -> str | None:
    """The rule that chose the model, as ``rule 'x' (preset)``; None for a fixed model."""
    decision = job.decision or {}
    if not decision:
        return None
    if decision.get("blocked"):
        return f"blocked: {decision['blocked']}"
    rule = f"rule '{decision['rule']}'" if decision.get("rule") else "last resort"
    return f"{rule} of {decision.get('preset') or 'preset'}"


def decision_rows(job: Job) -> list[tuple[str, str]]:
    return describe(job.decision) if job.decision else []


def model_state(model: ModelOverview) -> str:
    return ("missing" if model.available is False else
            "loaded" if model.loaded else "idle" if model.available else "-")


@dataclass(frozen=True)
class Search:
    """A job search from the page's form; every field may be empty."""

    name: str = ""
    folder: str = ""
    status: str = ""
    day: str = ""  # YYYY-MM-DD, the server's local day the job was queued

    @classmethod
    def of(cls, params: Any) -> Search:
        return cls(*(str(params.get(key, "")).strip()[:200]
                     for key in ("name", "folder", "status", "day")))

    @property
    def statuses(self) -> list[JobStatus] | None:
        return [JobStatus(self.status)] if self.status in set(JobStatus) else None

    def bounds(self) -> tuple[datetime | None, datetime | None]:
        """The UTC instants the local ``day`` starts and ends; Nones without a valid day."""
        try:
            day = date.fromisoformat(self.day)
        except ValueError:
            return None, None
        start = datetime.combine(day, time()).astimezone()
        return start.astimezone(UTC), (start + timedelta(days=1)).astimezone(UTC)

    @property
    def empty(self) -> bool:
        return not (self.name or self.folder or self.statuses or self.bounds()[0])
