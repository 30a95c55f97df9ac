"""Logging set-up for the daemon and the CLI."""

from __future__ import annotations

import faulthandler
import logging
import os
import signal
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


def dump_stacks_on(signum: int) -> None:
    """``kill -<signum> <pid>`` writes every thread's Python stack to stderr (the journal);
    the process goes on. What a stuck daemon is waiting for, without a debugger.

    Not ``faulthandler.register``: its C handler walks every thread's frames while those
    threads run, and a thread that changes its frames under it crashes the process
    (SIGSEGV, seen about once in a few hundred signals on a busy daemon). A Python-level
    handler runs in the main thread between bytecodes, holding the GIL, when no other
    thread can touch its frames. It writes to the raw file descriptor: it takes no lock
    (the main thread it interrupted may hold one) and cannot raise into the interrupted code.
    The cost: a thread that keeps the GIL inside native code delays the dump until it lets go.
    """
    fd = sys.stderr.fileno()

    def handler(received: int, _frame: object) -> None:
        try:
            os.write(fd, f"\n{signal.Signals(received).name}: the stack of every thread "
                         f"(pid {os.getpid()}), most recent call first\n".encode())
            faulthandler.dump_traceback(fd, all_threads=True)
        except OSError:
            pass  # stderr gone: nothing to tell, and the daemon must go on

    signal.signal(signum, handler)
