"""Learned latencies as facts for the rules: a :class:`~mattectl.rules.latency.LatencyModel`
rebuilt from measured jobs at most every ``refresh_s`` seconds, so deciding costs no query per
photo."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from mattectl.rules.latency import LatencyModel, Sample

logger = logging.getLogger(__name__)

SampleSource = Callable[[int], Sequence[Sample]]  # newest first, at most the given count


class LatencyTracker:
    """Thread-safe; ``source`` is the job log's ``recent_inference`` (None: priors only); the
    clock is injectable for tests."""

    def __init__(self, source: SampleSource | None, *, refresh_s: float = 30.0,
                 limit: int = 2000, clock: Callable[[], float] = time.monotonic) -> None:
        self.source = source
        self.refresh_s = refresh_s
        self.limit = limit
        self._clock = clock
        self._lock = threading.Lock()
        self._model: LatencyModel | None = None
        self._built_at = 0.0

    def current(self) -> LatencyModel:
        with self._lock:
            now = self._clock()
            if self._model is None or now - self._built_at >= self.refresh_s:
                samples = self.source(self.limit) if self.source else []
                self._model = LatencyModel(samples)
                self._built_at = now
                logger.debug("latency model rebuilt from %d job(s)", len(samples))
            return self._model
