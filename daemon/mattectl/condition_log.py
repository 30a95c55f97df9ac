"""A lasting condition logged as one line, not one line per tick and thread.

A full state disk makes every job-log write fail: the heartbeat, each worker's claim, the
intake's queueing. Logged as they come, that is hundreds of lines a minute that drown what
matters. A :class:`ConditionLog` says it once when it starts, reminds at most every
``remind_s`` while it lasts, and says once when it clears. Threads share one instance.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable


class ConditionLog:
    """``failed(reason)`` each time the condition is met, ``cleared()`` each time it is not."""

    def __init__(self, logger: logging.Logger, problem: str, recovered: str, *,
                 remind_s: float = 600.0, quiet_s: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._logger = logger
        self._problem = problem  # "job log busy" -> "job log busy (database is locked)"
        self._recovered = recovered  # "job log writable again" -> "... after 42 s"
        self._remind_s = remind_s
        self._quiet_s = quiet_s  # a condition that comes and goes is told once per quiet_s
        self._clock = clock
        self._lock = threading.Lock()
        self.reason: str | None = None
        self._since: float | None = None
        self._told_at: float | None = None
        self._told = False  # whether this spell was logged (then its end is logged too)

    @property
    def active(self) -> bool:
        return self._since is not None

    def failed(self, reason: str) -> None:
        with self._lock:
            now = self._clock()
            if self._since is None:
                self._since, self._told = now, False
            self.reason = reason
            if self._told_at is not None and now - self._told_at < (
                    self._remind_s if self._told else self._quiet_s):
                return
            lasting = now - self._since
            self._told_at, self._told = now, True
        if lasting < 1.0:
            self._logger.warning("%s (%s); logged again every %.0f min while it lasts",
                                 self._problem, reason, self._remind_s / 60)
        else:
            self._logger.warning("%s (%s) for %.0f s now", self._problem, reason, lasting)

    def cleared(self) -> None:
        with self._lock:
            if self._since is None:
                return
            lasted, told = self._clock() - self._since, self._told
            self._since, self.reason, self._told = None, None, False
        if told:
            self._logger.warning("%s after %.0f s", self._recovered, lasted)
