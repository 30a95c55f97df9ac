"""Where each model's weights are found, on disk alone and at once."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from mattectl.backends.catalog import (
    MODELS,
    Found,
    WeightSource,
    availability,
    find_weights,
    locate,
    packaged_path,
)

from .support import REPO_ROOT

BSHM = MODELS["bshm"]


def bshm_folder(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "tf_graph.pb").write_bytes(b"graph")
    (folder / "configuration.json").write_text("{}")
    return folder


def test_u2net_weights_canonical_then_any_pth(tmp_path: Path) -> None:
    spec = MODELS["u2net"]
    folder = tmp_path / "u2net"
    folder.mkdir()
    (folder / "notes.txt").write_text("")
    assert find_weights(spec, tmp_path) is None
    (folder / "from-the-nas.pth").write_bytes(b"w")
    assert find_weights(spec, tmp_path) == folder / "from-the-nas.pth"
    (folder / "u2net.pth").write_bytes(b"w")
    assert find_weights(spec, tmp_path) == folder / "u2net.pth"
    assert find_weights(spec, tmp_path, tmp_path / "elsewhere.pth") is None


def test_u2netp_comes_from_the_package_unless_configured_or_installed(tmp_path: Path) -> None:
    spec = MODELS["u2netp"]
    shipped = packaged_path(spec)
    assert shipped == REPO_ROOT / "daemon" / "mattectl" / "assets" / "u2netp" / \
        "u2netp_bnfolded_fp16.pth"
    found = availability(spec, tmp_path / "models")
    assert (found.ok, found.weights, found.source) == (True, shipped, WeightSource.PACKAGE)
    installed = tmp_path / "models" / "u2netp" / "u2netp.pth"
    installed.parent.mkdir(parents=True)
    installed.write_bytes(b"w")
    assert locate(spec, tmp_path / "models") == Found(installed, WeightSource.MODELS_DIR)
    explicit = tmp_path / "opt" / "u2netp.pth"
    assert availability(spec, tmp_path / "models", explicit).ok is False  # not replaced
    explicit.parent.mkdir()
    explicit.write_bytes(b"w")
    assert locate(spec, tmp_path / "models", explicit) == Found(explicit, WeightSource.PATH)


def test_a_shipped_file_of_the_wrong_size_is_not_used(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    spec = MODELS["u2netp"]
    assert spec.packaged is not None
    monkeypatch.setitem(MODELS, "u2netp", replace(spec, packaged=replace(
        spec.packaged, size=spec.packaged.size + 1)))
    found = availability(MODELS["u2netp"], tmp_path / "models")
    assert not found.ok
    assert found.reason.startswith("the u2netp weights shipped with mattectl at ")
    assert "are damaged (2548183 bytes, expected 2548184); reinstall mattectl" in found.reason


def test_every_downloadable_model_lists_its_sources_drive_last() -> None:
    for spec in MODELS.values():
        if spec.modelscope_ids:
            continue
        sources = spec.files[0].sources
        assert sources and spec.files[0].md5, spec.name  # somewhere to get it, and a check
        drive = [i for i, s in enumerate(sources) if "drive.google.com" in s.urls[0]]
        assert drive and drive == list(range(len(sources) - len(drive), len(sources))), spec.name
        assert not sources[0].label.startswith("Google Drive"), spec.name
        assert all(u.startswith("https://") for s in sources for u in s.urls), spec.name


def test_bshm_configured_folder_or_file(tmp_path: Path) -> None:
    folder = bshm_folder(tmp_path / "opt" / "bshm")
    assert find_weights(BSHM, tmp_path / "models", folder) == folder
    assert find_weights(BSHM, tmp_path / "models", folder / "tf_graph.pb") == folder
    (folder / "configuration.json").unlink()
    assert find_weights(BSHM, tmp_path / "models", folder) is None  # incomplete: not used


def test_bshm_installed_folder_comes_before_the_modelscope_cache(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cached = bshm_folder(cache / "models/iic--cv_unet_image-matting/snapshots/master")
    models = tmp_path / "models"
    assert find_weights(BSHM, models, None, [cache]) == cached
    installed = bshm_folder(models / "bshm")
    assert find_weights(BSHM, models, None, [cache]) == installed


def test_a_missing_model_says_where_it_looked_and_how_to_get_it(tmp_path: Path) -> None:
    found = availability(BSHM, tmp_path / "models", None, [tmp_path / "cache"])
    assert not found.ok
    assert found.weights is None
    assert str(tmp_path / "models" / "bshm") in found.reason
    assert f"the ModelScope cache {tmp_path / 'cache'}" in found.reason
    assert "`mattectl models pull bshm`" in found.reason
    assert "`mattectl models import bshm PATH`" in found.reason


def test_availability_imports_no_framework_and_opens_no_socket(tmp_path: Path) -> None:
    # A fresh interpreter, so that what the lookup imports is visible; sockets are refused.
    script = """
import json, socket, sys
from pathlib import Path
def refuse(*args, **kwargs):
    raise AssertionError("a lookup opened a connection")
socket.socket.connect = refuse
socket.getaddrinfo = refuse
from mattectl import config
from mattectl.backends.cache import ModelCache
settings = config.parse({"models": {"dir": sys.argv[1]}})
cache = ModelCache(settings.models, settings.models_dir)
found = {name: cache.availability(name).ok for name in ("u2netp", "bshm")}
heavy = sorted(m for m in ("torch", "tensorflow", "modelscope") if m in sys.modules)
print(json.dumps({"found": found, "imported": heavy}))
"""
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path / "models")],
                         capture_output=True, text=True, timeout=60, check=True,
                         env={"PYTHONPATH": str(REPO_ROOT / "daemon"), "HOME": str(tmp_path)})
    # u2netp is found in the package, by path alone.
    assert json.loads(out.stdout) == {"found": {"u2netp": True, "bshm": False}, "imported": []}


@pytest.mark.parametrize("module", ["mattectl.backends", "mattectl.backends.cache",
                                    "mattectl.cli.main", "mattectl.app"])
def test_importing_imports_neither_torch_nor_tensorflow(module: str) -> None:
    script = (f"import sys, {module}\n"
              "print(sorted(m for m in ('torch', 'tensorflow', 'modelscope') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=60, check=True, env={"PYTHONPATH": str(REPO_ROOT / "daemon")})
    assert out.stdout.strip() == "[]"
