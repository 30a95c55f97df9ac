"""Finding a ModelScope model on disk alone, checked against ModelScope's own offline lookup."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mattectl.backends import modelscope_cache

FILES = ("tf_graph.pb", "configuration.json")
LAYOUTS = [
    "models/damo--cv_unet_image-matting/snapshots/master",  # modelscope >= 1.38
    "models/damo--cv_unet_image-matting/snapshots/v1.0.1",  # a revision asked for by name
    "models/damo/cv_unet_image-matting",  # 1.37 and older with MODELSCOPE_CACHE set
    "hub/models/damo/cv_unet_image-matting",  # 1.37 and older, default cache
    "damo/cv_unet_image-matting",  # older still
    "hub/damo/cv_unet_image-matting",
]


def fill(folder: Path) -> Path:
    folder.mkdir(parents=True)
    for name in FILES:
        (folder / name).write_bytes(b"x")
    return folder


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_layout_is_found(tmp_path: Path, layout: str) -> None:
    folder = fill(tmp_path / "cache" / layout)
    found = modelscope_cache.find_snapshot([tmp_path / "cache"], ["damo/cv_unet_image-matting"],
                                           FILES)
    assert found == folder


@pytest.mark.parametrize("layout", LAYOUTS)
def test_modelscope_finds_the_same_folder(tmp_path: Path, layout: str) -> None:
    pytest.importorskip("modelscope")
    folder = fill(tmp_path / "cache" / layout)
    script = ("import sys\nfrom modelscope.hub.snapshot_download import snapshot_download\n"
              "print(snapshot_download(sys.argv[1], cache_dir=sys.argv[2], "
              "local_files_only=True))")
    out = subprocess.run([sys.executable, "-c", script, "damo/cv_unet_image-matting",
                          str(tmp_path / "cache")], capture_output=True, text=True, timeout=120,
                         env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert Path(out.stdout.strip().splitlines()[-1]) == folder


def test_current_layout_wins_and_incomplete_folders_do_not_count(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    legacy = fill(cache / "models/damo/cv_unet_image-matting")
    (cache / "models/damo--cv_unet_image-matting/snapshots/master").mkdir(parents=True)
    (cache / "models/damo--cv_unet_image-matting/snapshots/master/tf_graph.pb").write_bytes(b"x")
    ids = ["damo/cv_unet_image-matting", "iic/cv_unet_image-matting"]
    assert modelscope_cache.find_snapshot([cache], ids, FILES) == legacy
    current = fill(cache / "models/iic--cv_unet_image-matting/snapshots/master")
    assert modelscope_cache.find_snapshot([cache], ids, FILES) == legacy  # first id first
    assert modelscope_cache.find_snapshot([cache], ids[::-1], FILES) == current


def test_dots_in_a_name_become_underscores_in_legacy_folders(tmp_path: Path) -> None:
    folder = fill(tmp_path / "models/owner/model-v1___5")
    assert modelscope_cache.find_snapshot([tmp_path], ["owner/model-v1.5"], FILES) == folder


def test_where_pulls_go(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MODELSCOPE_CACHE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    models = tmp_path / "models"
    assert modelscope_cache.pull_root(None, models) == models / "modelscope"
    assert modelscope_cache.search_roots(None, models) == [
        models / "modelscope", tmp_path / "home" / ".cache" / "modelscope"]
    monkeypatch.setenv("MODELSCOPE_CACHE", str(tmp_path / "env"))
    assert modelscope_cache.pull_root(None, models) == tmp_path / "env"
    assert modelscope_cache.search_roots(None, models) == [tmp_path / "env"]
    assert modelscope_cache.pull_root(tmp_path / "conf", models) == tmp_path / "conf"
