"""The real u2netp weights through the real backend, against the published outputs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mattectl.backends.cache import ModelCache
from mattectl.config import ModelsConfig, U2NetConfig
from mattectl.errors import ModelUnavailableError

from .support import SHARED, U2NETP_WEIGHTS, need

OFFICIAL = SHARED / "data" / "u2net_official"
REMBG = SHARED / "data" / "rembg_u2netp"


def mask_of(path: Path) -> np.ndarray:
    ref = np.asarray(Image.open(path))
    if ref.ndim == 3:
        ref = ref[:, :, 3] if ref.shape[2] == 4 else ref[:, :, 0]
    return ref.astype(np.float64)


def mean_abs_diffs(cache: ModelCache, pairs: list[tuple[Path, Path]]) -> dict[str, float]:
    backend = cache.get("u2netp")
    out = {}
    for photo, reference in pairs:
        rgb = np.asarray(Image.open(photo).convert("RGB"))
        alpha = backend.predict(rgb)
        assert alpha.shape == rgb.shape[:2] and alpha.dtype == np.float32
        out[photo.name] = float(np.abs(np.round(alpha * 255) - mask_of(reference)).mean())
    return out


def assert_golden(diffs: dict[str, float]) -> None:
    values = list(diffs.values())
    assert np.median(values) <= 1.0, diffs
    assert max(values) <= 10.0, diffs


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_reproduces_the_official_u2netp_results(shared_models: Path, precision: str) -> None:
    """In every format the CPU offers (float16 is CUDA's: tests/test_gpu_backends.py)."""
    photos = sorted(need(OFFICIAL / "test_images").iterdir())
    pairs = [(p, OFFICIAL / "u2netp_results" / f"{p.stem}.png") for p in photos]
    cache = ModelCache(ModelsConfig(u2net=U2NetConfig(resample="official",
                                                      precision=precision)), shared_models)
    diffs = mean_abs_diffs(cache, pairs)
    assert cache.get("u2netp").precision == precision
    assert len(diffs) == 18
    assert_golden(diffs)


@pytest.mark.slow
def test_reproduces_rembgs_u2netp_cutouts(shared_models: Path) -> None:
    photos = sorted(need(REMBG).glob("*.jpg"))
    pairs = [(p, p.with_name(f"{p.stem}.u2netp.png")) for p in photos]
    cache = ModelCache(ModelsConfig(u2net=U2NetConfig(resample="lanczos")), shared_models)
    diffs = mean_abs_diffs(cache, pairs)
    assert len(diffs) == 4
    assert_golden(diffs)


@pytest.mark.slow
def test_the_other_resampling_does_not_match_rembg(shared_models: Path) -> None:
    """Guards the golden test's meaning: resampling choices really move the numbers."""
    photos = sorted(need(REMBG).glob("*.jpg"))
    pairs = [(p, p.with_name(f"{p.stem}.u2netp.png")) for p in photos]
    cache = ModelCache(ModelsConfig(u2net=U2NetConfig(resample="official")), shared_models)
    assert np.median(list(mean_abs_diffs(cache, pairs).values())) > 1.0


def test_missing_weights_say_how_to_get_them(tmp_path: Path) -> None:
    # u2netp ships with mattectl; u2net must be pulled.
    cache = ModelCache(ModelsConfig(), tmp_path / "models")
    with pytest.raises(ModelUnavailableError, match="`mattectl models pull u2net`"):
        cache.get("u2net")


def test_corrupt_weights_are_reported(tmp_path: Path) -> None:
    folder = tmp_path / "models" / "u2netp"
    folder.mkdir(parents=True)
    (folder / "u2netp.pth").write_bytes(b"PK\x03\x04 not really a checkpoint")
    backend = ModelCache(ModelsConfig(), tmp_path / "models").get("u2netp")
    with pytest.raises(ModelUnavailableError, match="truncated or corrupt"):
        backend.load()


def test_wrong_architecture_is_reported(shared_models: Path, tmp_path: Path) -> None:
    cache = ModelCache(ModelsConfig(paths={"u2net": U2NETP_WEIGHTS}), shared_models)
    with pytest.raises(ModelUnavailableError, match="not a u2net checkpoint"):
        cache.get("u2net").load()


@pytest.mark.slow
def test_idle_models_are_unloaded(shared_models: Path) -> None:
    cache = ModelCache(ModelsConfig(), shared_models)
    backend = cache.get("u2netp")
    backend.load()
    assert cache.loaded() == {"u2netp": "cpu"}
    assert cache.unload_idle(60.0, now=backend.last_used + 10) == []
    assert cache.unload_idle(60.0, now=backend.last_used + 61) == ["u2netp"]
    assert not backend.loaded
    rgb = np.zeros((32, 48, 3), dtype=np.uint8)
    assert backend.predict(rgb).shape == (32, 48)  # loads again on demand


def test_importing_the_daemon_imports_no_framework() -> None:
    code = ("import sys, mattectl.backends, mattectl.app, mattectl.cli.main; "
            "print(sorted(m for m in ('torch', 'tensorflow') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).parents[1] / "daemon")
    assert out.stdout.strip() == "[]"


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


@pytest.mark.slow
def test_the_model_process_gets_the_networks_input_not_the_photo(shared_models: Path) -> None:
    """U²-Net's resizing runs in the caller: a 24 MP photo (72 MB, its float alpha 96 MB)
    never reaches the model's process, which grows by what a small photo's call takes (the
    network's own activations), and the alpha is the one the model in process gives."""
    photo = sorted(need(OFFICIAL / "test_images").iterdir())[0]
    rgb = np.asarray(Image.open(photo).convert("RGB").resize((6000, 4000)))
    small = np.ascontiguousarray(rgb[:400, :600])
    models = ModelsConfig(u2net=U2NetConfig(precision="float32"))  # no calibration
    isolated = ModelCache(models, shared_models)
    inline = ModelCache(models.model_copy(update={"isolation": "inline"}), shared_models)
    try:
        backend = isolated.get("u2netp")
        backend.predict(small)  # load and warm up
        pid = backend.pid
        assert pid is not None

        def growth_mb(image: np.ndarray) -> tuple[float, np.ndarray]:
            try:
                Path(f"/proc/{pid}/clear_refs").write_text("5")  # restart its peak (VmHWM)
            except OSError:
                pytest.skip("needs Linux's /proc/PID/clear_refs to measure the peak")
            before = _status_kb(pid, "VmRSS")
            alpha = backend.predict(image)
            return (_status_kb(pid, "VmHWM") - before) / 1024, alpha

        small_mb, _ = growth_mb(small)
        large_mb, alpha = growth_mb(rgb)
        assert large_mb - small_mb < 30, \
            f"the model's process grew by {large_mb:.0f} MB for 24 MP, {small_mb:.0f} for 0.24"
        assert alpha.shape == (4000, 6000)
        assert np.array_equal(alpha, inline.get("u2netp").predict(rgb))
    finally:
        isolated.unload_all()
        inline.unload_all()
