"""`mattectl models` as a person types it (Typer's CliRunner), on real files and a local server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from mattectl.backends.catalog import MODELS, Source
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
    shipped = listed(config)["u2netp"]
    assert (shipped["origin"], shipped["checksum"]) == ("package", "shipped")
    url = f"{server.url}/mirror/u2netp.pth"
    code, out = models(config, "pull", "u2netp", "--url", url)
    assert code == 1
    assert "published checksum" in out
    assert f"u2netp: trying --url\n    {url}\n" in out
    code, out = models(config, "pull", "u2netp", "--url", url, "--custom")
    assert code == 0, out
    assert "installed at" in out
    state = listed(config)["u2netp"]
    assert (state["origin"], state["checksum"], state["published_checksum"], state["loaded"]) \
        == ("models dir", "custom", "md5", False)
    code, out = models(config, "verify", "u2netp")
    assert code == 0, out
    assert "loads and runs" in out
    installed = Path(state["location"])
    installed.write_bytes(installed.read_bytes()[:1000])
    code, out = models(config, "verify")
    assert code == 1
    assert "u2netp.pth is truncated: 1000 of" in out


def test_a_pull_that_no_source_answers_names_each_and_fails(
        config: Path, server: FileServer, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = MODELS["u2net"]
    sources = (Source("GitHub release x/y 3.2", (f"{server.url}/releases/u2net.pth",)),
               Source("Google Drive, linked by the README", (f"{server.url}/uc?id=X",)))
    monkeypatch.setitem(MODELS, "u2net", replace(spec, files=(replace(
        spec.files[0], sources=sources),)))
    code, out = models(config, "pull", "u2net", "--timeout", "2")
    assert code == 1
    assert f"u2net: trying GitHub release x/y 3.2\n    {server.url}/releases/u2net.pth\n" in out
    assert f"u2net: trying Google Drive, linked by the README\n    {server.url}/uc?id=X\n" in out
    assert "failed u2net: no source could deliver u2net.pth (2 tried):" in out
    assert f"  1. GitHub release x/y 3.2 ({server.url}/releases/u2net.pth): the server " \
        "answered 404 Not Found" in out
    assert "`mattectl models import u2net FILE`" in out
    assert listed(config)["u2net"]["checksum"] == "missing"


def test_model_names_complete_in_the_shell() -> None:
    env = {"_MATTECTL_COMPLETE": "complete_bash", "COMP_WORDS": "mattectl models pull u2n",
           "COMP_CWORD": "3"}
    result = runner.invoke(app, [], env=env, prog_name="mattectl")
    assert result.output.split() == ["u2netp", "u2net", "u2net_human_seg"]


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


@pytest.mark.slow
def test_export_onnx_writes_the_weights_the_daemon_loads(config: Path, tmp_path: Path) -> None:
    pytest.importorskip("onnx", reason="exporting needs the onnx package (the bench extra)")
    ort = pytest.importorskip("onnxruntime", reason="reading the export needs onnxruntime")
    out = tmp_path / "export" / "u2netp.onnx"
    code, text = models(config, "export-onnx", str(out))
    assert code == 0, text
    flat = "".join(text.split())  # the line wraps at 80 columns, long paths included
    assert f"{need(U2NETP_WEIGHTS)}(package)exportedto{out}" in flat
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    d0 = session.run(["d0"], {"input.1": np.zeros((1, 3, 320, 320), np.float32)})[0]
    assert d0.shape == (1, 1, 320, 320)
    code, text = models(config, "export-onnx", str(tmp_path / "bshm.onnx"), "--model", "bshm")
    assert code == 2
    assert "only U²-Net models export" in text
    assert not (tmp_path / "bshm.onnx").exists()
