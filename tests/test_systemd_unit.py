"""The shipped unit passes `systemd-analyze verify` and keeps the properties the daemon needs."""

from __future__ import annotations

import configparser
import shutil
import subprocess
from pathlib import Path

import pytest

from .support import REPO_ROOT

UNIT = REPO_ROOT / "systemd" / "mattectl.service"


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
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is missing (scripts/dev.sh installs it as root)")
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
    result = subprocess.run([analyze, "verify", f"--root={root}", "mattectl.service"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout + result.stderr == ""  # no warnings either (unknown keys, typos)


def test_unit_has_what_the_daemon_relies_on() -> None:
    entries = unit_entries()
    service = {k: v for s, k, v in entries if s == "Service"}
    assert service["Type"] == "notify"
    assert service["Restart"] == "on-failure"
    assert service["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert service["User"] == "mattectl" and service["StateDirectory"] == "mattectl"
    assert "WatchdogSec" in service
    assert "PrivateDevices" not in service  # it would hide /dev/nvidia*
    allowed = [v for s, k, v in entries if k == "DeviceAllow"]
    assert "char-nvidia rw" in allowed and "char-nvidia-uvm rw" in allowed
    assert configparser.ConfigParser(strict=False, interpolation=None).read_string(
        UNIT.read_text()) is None
