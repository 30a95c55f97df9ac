"""The README's first command on a fresh machine: a copy of the repository with no ../shared
beside it, mattectl installed from it (not editable: the installed files must carry the
weights), `scripts/dev.sh run` on the example config with no models dir, no network, a photo
dropped into in/ and a cutout in out/."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from .support import REPO_ROOT, wait_for

pytestmark = pytest.mark.slow  # builds and installs a wheel, runs the daemon and its model


def copy_working_tree(checkout: Path) -> None:
    """What a clone of this working tree holds: tracked and new files, nothing git ignores
    (no .venv, no ../shared, no models dir, no state)."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                             "--exclude-standard"], cwd=REPO_ROOT, capture_output=True,
                            check=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        source = REPO_ROOT / rel
        if source.is_file():  # a tracked file deleted in the working tree is not copied
            (checkout / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, checkout / rel)


def make_venv(root: Path, checkout: Path) -> Path:
    """A new virtual environment with mattectl installed from a wheel built from ``checkout``;
    its dependencies (torch, ...) are this test run's own, reached through a .pth file, since
    there is no network to install them from."""
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    site = Path(subprocess.run(
        [venv / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        capture_output=True, text=True, check=True).stdout.strip())
    (site / "dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    wheels = root / "wheels"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
                    "-w", wheels, checkout], check=True, timeout=600)
    [wheel] = wheels.glob("mattectl-*.whl")
    subprocess.run([*pip, "--python", venv / "bin" / "python", "install", "--no-deps",
                    "--no-index", "-q", wheel], check=True, timeout=600)
    # scripts/dev.sh would install the same again: tell it this venv is set up.
    stamp = hashlib.sha256((checkout / "pyproject.toml").read_bytes()
                           + (checkout / "scripts" / "dev.sh").read_bytes()).hexdigest()[:16]
    (venv / ".mattectl-setup").write_text(stamp + "\n")
    return venv


def portrait(path: Path) -> None:
    """A bright figure on a dark, textured background: a subject any salient-object model
    finds."""
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[:480, :360]
    figure = (((xx - 180) / 80) ** 2 + ((yy - 150) / 70) ** 2 < 1) | \
        ((np.abs(xx - 180) < 90) & (yy > 210) & (yy < 470))
    rgb = rng.integers(10, 50, (480, 360, 3), dtype=np.uint8)
    rgb[figure] = (225, 190, 160)
    Image.fromarray(rgb).save(path, quality=92)


def test_a_fresh_clone_cuts_out_a_photo_offline_with_the_shipped_weights(
        tmp_path: Path) -> None:
    checkout = tmp_path / "mattectl"
    copy_working_tree(checkout)
    assert not (tmp_path / "shared").exists() and not (checkout / "models").exists()
    venv = make_venv(tmp_path, checkout)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("MATTECTL_") and k not in ("PYTHONPATH", "MODELSCOPE_CACHE")}
    env.update(HOME=str(tmp_path / "home"), VENV=str(venv))
    # No network: any HTTP(S) request would go to a proxy that refuses every connection.
    env.update(http_proxy="http://127.0.0.1:9", https_proxy="http://127.0.0.1:9")

    listed = subprocess.run([venv / "bin" / "mattectl", "models", "list", "--json",
                             "--config", checkout / "config.example.toml"],
                            cwd=checkout, env=env, capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    u2netp = next(m for m in json.loads(listed.stdout) if m["name"] == "u2netp")
    assert (u2netp["origin"], u2netp["checksum"]) == ("package", "shipped")
    assert Path(u2netp["location"]).is_relative_to(venv)  # the installed copy carries them

    log = (tmp_path / "daemon.log").open("w")
    daemon = subprocess.Popen(["scripts/dev.sh", "run"], cwd=checkout, env=env, stdout=log,
                              stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(lambda: (checkout / "in").is_dir() or daemon.poll() is not None,
                 timeout=60, what="scripts/dev.sh to create in/")
        portrait(checkout / "in" / "portrait.jpg")
        cutout = checkout / "out" / "portrait.png"

        def done() -> bool:
            if daemon.poll() is not None:
                raise AssertionError(f"the daemon exited with {daemon.returncode}:\n"
                                     f"{(tmp_path / 'daemon.log').read_text()[-4000:]}")
            return cutout.exists()

        wait_for(done, timeout=240, interval=0.2, what="the cutout in out/")
    finally:
        if daemon.poll() is None:
            os.killpg(daemon.pid, signal.SIGTERM)
        code = daemon.wait(timeout=120)
        log.close()
    text = (tmp_path / "daemon.log").read_text()
    assert code == 0, text[-4000:]
    with Image.open(cutout) as image:
        assert (image.mode, image.size) == ("RGBA", (360, 480))
        alpha = np.asarray(image)[:, :, 3]
    assert alpha[150, 180] > 200 and alpha[20, 20] < 50  # the figure kept, the corner gone
    assert str(venv) in text and "u2netp_bnfolded_fp16.pth" in text  # loaded from the package

    # The same install refuses a damaged copy of the shipped weights, naming it.
    shipped = Path(u2netp["location"])
    damaged = bytearray(shipped.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF
    shipped.write_bytes(bytes(damaged))
    verified = subprocess.run([venv / "bin" / "mattectl", "models", "verify", "u2netp",
                               "--config", checkout / "config.example.toml"],
                              cwd=checkout, env=env, capture_output=True, text=True, timeout=120)
    assert verified.returncode == 1
    assert "u2netp_bnfolded_fp16.pth: sha256 " in verified.stdout
