"""The pause book: causes held and released per folder, probes that resume folders by themselves.
The probes here look at a real file: the condition is "the flag file exists"."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from mattectl.jobs.pauses import INPUT, MODEL, OUTPUT, FolderPauses


def flag_probe(flag: Path, words: str) -> Callable[[], str | None]:
    return lambda: words if flag.exists() else None


def test_a_folder_resumes_when_its_probe_finds_the_condition_gone(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="mattectl.jobs.pauses")
    flag = tmp_path / "disk-full"
    flag.touch()
    book = FolderPauses()
    assert book.hold("studio", OUTPUT, "output folder /o is full", flag_probe(flag, "full"))
    assert not book.hold("studio", OUTPUT, "output folder /o is full", flag_probe(flag, "full"))
    assert "studio" in book and "other" not in book
    assert book.recheck() == []  # still full: kept, with the probe's newest words
    assert book.reasons() == {"studio": "full"}
    flag.unlink()
    assert book.recheck() == ["studio"]
    assert "studio" not in book and book.reasons() == {}
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "folder studio is paused (photos are queued, not processed): output folder /o is full",
        "folder studio resumes: no longer true: full",
    ]


def test_each_cause_is_released_on_its_own(tmp_path: Path) -> None:
    book = FolderPauses()
    book.hold("studio", MODEL, "model u2net is not installed")
    book.hold("studio", INPUT, "drop folder /i is missing", flag_probe(tmp_path / "x", "gone"))
    assert book.reasons() == {"studio": "model u2net is not installed; "
                                        "drop folder /i is missing"}
    assert book.recheck() == []  # the input came back, but the model is still missing
    assert book.reasons() == {"studio": "model u2net is not installed"}
    assert not book.release("studio", OUTPUT)  # never held for that
    assert book.release("studio", MODEL, "its model can run")
    assert "studio" not in book


def test_a_probe_cannot_release_a_newer_pause_for_the_same_cause(tmp_path: Path) -> None:
    book = FolderPauses()
    flag = tmp_path / "full"

    def probe() -> str | None:
        # While the probe of the first pause runs, a worker meets the condition again.
        book.hold("studio", OUTPUT, "full again", flag_probe(flag, "full again"))
        return None

    flag.touch()
    book.hold("studio", OUTPUT, "full", probe)
    assert book.recheck() == []
    assert book.reasons() == {"studio": "full again"}
    book.clear()
    assert book.reasons() == {}
