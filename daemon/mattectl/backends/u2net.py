"""U²-Net and U²-NetP on PyTorch: CUDA in half precision when there is a GPU, else the CPU, in
bfloat16 where the CPU runs it faster than float32 (see :mod:`mattectl.backends.precision`).

The network runs with its batch norms folded into the convolutions, and in bfloat16 or float16
with its weights in that format (:func:`~mattectl.backends.u2net_arch.lowered`): on these CPUs
(AMX) the forward pass took 125 ms in bfloat16 weights against 150 ms under autocast over
float32 weights, which casts every weight and many activations on every pass."""

from __future__ import annotations

import copy
import logging
import pickle
import time
import zipfile
from pathlib import Path

import numpy as np
import torch

from mattectl.backends import codec_for, precision
from mattectl.backends.base import MattingBackend
from mattectl.backends.catalog import ModelSpec
from mattectl.backends.u2net_arch import U2NET, U2NETP, fold_batch_norms, lowered
from mattectl.backends.u2net_processing import INPUT_SIZE
from mattectl.config import ModelsConfig
from mattectl.errors import BackendError, ModelUnavailableError

logger = logging.getLogger(__name__)

ARCHITECTURES = {"u2net": U2NET, "u2netp": U2NETP}


def resolve_device(requested: str) -> torch.device:
    """``auto`` means the first GPU when CUDA works, else the CPU."""
    if requested == "auto":
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    device = torch.device(requested)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise BackendError(f"device '{requested}' was asked for, but CUDA is not available")
    return device


def cap_gpu_memory(device: torch.device, megabytes: int) -> None:
    """Bound PyTorch's caching allocator on ``device`` (what BSHM's TensorFlow may not take);
    an allocation past the cap raises torch.OutOfMemoryError, which fails the job, not the GPU."""
    total = torch.cuda.get_device_properties(device).total_memory
    fraction = min(1.0, megabytes * 2**20 / total)
    torch.cuda.set_per_process_memory_fraction(fraction, device)
    logger.info("PyTorch may use %d MB of %s (%.0f%%)", megabytes, device, fraction * 100)


def load_state_dict(path) -> dict[str, torch.Tensor]:
    """Read a checkpoint as plain tensors, never executing pickled code."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, pickle.UnpicklingError) as exc:
        raise ModelUnavailableError(
            f"cannot read weights {path}: {exc} (truncated or corrupt? "
            "`mattectl models verify` checks the files)") from exc
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ModelUnavailableError(f"{path} holds no state_dict")
    return {key.removeprefix("module."): value for key, value in state.items()}


class U2NetBackend(MattingBackend):
    """Returns the official ``d0`` output, min-max normalised and resized back to the photo."""

    _net: torch.nn.Module | None = None
    _float32: torch.nn.Module | None = None  # while loading: the network calibration starts from
    _nets: dict[str, torch.nn.Module] = {}  # noqa: RUF012 (replaced per instance in _load)
    _torch_device: torch.device
    _dtype: torch.dtype = torch.float32
    _memory_format: torch.memory_format = torch.contiguous_format

    def __init__(self, spec: ModelSpec, weights: Path, options: ModelsConfig) -> None:
        super().__init__(spec, weights, options)
        self.codec = codec_for(spec.backend, options)

    def _load(self) -> str:
        device = resolve_device(self.options.device)
        if self.options.threads:
            torch.set_num_threads(self.options.threads)
        net = ARCHITECTURES[self.spec.variant]()
        state = load_state_dict(self.weights)
        try:
            # Weights may be stored in half precision; the network is built in float32.
            net.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
        except RuntimeError as exc:
            raise ModelUnavailableError(
                f"{self.weights} is not a {self.spec.variant} checkpoint: {str(exc)[:300]}"
            ) from exc
        if device.type == "cuda" and self.options.u2net.gpu_memory_mb:
            cap_gpu_memory(device, self.options.u2net.gpu_memory_mb)
        self._torch_device = device
        # channels_last on the CPU: oneDNN's convolutions run without reordering each input
        # (measured at 320x320, 2 threads: float32 247 ms against 308, bfloat16 153 against
        # 305); not measured on CUDA, so left as it was there.
        self._memory_format = torch.channels_last if device.type == "cpu" \
            else torch.contiguous_format
        self._float32 = fold_batch_norms(net.eval()).to(device=device,
                                                        memory_format=self._memory_format)
        self._nets = {}
        chosen = precision.choose(self.options.u2net, device, self._forward_ms,
                                  key=f"{self.spec.variant}-{torch.get_num_threads()}t-weights")
        self._net = self._network(chosen)
        self._nets, self._float32 = {}, None  # only the chosen network is kept
        self._dtype = precision.DTYPES[chosen]
        self.precision = chosen
        return str(device)

    def _network(self, name: str) -> torch.nn.Module:
        """The loaded network in number format ``name`` (made from the float32 one once)."""
        if name == "float32":
            assert self._float32 is not None
            return self._float32
        if name not in self._nets:
            assert self._float32 is not None
            self._nets[name] = lowered(copy.deepcopy(self._float32), precision.DTYPES[name])
        return self._nets[name]

    def forward_profile(self, precision_name: str, passes: int) -> tuple[list[float], float]:
        with self._lock:
            self.load()
            if precision_name != self.precision:
                raise BackendError(f"{self.name} is loaded in {self.precision} here: it can "
                                   f"time {self.precision} only")
            self._forward_ms(precision_name, 1)  # warm-up
            return self._forward_ms(precision_name, passes), self._flops()

    def _flops(self) -> float:
        """Floating-point operations of one forward pass (multiply and add counted apart): the
        convolutions, counted from their shapes as one pass runs (the rest is a few percent)."""
        assert self._net is not None
        total = [0.0]

        def count(module: torch.nn.Module, _inputs: object, output: torch.Tensor) -> None:
            conv = module  # a Conv2d: output pixels x kernel x in-channels per group, x2
            assert isinstance(conv, torch.nn.Conv2d)
            kernel = conv.kernel_size[0] * conv.kernel_size[1] * conv.in_channels / conv.groups
            total[0] += 2.0 * output.numel() * kernel

        hooks = [m.register_forward_hook(count) for m in self._net.modules()
                 if isinstance(m, torch.nn.Conv2d)]
        try:
            self._forward_ms(self.precision or "float32", 1)
        finally:
            for hook in hooks:
                hook.remove()
        return total[0]

    def _forward_ms(self, name: str, passes: int) -> list[float]:
        """Milliseconds of ``passes`` forward passes on one 320x320 input in ``name`` (the
        loaded network's format, or while loading, each format calibration compares)."""
        net = self._net if self._net is not None and name == self.precision \
            else self._network(name)
        x = torch.zeros((1, 3, INPUT_SIZE, INPUT_SIZE), device=self._torch_device,
                        dtype=precision.DTYPES[name] if name == "float16" else torch.float32
                        ).contiguous(memory_format=self._memory_format)
        times = []
        for _ in range(passes):
            start = time.perf_counter()
            with torch.inference_mode():
                net(x)
            times.append((time.perf_counter() - start) * 1000.0)
        return times

    def _unload(self) -> None:
        self._net = None
        if self._torch_device.type == "cuda":
            torch.cuda.empty_cache()

    def _predict(self, rgb: np.ndarray) -> np.ndarray:  # the codec's path is predict's
        codec = self.codec
        assert codec is not None
        return codec.decode(self._forward(codec.encode(rgb))[0], rgb.shape[1], rgb.shape[0])

    def _forward(self, inputs: np.ndarray) -> np.ndarray:
        """``Nx3x320x320`` float32 (the codec's) -> the network's ``d0``, ``Nx320x320``."""
        assert self._net is not None
        # Converted on the host: half precision halves the bytes copied to the GPU. (bfloat16
        # takes float32 in: the network's first stage casts it.)
        x_host = torch.from_numpy(np.ascontiguousarray(inputs, np.float32))
        if self._dtype == torch.float16:
            x_host = x_host.to(torch.float16)
        if self._torch_device.type == "cuda":
            x_host = x_host.pin_memory()
        try:
            with torch.inference_mode():
                x_device = x_host.to(self._torch_device, non_blocking=True)
                d0 = self._net(x_device.contiguous(memory_format=self._memory_format))[0]
                return d0[:, 0].float().cpu().numpy()
        except torch.OutOfMemoryError as exc:
            raise BackendError(f"{self.name} ran out of GPU memory: {exc}") from exc

    def set_threads(self, threads: int) -> bool:
        # torch's intra-op pool is per process; it can be resized at any time.
        torch.set_num_threads(threads)
        return True

    def reset_peak_memory(self) -> None:
        if self.loaded and self._torch_device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self._torch_device)

    def peak_memory(self) -> int | None:
        if not self.loaded or self._torch_device.type != "cuda":
            return None
        return int(torch.cuda.max_memory_allocated(self._torch_device))
