"""The output of an inference process, read without a thread of its own.

The child's stdout and stderr share one pipe. The daemon reads it whenever it waits for the child
(see ``IsolatedBackend._wait``) and at the child's end, copies every line to its own stderr (the
journal), and keeps the last lines: when the child dies, they say why (TensorFlow writes its
CHECK failures there just before aborting). Between requests the pipe's buffer holds what the
child writes; an idle model writes next to nothing.
"""

from __future__ import annotations

import os
import re
import sys
from collections import deque

# Most telling first: a glog FATAL line (TensorFlow's CHECK failures), a Python exception, a
# glog ERROR line.
_TELLING = (re.compile(r"^F\d{4} "), re.compile(r"Error|Exception|Traceback"),
            re.compile(r"^E\d{4} "))


def last_words(lines: list[str]) -> str:
    """The line of a dying process's output that says the most about its end."""
    for pattern in _TELLING:
        for line in reversed(lines):
            if pattern.search(line):
                return line.strip()[:300]
    return lines[-1].strip()[:300] if lines else ""


class ChildOutput:
    def __init__(self, fd: int) -> None:
        os.set_blocking(fd, False)
        self.fd = fd
        self.tail: deque[str] = deque(maxlen=40)
        self.count = 0  # lines seen so far
        self.closed = False
        self._partial = b""

    def fileno(self) -> int:
        return self.fd

    def drain(self) -> None:
        """Copy whatever the child has written so far; notices the end of the pipe."""
        while not self.closed:
            try:
                chunk = os.read(self.fd, 1 << 16)
            except BlockingIOError:
                return
            if not chunk:
                self._emit(self._partial, final=True)
                self.close()
                return
            self._emit(self._partial + chunk)

    def _emit(self, data: bytes, final: bool = False) -> None:
        *lines, self._partial = data.split(b"\n")
        if final and self._partial:
            lines.append(self._partial)
            self._partial = b""
        for raw in lines:
            line = raw.decode(errors="replace") + "\n"
            sys.stderr.write(line)
            self.tail.append(line)
            self.count += 1

    def since(self, mark: int) -> list[str]:
        """The lines that came after the first ``mark`` lines (as many as are kept)."""
        new = self.count - mark
        return list(self.tail)[-new:] if new > 0 else []

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            os.close(self.fd)
