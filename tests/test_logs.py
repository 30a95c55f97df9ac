"""Log lines (logs.py): control characters in what a line quotes are escaped, so a file name
cannot add lines of its own to the log, nor hand journald a priority (``<N>`` at a line's start)."""

from __future__ import annotations

import io
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from mattectl.logs import EscapingFormatter, escape_controls, setup_logging
from mattectl.store.status import JobStatus

from .daemon_process import DaemonProcess
from .support import wait_for

NAME = "a\n<3>fake line.jpg"


@pytest.fixture
def log() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger writing through the daemon's formatter into a string."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(EscapingFormatter("%(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("mattectl.test_logs")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)
    logger.setLevel(logging.NOTSET)
    logger.propagate = True


def test_control_characters_are_escaped() -> None:
    assert escape_controls("a\n<3>b\r\tc\x1b[31md\x7f\x85\u2028é ü") == \
        "a\\n<3>b\\r\\tc\\x1b[31md\\x7f\\x85\\u2028é ü"


def test_a_quoted_name_stays_on_its_line(log: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = log
    logger.info("queued job %d: %s (%s)", 7, NAME, "studio")
    assert stream.getvalue() == \
        "INFO mattectl.test_logs: queued job 7: a\\n<3>fake line.jpg (studio)\n"


def test_a_traceback_keeps_its_lines_and_escapes_the_exception_words(
        log: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = log
    try:
        try:
            raise OSError(f"cannot read {NAME}")
        except OSError as exc:
            raise ValueError(f"job for {NAME} failed") from exc
    except ValueError:
        logger.exception("unexpected error in job %d", 7)
    lines = stream.getvalue().splitlines()
    assert lines[0] == "ERROR mattectl.test_logs: unexpected error in job 7"
    assert lines.count("Traceback (most recent call last):") == 2
    assert any(line.startswith("  File ") for line in lines)
    assert "OSError: cannot read a\\n<3>fake line.jpg" in lines
    assert "ValueError: job for a\\n<3>fake line.jpg failed" in lines
    assert not any(line.startswith(("<3>", "fake line")) for line in lines)


def test_setup_logging_installs_the_escaping_formatter() -> None:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        setup_logging("info")
        assert isinstance(root.handlers[0].formatter, EscapingFormatter)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


@pytest.mark.slow  # a real `mattectl run` with the model in its own process
def test_a_photo_named_with_a_newline_gives_the_daemon_log_no_line_of_its_own(
        daemon: DaemonProcess, small_photo: Path) -> None:
    daemon.start()
    shutil.copyfile(small_photo, daemon.root / "in" / NAME)
    wait_for(lambda: (jobs := daemon.jobs()) and jobs[0].status == JobStatus.DONE,
             timeout=120, what="the job of the photo with a newline in its name")
    assert (daemon.root / "out" / "a\n<3>fake line.png").is_file()
    assert daemon.stop() == 0
    lines = daemon.log_text().splitlines()
    assert not any(line.startswith(("<3>", "fake line")) for line in lines)
    quoting = [line for line in lines if "fake line" in line]
    assert len(quoting) >= 2  # queued, done
    assert all("a\\n<3>fake line." in line for line in quoting)
