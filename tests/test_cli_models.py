"""`mattectl models` as a person types it (Typer's CliRunner), on real files and a local server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mattectl.cli.main import app

from . import bshm_graph
from .http_server import FileServer, serving
from .support import U2NETP_WEIGHTS, need

runner = CliRunner()


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("MODELSCOPE_CACHE", raising=False)
    path = tmp_path / "mattectl.toml"
    path.write_text('[daemon]\nstate_dir = "state"\n[models]\ndir = "models"\n')
    return path


@pytest.fixture
def server() -> Iterator[FileServer]:
    with serving(FileServer()) as srv:
        srv.files["/mirror/u2netp.pth"] = need(U2NETP_WEIGHTS).read_bytes()
        yield srv


def models(config: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["models", *args, "--config", str(config)])
    return result.exit_code, result.output


def listed(config: Path) -> dict[str, dict]:
    code, out = models(config, "list", "--json")
    assert code == 0, out
    return {m["name"]: m for m in json.loads(out)}


@pytest.mark.slow
def test_pull_list_verify(config: Path, server: FileServer) -> None:
    assert listed(config)["u2netp"]["checksum"] == "missing"
    url = f"{server.url}/mirror/u2netp.pth"
    code, out = models(config, "pull", "u2netp", "--url", url)
    assert code == 1
    assert "published checksum" in out
    code, out = models(config, "pull", "u2netp", "--url", url, "--custom")
    assert code == 0, out
    assert "installed at" in out
    state = listed(config)["u2netp"]
    assert (state["checksum"], state["published_checksum"], state["loaded"]) == \
        ("custom", "md5", False)
    code, out = models(config, "verify", "u2netp")
    assert code == 0, out
    assert "loads and runs" in out
    installed = Path(state["location"])
    installed.write_bytes(installed.read_bytes()[:1000])
    code, out = models(config, "verify")
    assert code == 1
    assert "u2netp.pth is truncated: 1000 of" in out


@pytest.mark.slow
def test_import_bshm_and_offline_pull_without_cache(config: Path, tmp_path: Path,
                                                    no_network: list[str]) -> None:
    pytest.importorskip("tensorflow")
    folder = bshm_graph.write_model_dir(tmp_path / "from-usb")
    code, out = models(config, "import", "bshm", str(folder))
    assert code == 0, out
    assert "nothing published; its checksum is recorded" in out
    assert listed(config)["bshm"]["checksum"] == "recorded"
    code, out = models(config, "pull", "nonsense")
    assert code == 2
    assert "unknown model 'nonsense'" in out
    pytest.importorskip("modelscope")
    (tmp_path / "models" / "bshm" / "tf_graph.pb").unlink()
    code, out = models(config, "pull", "bshm", "--offline")
    assert code == 1
    assert "not in any ModelScope cache" in out
    assert no_network == []
