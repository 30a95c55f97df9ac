"""Logging set-up for the daemon and the CLI."""

from __future__ import annotations

import logging
import os
import sys


def setup_logging(level: str = "info") -> None:
    # journald adds its own timestamps; a terminal wants them.
    under_journal = bool(os.environ.get("JOURNAL_STREAM"))
    fmt = "%(levelname)s %(name)s: %(message)s" if under_journal else \
        "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(fmt))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("apscheduler", "watchdog", "PIL"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
