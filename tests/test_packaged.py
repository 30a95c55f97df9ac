"""The u2netp weights shipped inside the package: what ships beside them, and their checksum held
at every load."""

from __future__ import annotations

import hashlib
import shutil
import tomllib
from dataclasses import replace
from pathlib import Path

import pytest

from mattectl.backends import packaged
from mattectl.backends.cache import ModelCache
from mattectl.backends.catalog import MODELS, packaged_path
from mattectl.config import ModelsConfig
from mattectl.errors import ModelUnavailableError

from .support import REPO_ROOT

SPEC = MODELS["u2netp"]


def test_the_shipped_file_is_the_one_the_catalog_describes_with_its_licence() -> None:
    shipped = packaged_path(SPEC)
    assert shipped is not None and SPEC.packaged is not None
    data = shipped.read_bytes()
    assert (len(data), hashlib.sha256(data).hexdigest()) == (SPEC.packaged.size,
                                                             SPEC.packaged.sha256)
    beside = shipped.parent
    assert "Apache License" in (beside / "LICENSE").read_text()
    notice = (beside / "NOTICE").read_text()
    assert "Xuebin Qin" in notice and "https://github.com/xuebinqin/U-2-Net" in notice
    assert SPEC.packaged.sha256 in (beside / "PROVENANCE.md").read_text()
    # Installed as package data (pyproject.toml), not only in a checkout.
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    assert "assets/*/*" in project["tool"]["setuptools"]["package-data"]["mattectl"]


def test_a_damaged_shipped_file_is_refused_at_load(monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path) -> None:
    # The catalog's checksum stands for what was shipped; the file no longer matches it.
    assert SPEC.packaged is not None
    monkeypatch.setitem(MODELS, "u2netp", replace(SPEC, packaged=replace(
        SPEC.packaged, sha256="0" * 64)))
    cache = ModelCache(ModelsConfig(isolation="inline"), tmp_path / "models")
    backend = cache.get("u2netp")  # found by path and size alone
    with pytest.raises(ModelUnavailableError, match=(
            r"the u2netp weights shipped with mattectl at .* are damaged \(sha256 "
            r"ff867c88.*, expected 0{64}\); reinstall mattectl, or run `mattectl models pull "
            r"u2netp`")):
        backend.load()
    assert not backend.loaded


def test_only_the_shipped_file_is_held_to_the_shipped_checksum(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    shipped = packaged_path(SPEC)
    assert shipped is not None and SPEC.packaged is not None
    assert packaged.check(SPEC, shipped) is None  # as shipped: passes
    damaged = replace(SPEC, packaged=replace(SPEC.packaged, sha256="0" * 64))
    with pytest.raises(ModelUnavailableError, match="damaged"):
        packaged.check(damaged, shipped)
    # The same bytes installed in the models dir are `mattectl models`' business (pull, import
    # and verify check them), not held to the shipped file's checksum.
    installed = tmp_path / "models" / "u2netp" / "u2netp.pth"
    installed.parent.mkdir(parents=True)
    shutil.copyfile(shipped, installed)
    assert packaged.check(damaged, installed) is None
