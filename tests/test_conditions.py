"""The folder probes on real filesystems: a full tmpfs, a read-only mount, folders whose modes
shut the prober out."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from mattectl.errors import OutputError
from mattectl.jobs.conditions import folder_wide, input_problem, os_error_of, output_problem

from .support import AS_ROOT, CAN_DENY_ACCESS, REPO_ROOT, WITHOUT_DAC, fill_filesystem


def test_a_full_output_disk_is_named_and_found_again_once_freed(
        small_tmpfs: Callable[..., Path], tmp_path: Path) -> None:
    out = small_tmpfs(tmp_path / "out", "size=256k")
    filler = fill_filesystem(out)
    problem = output_problem(out, 20_000)
    assert problem is not None
    assert problem.startswith(f"output folder {out} is full (No space left on device; ")
    filler.unlink()
    assert output_problem(out, 20_000) is None
    assert output_problem(out, 10_000_000) is not None  # room for 256 KB, not for 10 MB
    assert list(out.iterdir()) == []  # the probe's file is gone each time


def test_a_read_only_output_is_named(small_tmpfs: Callable[..., Path], tmp_path: Path) -> None:
    out = small_tmpfs(tmp_path / "out", "size=256k", "ro")
    assert output_problem(out, 1000) == \
        f"output folder {out} is read-only (Read-only file system)"


def probe_without_dac(call: str) -> str | None:
    """Run a probe in a process that file modes apply to (see support.WITHOUT_DAC)."""
    code = f"import json; from mattectl.jobs.conditions import *; print(json.dumps({call}))"
    done = subprocess.run([*WITHOUT_DAC, sys.executable, "-c", code], capture_output=True,
                          text=True, check=True,
                          env={**os.environ, "PYTHONPATH": str(REPO_ROOT / "daemon")})
    return json.loads(done.stdout)


@pytest.mark.skipif(not CAN_DENY_ACCESS, reason="as root, modes count only without "
                    "CAP_DAC_OVERRIDE, and setpriv (util-linux) is missing to drop it")
def test_folders_whose_modes_shut_mattectl_out(tmp_path: Path) -> None:
    out, inbox = tmp_path / "out", tmp_path / "in"
    out.mkdir()
    inbox.mkdir()
    (inbox / "a.jpg").write_bytes(b"photo")
    try:
        out.chmod(0o555)
        assert probe_without_dac(f"output_problem(__import__('pathlib').Path('{out}'), 10)") \
            == f"output folder {out} is not writable by mattectl (Permission denied)"
        for mode in (0o000, 0o444, 0o111):  # no access; listing without search; the reverse
            inbox.chmod(mode)
            assert probe_without_dac(f"input_problem(__import__('pathlib').Path('{inbox}'))") \
                == f"drop folder {inbox} is not readable by mattectl (Permission denied)", mode
    finally:
        out.chmod(0o755)
        inbox.chmod(0o755)
    assert output_problem(out, 10) is None and input_problem(inbox) is None
    assert list(out.iterdir()) == []


def test_a_missing_drop_folder_and_an_unreadable_photo(tmp_path: Path) -> None:
    assert input_problem(tmp_path / "gone") == \
        f"drop folder {tmp_path / 'gone'} is missing (No such file or directory)"
    inbox = tmp_path / "in"
    inbox.mkdir()
    assert input_problem(inbox) is None  # empty is fine
    photo = inbox / "a.jpg"
    photo.write_bytes(b"x")
    photo.chmod(0)  # one photo nobody may read is that photo's problem, not the folder's
    assert input_problem(inbox) is None
    assert AS_ROOT or not os.access(photo, os.R_OK)


def test_which_errors_are_worth_a_probe() -> None:
    def raised(code: int) -> OutputError:
        try:
            try:
                raise OSError(code, os.strerror(code))
            except OSError as exc:
                raise OutputError(f"cannot write: {exc.strerror}") from exc
        except OutputError as out:
            return out

    for code in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM):
        assert folder_wide(raised(code)), code
    for code in (errno.ENAMETOOLONG, errno.EIO, errno.ENOTDIR):
        assert not folder_wide(raised(code)), code
    assert os_error_of(raised(errno.ENOSPC)).errno == errno.ENOSPC
    assert os_error_of(OutputError("no cause")) is None
