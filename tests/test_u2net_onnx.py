"""U²-NetP exported to ONNX (what rembg runs as its custom model) computes what PyTorch computes:
onnxruntime on the exported file against the PyTorch network in float32, on a real photo."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mattectl.backends.u2net_onnx import INPUT_NAME, OUTPUT_NAMES, build_network, export_onnx
from mattectl.backends.u2net_processing import postprocess, preprocess
from mattectl.evaluation.dataset import load_rgb

from .support import U2NETP_WEIGHTS, need


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("onnx", reason="exporting needs the onnx package (the bench extra)")
    out = tmp_path_factory.mktemp("onnx") / "u2netp.onnx"
    result = export_onnx("u2netp", need(U2NETP_WEIGHTS), out)
    assert result.path == out
    assert result.size == out.stat().st_size
    return out


@pytest.mark.slow
def test_onnxruntime_on_the_export_matches_pytorch_float32(exported: Path,
                                                           small_photo: Path) -> None:
    ort = pytest.importorskip("onnxruntime", reason="the comparison needs onnxruntime "
                              "(the bench extra)")
    rgb = load_rgb(small_photo)
    x = np.concatenate([preprocess(rgb), preprocess(rgb[::-1].copy())])  # a batch of two
    session = ort.InferenceSession(str(exported), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == [INPUT_NAME]
    assert [o.name for o in session.get_outputs()] == list(OUTPUT_NAMES)
    runtime = session.run(None, {INPUT_NAME: x})
    with torch.inference_mode():
        reference = [t.numpy() for t in build_network("u2netp", U2NETP_WEIGHTS)(
            torch.from_numpy(x))]
    for got, want in zip(runtime, reference, strict=True):
        assert got.shape == want.shape == (2, 1, 320, 320)
        assert float(np.abs(got - want).max()) < 1e-4
    # The alpha written at the photo's size: within one 8-bit level.
    h, w = rgb.shape[:2]
    alpha_ort = postprocess(runtime[0][0, 0], w, h)
    alpha_torch = postprocess(reference[0][0, 0], w, h)
    assert float(np.abs(alpha_ort - alpha_torch).max()) <= 1 / 255 + 1e-6


def test_a_checkpoint_of_another_model_is_refused(tmp_path: Path) -> None:
    from mattectl.errors import ModelUnavailableError

    other = tmp_path / "other.pth"
    torch.save({"conv.weight": torch.zeros(1)}, other)
    with pytest.raises(ModelUnavailableError, match="is not a u2netp checkpoint"):
        build_network("u2netp", other)
