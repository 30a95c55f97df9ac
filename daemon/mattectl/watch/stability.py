"""Decides when a file has finished arriving. Pure: the caller brings observations and the clock.

A file is released once its size and modification time have stayed the same for ``quiet_s``
seconds. A copy that stalls for longer than that is indistinguishable from a finished one, so the
quiet time is configurable per folder (network mounts want more). A file the caller knows to be
finished (its writer closed it and its bytes are a whole image, see
:mod:`mattectl.watch.complete`) is released at the next look, provided it has not changed since.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass


@dataclass(frozen=True)
class FileState:
    size: int
    mtime_ns: int


@dataclass
class _Pending:
    state: FileState
    since: float  # when ``state`` was first seen


class StabilityTracker:
    def __init__(self, quiet_s: float) -> None:
        self.quiet_s = quiet_s
        self._pending: dict[Hashable, _Pending] = {}

    def __len__(self) -> int:
        return len(self._pending)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._pending

    def observe(self, key: Hashable, state: FileState, now: float, *,
                finished: bool = False) -> None:
        """Record what a file looks like now; a change restarts its quiet period. A
        ``finished`` file is due at once: its quiet period counts as served, in this state."""
        pending = self._pending.get(key)
        if finished:
            self._pending[key] = _Pending(state, now - self.quiet_s)
        elif pending is None or pending.state != state:
            self._pending[key] = _Pending(state, now)

    def due(self, now: float) -> list[Hashable]:
        """Files whose quiet period has elapsed since they were last seen changing."""
        return [key for key, p in self._pending.items() if now - p.since >= self.quiet_s]

    def settle(self, key: Hashable, state: FileState, now: float) -> bool:
        """Check a due file again: True (and forgotten) if unchanged for the quiet period."""
        self.observe(key, state, now)
        if now - self._pending[key].since >= self.quiet_s:
            del self._pending[key]
            return True
        return False

    def discard(self, key: Hashable) -> None:
        self._pending.pop(key, None)

    def next_deadline(self) -> float | None:
        """When the next file could become due (for sleeping just long enough)."""
        if not self._pending:
            return None
        return min(p.since for p in self._pending.values()) + self.quiet_s
