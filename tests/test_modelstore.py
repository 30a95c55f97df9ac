"""`mattectl models` services on real files: the real u2netp weights, the BSHM test graph, a real
HTTP server and a ModelScope hub on loopback, and pre-filled ModelScope caches."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from mattectl import config
from mattectl.backends.catalog import MODELS, Source
from mattectl.config import Settings
from mattectl.errors import ChecksumError, DownloadError, ModelUnavailableError
from mattectl.modelstore.manifest import MANIFEST, Published
from mattectl.modelstore.service import ChecksumState, ModelStore

from . import bshm_graph
from .http_server import DriveServer, FileServer, ModelScopeHub, serving
from .support import U2NETP_WEIGHTS, need

MODEL_ID = "damo/cv_unet_image-matting"


def no_progress(done: int, total: int | None) -> None:
    pass


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    # ModelScope's own default cache (~/.cache/modelscope) is looked at too: keep the one of the
    # machine running the tests out of it.
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("MODELSCOPE_CACHE", raising=False)
    return config.parse({"models": {"dir": str(tmp_path / "models")}}, base_dir=tmp_path)


@pytest.fixture(scope="module")
def graphs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    pytest.importorskip("tensorflow")
    root = tmp_path_factory.mktemp("graphs")
    return {v: bshm_graph.write_model_dir(root / v, v) for v in ("matte", "invert")}


@pytest.fixture
def weights() -> Path:
    return need(U2NETP_WEIGHTS)


@pytest.fixture
def server(weights: Path) -> Iterator[FileServer]:
    with serving(FileServer()) as srv:
        srv.files["/u2netp.pth"] = weights.read_bytes()
        yield srv


def test_pull_checks_the_published_checksum(server: FileServer, settings: Settings) -> None:
    store = ModelStore(settings)
    # The shared weights are a re-export, not the file the U-2-Net authors publish.
    with pytest.raises(DownloadError, match=r"md5 .*published checksum.*--custom"):
        store.pull("u2netp", no_progress, url=f"{server.url}/u2netp.pth")
    # Nothing was installed: u2netp still comes from the weights shipped with mattectl.
    assert (store.state("u2netp").checksum, store.state("u2netp").origin) == (
        ChecksumState.SHIPPED, "package")
    assert list(settings.models_dir.rglob("*.part*")) == []


@pytest.mark.slow  # loads the model
def test_u2netp_ships_with_mattectl_listed_and_verified(settings: Settings,
                                                        weights: Path) -> None:
    store = ModelStore(settings)
    state = store.state("u2netp")
    assert (state.origin, state.checksum, state.published_checksum, state.location,
            state.size) == ("package", ChecksumState.SHIPPED, "sha256", str(weights),
                            weights.stat().st_size)
    assert (store.state("u2net").origin, store.state("u2net").checksum) == (
        None, ChecksumState.MISSING)
    result = store.verify("u2netp")
    assert result.ok, result.findings
    assert result.findings == ["shipped with mattectl (the embedded default)",
                               f"{weights.name}: matches the checksum shipped with mattectl",
                               "loads and runs"]


def serve_u2netp_as_published(monkeypatch: pytest.MonkeyPatch, weights: Path,
                              sources: tuple[Source, ...]) -> None:
    """The catalog's u2netp with ``sources``, and the shipped weights as the published file."""
    spec = MODELS["u2netp"]
    published = replace(spec.files[0], md5=hashlib.md5(weights.read_bytes()).hexdigest(),
                        sources=sources)
    monkeypatch.setitem(MODELS, "u2netp", replace(spec, files=(published,)))


@pytest.mark.slow  # loads the model
def test_pull_tries_each_source_in_the_catalogs_order(
        server: FileServer, settings: Settings, weights: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    data = weights.read_bytes()
    server.files["/release/u2netp.pth"] = data[::-1]  # the wrong file
    server.stall["/mirror/u2netp.pth"] = 1000  # hangs after a kilobyte
    server.files["/mirror/u2netp.pth"] = data
    with serving(DriveServer("form")) as drive:
        drive.drive["ID"] = data
        sources = (Source("release", (f"{server.url}/release/u2netp.pth",)),
                   Source("mirror", (f"{server.url}/mirror/u2netp.pth",)),
                   Source("Google Drive", (f"{drive.url}/uc?export=download&id=ID",)))
        serve_u2netp_as_published(monkeypatch, weights, sources)
        tried: list[str] = []
        store = ModelStore(settings)
        record = store.pull("u2netp", no_progress, on_source=lambda s: tried.append(s.label),
                            timeout=0.5)
    assert tried == ["release", "mirror", "Google Drive"]
    installed = settings.models_dir / "u2netp" / "u2netp.pth"
    assert (record.location, record.source, record.published) == (
        str(installed), f"{drive.url}/uc?export=download&id=ID", Published.MATCH)
    assert installed.read_bytes() == data
    state = store.state("u2netp")  # the installed copy now comes before the shipped one
    assert (state.origin, state.checksum) == ("models dir", ChecksumState.PUBLISHED)
    assert sorted(p.name for p in installed.parent.iterdir()) == ["u2netp.pth"]


def test_when_no_source_delivers_the_pull_says_which_failed_and_what_else_to_do(
        server: FileServer, settings: Settings, weights: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    server.files["/release/u2netp.pth"] = b"not it"
    with serving(DriveServer("quota")) as drive:
        drive.drive["ID"] = weights.read_bytes()
        sources = (Source("release", (f"{server.url}/release/u2netp.pth",)),
                   Source("Google Drive", (f"{drive.url}/uc?export=download&id=ID",)))
        serve_u2netp_as_published(monkeypatch, weights, sources)
        with pytest.raises(DownloadError) as caught:
            ModelStore(settings).pull("u2netp", no_progress, timeout=0.5)
    message = str(caught.value)
    assert message.startswith("no source could deliver u2netp.pth (2 tried):\n  1. release (")
    assert "  2. Google Drive (" in message and "Quota exceeded" in message
    assert message.endswith("install it with `mattectl models import u2netp FILE`, or give a "
                            "mirror with --url.")
    assert ModelStore(settings).state("u2netp").origin == "package"
    assert not (settings.models_dir / "u2netp").exists() or \
        list((settings.models_dir / "u2netp").iterdir()) == []


def test_pull_installs_loads_and_records(server: FileServer, settings: Settings,
                                         weights: Path) -> None:
    store = ModelStore(settings)
    record = store.pull("u2netp", no_progress, url=f"{server.url}/u2netp.pth", custom=True)
    installed = settings.models_dir / "u2netp" / "u2netp.pth"
    assert record.location == str(installed)
    assert installed.read_bytes() == weights.read_bytes()
    assert record.published == Published.DIFFERS
    manifest = json.loads((settings.models_dir / MANIFEST).read_text())
    assert manifest["models"]["u2netp"]["source"] == f"{server.url}/u2netp.pth"
    state = store.state("u2netp")
    assert state.checksum == ChecksumState.CUSTOM
    assert state.size == weights.stat().st_size
    assert store.verify("u2netp").ok


def test_verify_calls_a_truncated_file_truncated(settings: Settings, weights: Path) -> None:
    store = ModelStore(settings)
    store.import_("u2netp", weights, custom=True)
    installed = settings.models_dir / "u2netp" / "u2netp.pth"
    data = installed.read_bytes()
    installed.write_bytes(data[: len(data) // 3])
    assert store.state("u2netp").checksum == ChecksumState.CHANGED
    result = store.verify("u2netp")
    assert not result.ok
    assert result.findings[0] == f"u2netp.pth is truncated: {len(data) // 3} of {len(data)} bytes"


def test_verify_finds_a_file_changed_in_place(settings: Settings, weights: Path) -> None:
    store = ModelStore(settings)
    store.import_("u2netp", weights, custom=True)
    installed = settings.models_dir / "u2netp" / "u2netp.pth"
    data = bytearray(installed.read_bytes())
    data[-100] ^= 0xFF
    installed.write_bytes(bytes(data))
    result = store.verify("u2netp")
    assert not result.ok
    assert "changed since it was installed" in result.findings[0]


def test_import_refuses_weights_that_do_not_load(settings: Settings, weights: Path,
                                                 tmp_path: Path) -> None:
    store = ModelStore(settings)
    store.import_("u2netp", weights, custom=True)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"\x80\x04 not a checkpoint" * 100)
    with pytest.raises(ModelUnavailableError, match=r"cannot read weights .*junk\.pth"):
        store.import_("u2netp", junk, custom=True)
    # The weights in use are untouched, and nothing half-copied is left beside them.
    assert (settings.models_dir / "u2netp" / "u2netp.pth").read_bytes() == weights.read_bytes()
    assert sorted(p.name for p in (settings.models_dir / "u2netp").iterdir()) == ["u2netp.pth"]
    assert junk.exists()


def test_import_bshm_folder_then_replace_it(settings: Settings,
                                           graphs: dict[str, Path]) -> None:
    store = ModelStore(settings)
    store.import_("bshm", graphs["matte"])
    state = store.state("bshm")
    assert state.location == str(settings.models_dir / "bshm")
    assert state.checksum == ChecksumState.RECORDED
    assert state.published_checksum == "none"
    store.import_("bshm", graphs["invert"] / "tf_graph.pb")  # a file inside the folder is fine
    installed = settings.models_dir / "bshm" / "tf_graph.pb"
    assert installed.read_bytes() == (graphs["invert"] / "tf_graph.pb").read_bytes()
    assert [p.name for p in settings.models_dir.iterdir() if p.name.startswith(".")] == []
    # The source folders are never changed by what happens to the installed copy.
    installed.write_bytes(b"")
    assert (graphs["invert"] / "tf_graph.pb").stat().st_size > 0
    assert "truncated" in store.verify("bshm").findings[0]


def test_import_bshm_needs_every_file(settings: Settings, graphs: dict[str, Path],
                                      tmp_path: Path) -> None:
    partial = tmp_path / "partial"
    partial.mkdir()
    shutil.copy(graphs["matte"] / "tf_graph.pb", partial)
    with pytest.raises(ModelUnavailableError, match=r"no configuration\.json"):
        ModelStore(settings).import_("bshm", partial)


def test_pull_bshm_from_a_modelscope_hub(settings: Settings, graphs: dict[str, Path],
                                         tmp_path: Path) -> None:
    pytest.importorskip("modelscope")
    hub = ModelScopeHub()
    hub.models[MODEL_ID] = {n: (graphs["matte"] / n).read_bytes()
                            for n in ("tf_graph.pb", "configuration.json")}
    settings = settings.model_copy(update={"models": settings.models.model_copy(
        update={"modelscope_endpoint": hub.url})})
    seen: list[tuple[int, int | None]] = []
    with serving(hub):
        record = ModelStore(settings).pull("bshm", lambda d, t: seen.append((d, t)))
    snapshot = settings.models_dir / "modelscope" / "models" / "damo--cv_unet_image-matting" \
        / "snapshots" / "master"
    assert (snapshot / "tf_graph.pb").read_bytes() == hub.models[MODEL_ID]["tf_graph.pb"]
    assert record.location == str(settings.models_dir / "bshm")
    assert record.source.startswith(f"modelscope:{MODEL_ID}")
    assert (len(hub.models[MODEL_ID]["tf_graph.pb"]),) in {(d,) for d, _ in seen}
    assert ModelStore(settings).verify("bshm").ok


@pytest.mark.parametrize("layout", [
    "modelscope/models/damo--cv_unet_image-matting/snapshots/master",  # ModelScope >= 1.38
    "modelscope/models/damo/cv_unet_image-matting",  # 1.37 and older, MODELSCOPE_CACHE set
    ".cache/modelscope/hub/models/iic/cv_unet_image-matting",  # older default cache, new id
])
def test_offline_pull_takes_bshm_from_a_filled_cache(settings: Settings, graphs: dict[str, Path],
                                                     tmp_path: Path, layout: str,
                                                     no_network: list[str]) -> None:
    pytest.importorskip("modelscope")
    cached = settings.models_dir / layout if layout.startswith("modelscope/") else \
        tmp_path / layout
    shutil.copytree(graphs["matte"], cached)
    store = ModelStore(settings)
    assert store.location("bshm") == cached  # found before any pull, by path alone
    assert store.state("bshm").checksum == ChecksumState.UNRECORDED
    record = store.pull("bshm", no_progress, offline=True)
    assert record.location == str(settings.models_dir / "bshm")
    assert store.state("bshm").checksum == ChecksumState.RECORDED
    assert no_network == []


def test_offline_pull_without_a_cache_says_where_it_looked(settings: Settings,
                                                           no_network: list[str]) -> None:
    pytest.importorskip("modelscope")
    with pytest.raises(DownloadError, match="not in any ModelScope cache"):
        ModelStore(settings).pull("bshm", no_progress, offline=True)
    assert no_network == []


def test_checksum_mismatch_from_a_mirror_is_not_installed(server: FileServer,
                                                          settings: Settings) -> None:
    server.files["/u2netp.pth"] = b"PK\x03\x04 something else"
    with pytest.raises(DownloadError, match="md5"):
        ModelStore(settings).pull("u2netp", no_progress, url=f"{server.url}/u2netp.pth")
    with pytest.raises(ChecksumError):
        ModelStore(settings).import_("u2netp", need(U2NETP_WEIGHTS))
