"""Both frameworks on one NVIDIA GPU (skipped without one): TensorFlow must leave room for
PyTorch, each backend must really run on the GPU, U²-Net in half precision."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from mattectl import config, gpu
from mattectl.backends import BACKENDS
from mattectl.backends.catalog import MODELS
from mattectl.backends.isolated import IsolatedBackend

from . import bshm_graph
from .support import U2NETP_WEIGHTS, need

pytestmark = pytest.mark.gpu


@pytest.fixture(autouse=True)
def cuda() -> Iterator[object]:
    if not gpu.nvidia_gpus():
        pytest.skip("needs an NVIDIA GPU")
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("this torch build has no CUDA")
    return torch


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("tensorflow")
    return bshm_graph.write_model_dir(tmp_path_factory.mktemp("bshm") / "matte")


def used_mib(torch: object) -> float:
    free, total = torch.cuda.mem_get_info()  # type: ignore[attr-defined]
    return (total - free) / 2**20


def backend(name: str, weights: Path, **models: object) -> IsolatedBackend:
    options = config.parse({"models": {"device": "auto", **models}}).models
    return IsolatedBackend(MODELS[name], weights, options, BACKENDS[MODELS[name].backend])


def test_tensorflow_grows_instead_of_taking_the_gpu(cuda: object, model_dir: Path) -> None:
    torch = cuda
    total = torch.cuda.mem_get_info()[1] / 2**20  # type: ignore[attr-defined]
    before = used_mib(torch)
    bshm = backend("bshm", model_dir)
    assert bshm.load() == "cuda:0"
    bshm.predict(bshm_graph.photo(1920, 1080))
    taken = used_mib(torch) - before
    assert taken < total / 2, f"TensorFlow took {taken:.0f} of {total:.0f} MiB"
    u2netp = backend("u2netp", need(U2NETP_WEIGHTS))
    assert u2netp.load() == "cuda:0"
    rgb = bshm_graph.photo(1920, 1080, seed=3)
    on_gpu = u2netp.predict(rgb)
    bshm.predict(rgb)  # both frameworks busy on the same GPU, each in its process
    u2netp.unload()
    bshm.unload()
    assert used_mib(torch) - before < 256  # ending the processes gave everything back
    cpu = backend("u2netp", need(U2NETP_WEIGHTS), device="cpu")
    assert np.abs(cpu.predict(rgb) - on_gpu).mean() < 0.02  # half precision, same matte
    cpu.unload()


def test_tensorflow_memory_cap(cuda: object, model_dir: Path) -> None:
    torch = cuda
    before = used_mib(torch)
    bshm = backend("bshm", model_dir, bshm={"gpu_memory_mb": 1024})
    assert bshm.load() == "cuda:0"
    bshm.predict(bshm_graph.photo(1920, 1080))
    # The cap bounds TensorFlow's allocator; the CUDA context itself comes on top.
    assert used_mib(torch) - before < 1024 + 1024
    bshm.unload()
