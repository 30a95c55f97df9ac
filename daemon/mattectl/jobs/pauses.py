"""Folders whose jobs are held: queued, not claimed, not failed, until the cause clears.

A folder may be paused for several causes at once, each with its reason: a model that cannot run
(released by the daemon's model check), an output folder that is full or cannot be written, a
drop folder that cannot be read (each released by its probe, see :mod:`mattectl.jobs.conditions`,
which :meth:`FolderPauses.recheck` runs periodically). Thread-safe: workers hold, the scheduler
rechecks, ``mattectl status`` reads the reasons through the daemon's report.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

logger = logging.getLogger(__name__)

MODEL = "model"
OUTPUT = "output"
INPUT = "input"


@dataclass(frozen=True, eq=False)
class Pause:
    reason: str
    # None while the condition lasts, the reason otherwise; None: released by its owner.
    probe: Callable[[], str | None] | None = None


class FolderPauses:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[str, dict[str, Pause]] = {}  # folder -> cause -> pause

    def __contains__(self, folder: object) -> bool:
        with self._lock:
            return folder in self._held

    def hold(self, folder: str, cause: str, reason: str,
             probe: Callable[[], str | None] | None = None) -> bool:
        """Pause ``folder`` for ``cause``; True when it was not yet paused for it."""
        with self._lock:
            causes = self._held.setdefault(folder, {})
            new = cause not in causes
            causes[cause] = Pause(reason, probe)
        if new:
            logger.error("folder %s is paused (photos are queued, not processed): %s", folder,
                         reason)
        return new

    def release(self, folder: str, cause: str, why: str | None = None, *,
                only: Pause | None = None) -> bool:
        """End the pause of ``folder`` for ``cause`` (only when it is still ``only``, if given);
        True when it was paused for it."""
        with self._lock:
            causes = self._held.get(folder, {})
            pause = causes.get(cause)
            if pause is None or (only is not None and pause is not only):
                return False
            del causes[cause]
            if not causes:
                del self._held[folder]
            still = bool(causes)
        logger.info("folder %s %s: %s", folder, "is still paused" if still else "resumes",
                    why or f"no longer true: {pause.reason}")
        return True

    def recheck(self) -> list[str]:
        """Run every pause's probe; release those whose condition cleared, keep the newest words
        for the others. Returns the folders that resumed."""
        with self._lock:
            probed = [(folder, cause, pause) for folder, causes in self._held.items()
                      for cause, pause in causes.items() if pause.probe is not None]
        resumed = []
        for folder, cause, pause in probed:
            assert pause.probe is not None
            problem = pause.probe()  # outside the lock: file I/O
            if problem is None:
                if self.release(folder, cause, only=pause) \
                        and folder not in self:
                    resumed.append(folder)
            elif problem != pause.reason:
                with self._lock:
                    causes = self._held.get(folder, {})
                    if causes.get(cause) is pause:
                        causes[cause] = Pause(problem, pause.probe)
        return resumed

    def reasons(self) -> dict[str, str]:
        """Folder -> why its jobs wait (several causes joined)."""
        with self._lock:
            return {folder: "; ".join(p.reason for p in causes.values())
                    for folder, causes in self._held.items()}

    def clear(self) -> None:
        with self._lock:
            self._held.clear()
