"""Job status: a closed enum and the one table of allowed transitions.

It lives beside :class:`~mattectl.store.repository.JobRepository`, which enforces the table (also
in the UPDATE's WHERE clause); the worker, the intake and the CLI import it from here."""

from __future__ import annotations

from enum import StrEnum


class JobStatus(StrEnum):
    QUEUED = "queued"  # waiting for a worker (possibly until ``available_at``, for a retry)
    RUNNING = "running"  # claimed by exactly one worker
    DONE = "done"  # the cutout was written
    FAILED = "failed"  # gave up; ``error`` says why


TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.QUEUED: frozenset({JobStatus.RUNNING}),
    # back to QUEUED: a retry after a transient error, a shutdown, or a crash found at start-up
    JobStatus.RUNNING: frozenset({JobStatus.DONE, JobStatus.FAILED, JobStatus.QUEUED}),
    JobStatus.DONE: frozenset({JobStatus.QUEUED}),  # `mattectl jobs retry`: process it again
    JobStatus.FAILED: frozenset({JobStatus.QUEUED}),  # `mattectl jobs retry`
}

TERMINAL = frozenset({JobStatus.DONE, JobStatus.FAILED})


def sources(target: JobStatus) -> frozenset[JobStatus]:
    """Every status from which ``target`` may be entered."""
    return frozenset(src for src, targets in TRANSITIONS.items() if target in targets)


def allowed(source: JobStatus, target: JobStatus) -> bool:
    return target in TRANSITIONS[source]
