"""Logging set-up for the daemon and the CLI."""

from __future__ import annotations

import faulthandler
import logging
import os
import re
import signal
import sys
import traceback
from types import TracebackType

# C0 and C1 controls, DEL, and the Unicode line and paragraph separators.
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


def escape_controls(text: str) -> str:
    """``text`` on one line: a newline becomes ``\\n``, other control characters ``\\xNN``
    (``\\uNNNN`` above 0xff). A file name such as ``"a\\n<3>x.jpg"`` cannot start a log line
    of its own, nor hand journald a priority (a ``<N>`` at the start of a line)."""
    return _CONTROLS.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return _NAMED.get(char) or (f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}")


class EscapingFormatter(logging.Formatter):
    """Every log line escapes control characters in what it quotes: the message with its
    arguments (file names come from photographers) and the text of a logged exception. The
    lines of a traceback stay lines: only the exception's own words are escaped."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return escape_controls(super().formatMessage(record))

    def formatException(self, ei: ExcInfo) -> str:
        tb = traceback.TracebackException(*ei)
        for exc in _chain(tb):
            words = exc.format_exception_only
            exc.format_exception_only = (  # the one part of a traceback that quotes data
                lambda words=words, **how: (escape_controls(line.rstrip("\n")) + "\n"
                                            for line in words(**how)))
        return "".join(tb.format()).rstrip("\n")


def _chain(tb: traceback.TracebackException) -> list[traceback.TracebackException]:
    """``tb`` and every exception it reports with it (causes, contexts, a group's members)."""
    found: list[traceback.TracebackException] = []
    todo: list[traceback.TracebackException | None] = [tb]
    while todo:
        exc = todo.pop()
        if exc is not None and all(exc is not seen for seen in found):
            found.append(exc)
            todo += [exc.__cause__, exc.__context__, *(exc.exceptions or ())]
    return found


def setup_logging(level: str = "info") -> None:
    # journald adds its own timestamps; a terminal wants them.
    under_journal = bool(os.environ.get("JOURNAL_STREAM"))
    fmt = "%(levelname)s %(name)s: %(message)s" if under_journal else \
        "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(EscapingFormatter(fmt))
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
