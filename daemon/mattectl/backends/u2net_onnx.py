"""U²-Net weights exported to ONNX with ``torch.onnx``: the file other runtimes (onnxruntime,
rembg's ``u2net_custom`` model) run, so that they can be compared with mattectl on the very same
weights.

The graph is the network of :mod:`mattectl.backends.u2net_arch` in float32 (weights stored in
half precision are widened first, as the backend does): input ``input.1``, ``N x 3 x 320 x 320``
float32, normalised as :func:`mattectl.backends.u2net_processing.preprocess` makes it; outputs
``d0`` (the fused map, first, as rembg reads it) then ``d1..d6``, sigmoid maps of the same size.
The batch axis is dynamic. Needs the ``onnx`` package (the ``bench`` extra).
"""

from __future__ import annotations

import importlib.util
import io
import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from mattectl.backends.u2net import ARCHITECTURES, load_state_dict
from mattectl.backends.u2net_processing import INPUT_SIZE
from mattectl.errors import BackendError, ModelUnavailableError
from mattectl.fsutil import write_file

logger = logging.getLogger(__name__)

INPUT_NAME = "input.1"  # the name the authors' and rembg's published ONNX files use
OUTPUT_NAMES = ("d0", "d1", "d2", "d3", "d4", "d5", "d6")
OPSET = 17


@dataclass(frozen=True)
class Exported:
    path: Path
    size: int  # bytes
    variant: str
    weights: Path
    opset: int


def build_network(variant: str, weights: Path) -> torch.nn.Module:
    """The float32 network with ``weights`` loaded strictly, in eval mode, on the CPU."""
    if variant not in ARCHITECTURES:
        raise BackendError(f"cannot export '{variant}' to ONNX (known: {', '.join(ARCHITECTURES)})")
    net = ARCHITECTURES[variant]()
    state = load_state_dict(weights)
    try:
        net.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
    except RuntimeError as exc:
        raise ModelUnavailableError(
            f"{weights} is not a {variant} checkpoint: {str(exc)[:300]}") from exc
    return net.eval()


def export_onnx(variant: str, weights: Path, out: Path, *, opset: int = OPSET) -> Exported:
    """Write ``variant`` with ``weights`` as an ONNX file at ``out`` (complete or absent: written
    beside it under a temporary name, then renamed). Raises BackendError without ``onnx``."""
    if importlib.util.find_spec("onnx") is None:
        raise BackendError("exporting to ONNX needs the Python package 'onnx' (pip install onnx; "
                           "it is in the dev and bench extras)")
    net = build_network(variant, weights)
    example = torch.zeros((1, 3, INPUT_SIZE, INPUT_SIZE), dtype=torch.float32)
    # The TorchScript exporter: it needs onnx alone (the dynamo one also needs onnxscript) and
    # gives one self-contained file; its deprecation notice is not the user's concern here.
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore", DeprecationWarning)
        buffer = _export_bytes(net, example, opset)
    write_file(out, buffer, "overwrite")
    logger.info("exported %s (%s) to %s: %d bytes, opset %d", variant, weights, out,
                len(buffer), opset)
    return Exported(out, len(buffer), variant, weights, opset)


def _export_bytes(net: torch.nn.Module, example: torch.Tensor, opset: int) -> bytes:
    buffer = io.BytesIO()
    torch.onnx.export(net, (example,), buffer, dynamo=False, opset_version=opset,
                      input_names=[INPUT_NAME], output_names=list(OUTPUT_NAMES),
                      dynamic_axes={INPUT_NAME: {0: "batch"},
                                    **{name: {0: "batch"} for name in OUTPUT_NAMES}})
    return buffer.getvalue()
