"""Output that fits the terminal: the pieces of mattectl.cli.output, then `jobs list`, `models
list`, `rules explain` and error messages through the real CLI, in an 80-column pseudo-terminal
and through a pipe."""

from __future__ import annotations

import io
import json
import os
import re
import socket
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from rich.console import Console

from mattectl import __version__
from mattectl.cli.output import (
    Column,
    Fit,
    layout,
    print_error,
    shorten_left,
    wrap_message,
    wrap_text,
)
from mattectl.report import DaemonReport, ModelReport
from mattectl.store.repository import JobRepository, JobResult, NewJob

from .clikit import ANSI, mattectl, mattectl_tty

LONG_ERROR = ("wedding/ceremony/DSC_0042.jpg: not an image (cannot identify image file); the "
              "original is kept where it was and never deleted")


def split_after_a_slash(word: str, screen: str) -> bool:
    """Whether ``word`` is on the screen split across two lines right after one of its ``/``."""
    return any(re.search(re.escape(word[:i + 1]) + r" *\n *" + re.escape(word[i + 1:]), screen)
               for i, c in enumerate(word) if c == "/")


def words_whole(screen: str, piped: str, width: int = 80) -> None:
    """Every word of the piped text is on the screen whole (a path at most split after a
    ``/``), and no line of the screen is wider than the terminal. (Numbers may differ between
    two runs: they are timings.)"""
    assert max(map(len, screen.splitlines())) <= width, screen
    cut = {w for w in set(piped.split()) - set(screen.split())
           if len(w) < width - 8 and not split_after_a_slash(w, screen) and not w.isdigit()}
    assert not cut, f"cut on the screen: {sorted(cut)}\n{screen}"


def test_shorten_left_keeps_the_end_of_a_path() -> None:
    path = "/srv/studio/out/wedding/ceremony/DSC_0042.png"
    assert shorten_left(path, 80) == path
    short = shorten_left(path, 24)
    assert short == "…/ceremony/DSC_0042.png" and len(short) <= 24
    assert shorten_left("no-slashes-at-all-here.png", 10) == "…-here.png"


def test_layout_keeps_key_columns_and_leaves_out_optional_ones_least_useful_first() -> None:
    columns = [Column("id"), Column("status"), Column("path", Fit.PATH, min_width=10),
               Column("seldom", drop=2), Column("often", drop=1)]
    rows = [["1", "done", "/a/very/long/path/to/a/file.png", "x" * 10, "y" * 10]]
    assert layout(columns, rows, 200) == ([0, 1, 2, 3, 4], [2, 6, 31, 10, 10])
    shown, widths = layout(columns, rows, 36)
    assert shown == [0, 1, 2, 4]  # "seldom" went first
    assert widths[:2] == [2, 6] and sum(widths) + 2 * (len(widths) - 1) <= 36
    shown, widths = layout(columns, rows, 20)
    assert shown == [0, 1, 2] and widths == [2, 6, 8]  # the path gets what is left


def test_wrap_message_breaks_at_spaces_only_and_indents_continuations() -> None:
    path = "/srv/photo-studio/incoming/wedding-of-alexandra-and-maximilian/ceremony"
    message = f"c.toml: 1 problem(s)\n  watch[0].input: folder does not exist: {path}"
    assert wrap_message(message, None) == message
    assert wrap_message(message, 80).splitlines() == [
        "c.toml: 1 problem(s)", "  watch[0].input: folder does not exist:", f"      {path}"]


def test_wrap_text_splits_only_a_word_too_long_and_a_path_after_a_slash() -> None:
    assert wrap_text("a photo: not an image", 10) == "a photo:\nnot an\nimage"
    assert wrap_text("wedding/ceremony/DSC_0042.jpg: not an image", 24) == \
        "wedding/ceremony/\nDSC_0042.jpg: not an\nimage"
    assert wrap_text("abcdefghij", 4) == "abcd\nefgh\nij"  # no / : cut, as a last resort


@pytest.mark.parametrize("terminal", [True, False])
def test_print_error_never_reads_markup_and_wraps_only_on_a_terminal(terminal: bool) -> None:
    out = io.StringIO()
    console = Console(file=out, width=60, force_terminal=terminal, color_system=None)
    message = ("e.toml: 1 problem(s)\n  watch: no [[watch]] folder: the daemon would watch "
               "nothing; add a [[watch]] table")
    print_error(console, message)
    expected = [f"error: {line}" if i == 0 else line
                for i, line in enumerate(message.splitlines())]
    if terminal:
        expected = ["error: e.toml: 1 problem(s)",
                    "  watch: no [[watch]] folder: the daemon would watch",
                    "      nothing; add a [[watch]] table"]
    assert ANSI.sub("", out.getvalue()).splitlines() == expected


@pytest.fixture
def jobs_config(tmp_path: Path) -> Path:
    """A config and a job log with a delivered cutout deep in the output tree, a failure with
    a long reason and a queued photo."""
    config = tmp_path / "mattectl.toml"
    (tmp_path / "in").mkdir()
    config.write_text('[daemon]\nstate_dir = "state"\n[[watch]]\nname = "studio"\n'
                      'input = "in"\noutput = "out"\n')
    repo = JobRepository.open(tmp_path / "state" / "jobs.sqlite3")
    try:
        for n, rel in enumerate(("wedding/ceremony/DSC_0041.jpg", "wedding/ceremony/DSC_0042.jpg",
                                 "portraits/DSC_0043.jpg")):
            repo.add(NewJob("studio", tmp_path / "in" / rel, rel, f"{n:02d}" * 32, 1, 1))
        done = repo.claim("w", ["studio"])
        assert done is not None
        repo.finish(done.id, "w", JobResult(
            model="u2netp", inference_ms=412.0, total_ms=905.0,
            output_path=tmp_path / "out" / "wedding" / "ceremony" / "DSC_0041.png"))
        failed = repo.claim("w", ["studio"])
        assert failed is not None
        repo.fail(failed.id, "w", LONG_ERROR, JobResult(model="u2netp"))
    finally:
        repo.close()
    return config


@pytest.mark.slow  # the real CLI in subprocesses
def test_jobs_list_fits_80_columns_and_is_whole_when_piped(jobs_config: Path) -> None:
    code, screen = mattectl_tty("jobs", "list", "--config", jobs_config)
    piped = mattectl("jobs", "list", "--config", jobs_config)
    assert code == 0 and piped.returncode == 0, screen + piped.stderr
    output = str(jobs_config.parent / "out" / "wedding" / "ceremony" / "DSC_0041.png")
    # Piped: a header and one line per job, every column whole.
    header, *rows = piped.stdout.splitlines()
    assert header.split() == ["id", "folder", "file", "status", "model", "inference", "total",
                              "finished", "error", "/", "output"]
    assert len(rows) == 3 and "…" not in piped.stdout
    by_status = {row.split()[3]: row for row in rows}
    assert output in by_status["done"] and "412 ms" in by_status["done"]
    assert by_status["failed"].endswith(LONG_ERROR)
    # On the terminal: id, folder, file and status whole on each job's first line; the output
    # path shortened from the left, the reason wrapped at spaces; the timings left out.
    lines = screen.splitlines()
    assert lines[0].split()[:4] == ["id", "folder", "file", "status"]
    assert "inference" not in lines[0]
    starts = sorted(line.split()[1:4] for line in lines[1:] if line[:1].isdigit())
    assert starts == [["studio", "portraits/DSC_0043.jpg", "queued"],
                      ["studio", "wedding/ceremony/DSC_0041.jpg", "done"],
                      ["studio", "wedding/ceremony/DSC_0042.jpg", "failed"]]
    [shortened] = [w for w in screen.split() if w.endswith("/DSC_0041.png")]
    assert shortened.startswith("…/") and output.endswith(shortened[1:])
    words_whole(screen, LONG_ERROR)
    as_json = json.loads(mattectl("jobs", "list", "--json", "--config", jobs_config).stdout)
    assert sorted(j["status"] for j in as_json) == ["done", "failed", "queued"]


@pytest.mark.slow  # the real CLI in subprocesses
def test_models_list_fits_80_columns_and_is_whole_when_piped(tmp_path: Path) -> None:
    config = tmp_path / "mattectl.toml"
    config.write_text('[daemon]\nstate_dir = "state"\n[models]\ndir = "models"\n')
    code, screen = mattectl_tty("models", "list", "--config", config)
    piped = mattectl("models", "list", "--config", config)
    assert code == 0 and piped.returncode == 0, screen + piped.stderr
    lines = screen.splitlines()
    assert max(map(len, lines)) <= 80, screen
    assert lines[0].split()[:4] == ["model", "from", "files", "checksum"]
    by_model = {line.split()[0]: line.split() for line in lines[1:5]}
    assert by_model["u2netp"][1] == "package" and by_model["u2netp"][3] == "shipped"
    assert by_model["u2netp"][2].endswith("/u2netp_bnfolded_fp16.pth")  # the file's name whole
    assert by_model["u2net_human_seg"][1:5] == ["-", "not", "installed", "missing"]
    rows = {line.split()[0]: line for line in piped.stdout.splitlines()[1:5]}
    shipped = Path(json.loads(mattectl("models", "list", "--json", "--config",
                                       config).stdout)[0]["location"])
    assert shipped.name == "u2netp_bnfolded_fp16.pth"
    assert str(shipped) in rows["u2netp"] and "2.5 MB" in rows["u2netp"]


@pytest.mark.slow  # runs the subject probe (u2netp) in a child process
def test_rules_explain_wraps_at_spaces_at_80_columns(tmp_path: Path) -> None:
    photo = tmp_path / "portrait.png"
    yy, xx = np.mgrid[:480, :640]
    subject = ((xx - 320) / 120) ** 2 + ((yy - 260) / 200) ** 2 < 1
    Image.fromarray(np.where(subject, 230, 30).astype(np.uint8)).convert("RGB").save(photo)
    config = tmp_path / "mattectl.toml"
    config.write_text('[daemon]\nstate_dir = "state"\n[models]\ndir = "models"\nthreads = 1\n')
    code, screen = mattectl_tty("rules", "explain", photo, "--config", config)
    piped = mattectl("rules", "explain", photo, "--config", config)
    assert code == 0 and piped.returncode == 0, screen + piped.stderr
    assert screen.splitlines()[0].startswith("decision  u2netp")
    assert any(len(line) > 80 for line in piped.stdout.splitlines())  # whole lines in a pipe
    words_whole(screen, piped.stdout)


@pytest.mark.slow  # the real CLI in subprocesses
def test_an_error_is_wrapped_at_spaces_on_a_terminal_and_whole_in_a_pipe(tmp_path: Path) -> None:
    folder = "/srv/photo-studio/incoming/wedding-of-alexandra-and-maximilian/ceremony"
    config = tmp_path / "mattectl.toml"
    config.write_text(f'[[watch]]\nname = "studio"\ninput = "{folder}"\noutput = "out"\n')
    code, screen = mattectl_tty("config", "check", config)
    assert code == 2
    assert f"      {folder}" in screen.splitlines()  # the path whole, on a line of its own
    # Only a word longer than the terminal (this test's own config path) makes a longer line.
    assert all(len(line) <= 80 or len(line.split()) == 1 for line in screen.splitlines())
    piped = mattectl("config", "check", config)
    assert piped.returncode == 2
    assert piped.stderr.splitlines() == [
        f"error: {config}: 1 problem(s)", f"  watch[0].input: folder does not exist: {folder}"]


@pytest.mark.slow  # the real CLI in subprocesses
def test_an_error_message_is_printed_as_it_is_never_read_as_markup(tmp_path: Path) -> None:
    config = tmp_path / "mattectl.toml"
    config.write_text('[daemon]\nworkers = 1\n')
    piped = mattectl("config", "check", config)
    assert piped.returncode == 2
    assert "watch: no [[watch]] folder: the daemon would watch nothing; add a [[watch]] table" \
        in piped.stderr


@pytest.mark.slow  # the real CLI in subprocesses
def test_status_fits_80_columns_and_is_whole_when_piped(jobs_config: Path) -> None:
    host = socket.gethostname()
    models = {"u2netp": ModelReport(available=True, backend="u2net", loaded=True, device="cpu",
                                    precision="bfloat16")}
    repo = JobRepository.open(jobs_config.parent / "state" / "jobs.sqlite3")
    try:  # this test's own process stands in for a live daemon
        repo.register_daemon(f"{host}:{os.getpid()}", host, os.getpid(), __version__,
                             DaemonReport(config=str(jobs_config), models=models, workers=2))
    finally:
        repo.close()
    code, screen = mattectl_tty("status", "--config", jobs_config)
    piped = mattectl("status", "--config", jobs_config)
    assert code == 0 and piped.returncode == 0, screen + piped.stderr
    drop = str(jobs_config.parent / "in")
    # Piped: every column whole, paths in full.
    assert "…" not in piped.stdout
    lines = piped.stdout.splitlines()
    folder_header = next(i for i, line in enumerate(lines) if line.startswith("folder "))
    assert lines[folder_header].split() == ["folder", "model", "queued", "waiting", "running",
                                            "done", "failed", "input", "output"]
    assert lines[folder_header + 1].split()[:7] == ["studio", "u2netp", "1", "0", "0", "1", "1"]
    assert drop in lines[folder_header + 1]
    model_row = next(line for line in lines if line.startswith("u2netp "))
    assert "bfloat16" in model_row and "loaded" in model_row
    # At 80 columns: the headers and counts whole (they were cut to "waiti…", "runni…"), the
    # drop folder shortened from the left.
    assert max(map(len, screen.splitlines())) <= 80, screen
    words = screen.split()
    for header in ("queued", "waiting", "running", "done", "failed", "precision", "state"):
        assert header in words, screen
    shown = [w for w in words if w.endswith("/in")]
    assert shown and all(w == drop or (w.startswith("…") and drop.endswith(w[1:]))
                         for w in shown), screen
