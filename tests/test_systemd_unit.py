"""The shipped unit passes `systemd-analyze verify`, keeps the properties the daemon needs, keeps
its hardening score, and its system call filter lets the daemon and its model work."""

from __future__ import annotations

import configparser
import functools
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mattectl.errors import ExitCode
from mattectl.store.status import JobStatus

from . import seccomp_exec
from .daemon_process import DaemonProcess, write_config
from .support import REPO_ROOT, wait_for

UNIT = REPO_ROOT / "systemd" / "mattectl.service"
# `systemd-analyze security --offline=true` of the unit before its hardening (systemd 252), and
# the most it may score now (it scored 0.6 then; newer systemd versions weigh more settings).
EXPOSURE_BEFORE = 3.6
EXPOSURE_LIMIT = 1.5


def analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        pytest.skip("systemd-analyze is missing (scripts/dev.sh installs it as root)")
    return found


def unit_entries() -> list[tuple[str, str, str]]:
    entries = []
    section = ""
    for line in UNIT.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        entries.append((section, key, value))
    return entries


def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    systemd_analyze = analyze()
    # An image root with the unit, the binaries it names and systemd's own units, so that
    # verify checks our file without installing anything on this machine.
    root = tmp_path / "root"
    shutil.copytree("/usr/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    (root / "etc/systemd/system").mkdir(parents=True)
    shutil.copy(UNIT, root / "etc/systemd/system")
    for _section, key, value in unit_entries():
        if key.startswith("Exec"):
            binary = Path(value.split()[0].lstrip("-@:+!"))
            (root / binary.relative_to("/")).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy("/bin/true", root / binary.relative_to("/"))
    result = subprocess.run([systemd_analyze, "verify", f"--root={root}", "mattectl.service"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout + result.stderr == ""  # no warnings either (unknown keys, typos)


def test_unit_has_what_the_daemon_relies_on() -> None:
    entries = unit_entries()
    service = {k: v for s, k, v in entries if s == "Service"}
    assert service["Type"] == "notify"
    assert service["Restart"] == "on-failure"
    # A damaged job database ends `mattectl run` with this code: no restart loop on it.
    assert service["RestartPreventExitStatus"] == str(int(ExitCode.DATABASE))
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert service["User"] == "mattectl" and service["StateDirectory"] == "mattectl"
    assert "WatchdogSec" in service
    assert "PrivateDevices" not in service  # it would hide /dev/nvidia*
    allowed = [v for s, k, v in entries if k == "DeviceAllow"]
    assert "char-nvidia rw" in allowed and "char-nvidia-uvm rw" in allowed
    assert configparser.ConfigParser(strict=False, interpolation=None).read_string(
        UNIT.read_text()) is None
    # Each would stop the GPU or the models (the unit's comments say why).
    assert "ProcSubset" not in service  # hides /proc/driver/nvidia
    assert "MemoryDenyWriteExecute" not in service  # PyTorch's and TensorFlow's run-time code
    assert service["UMask"] == "0027" and service["SystemCallErrorNumber"] == "EPERM"


def test_unit_exposure_is_lower_than_before_its_hardening() -> None:
    result = subprocess.run([analyze(), "security", "--offline=true", str(UNIT)],
                            capture_output=True, text=True)
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    if found is None and "offline" in result.stderr:
        pytest.skip(f"this systemd-analyze is too old for --offline (systemd 250 or later): "
                    f"{result.stderr.strip()[:200]}")
    assert found is not None, result.stdout + result.stderr
    exposure = float(found.group(1))
    print(f"systemd-analyze security: exposure {exposure} (before the hardening: "
          f"{EXPOSURE_BEFORE})")
    assert exposure <= EXPOSURE_LIMIT < EXPOSURE_BEFORE, result.stdout


@functools.cache
def syscall_group(name: str) -> frozenset[str]:
    """The system calls of a ``@group`` as this systemd knows it, nested groups expanded."""
    listing = subprocess.run([analyze(), "syscall-filter", name], capture_output=True,
                             text=True, check=True).stdout.splitlines()[1:]
    calls: set[str] = set()
    for item in (line.strip() for line in listing):
        if item.startswith("@"):
            calls |= syscall_group(item)
        elif item and not item.startswith("#"):
            calls.add(item)
    return frozenset(calls)


def allowed_syscalls() -> set[str]:
    """What the unit's SystemCallFilter= lines allow: the first lists, each ``~`` line takes
    away (the unit uses no other form)."""
    allowed: set[str] = set()
    for _section, key, value in unit_entries():
        if key == "SystemCallFilter":
            names = value.removeprefix("~").split()
            calls = set().union(*(syscall_group(n) if n.startswith("@") else {n} for n in names))
            allowed = allowed - calls if value.startswith("~") else allowed | calls
    return allowed


@pytest.mark.slow  # a real `mattectl run` with the model in its own process
def test_the_daemon_and_its_model_work_under_the_units_system_call_filter(
        tmp_path: Path, small_photo: Path) -> None:
    if seccomp_exec.libseccomp() is None:
        pytest.skip("libseccomp is missing: the filter cannot be applied outside systemd")
    allowed = tmp_path / "allowed-syscalls"
    allowed.write_text("\n".join(sorted(allowed_syscalls())))
    assert "sched_setaffinity" not in allowed.read_text()  # @resources is refused
    root = tmp_path / "root"
    root.mkdir()
    write_config(root)
    daemon = DaemonProcess(root, prefix=[sys.executable, seccomp_exec.__file__, str(allowed)])
    try:
        daemon.start()
        assert "Seccomp:\t2" in Path(f"/proc/{daemon.proc.pid}/status").read_text()
        shutil.copyfile(small_photo, root / "in" / "photo.jpg")
        wait_for(lambda: (jobs := daemon.jobs()) and jobs[0].status == JobStatus.DONE,
                 timeout=120, what="the photo's cutout under the filter")
        assert (root / "out" / "photo.png").is_file()
        assert daemon.stop() == 0
    finally:
        daemon.kill_if_running()
