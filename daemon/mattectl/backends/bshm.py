"""BSHM portrait matting on TensorFlow: ModelScope's frozen graph, loaded without ModelScope.

ModelScope's pipeline imports every model into TensorFlow's one default graph, so a second model
in the same process silently runs the first; it also contacts the hub for any model given by id.
Here each loaded model gets its own ``tf.compat.v1.Graph`` and ``Session`` and is read from a
local folder, so nothing touches the network at run time. The answer is ModelScope's: the same
tensors are fed and read (``input_image:0`` -> ``output_png:0``; see ``bshm_processing``).

GPU memory: TensorFlow maps nearly all of a GPU's memory at its first use unless told otherwise,
which would starve U²-Net's PyTorch. Before anything touches the GPU, :func:`configure_devices`
either caps TensorFlow at ``models.bshm.gpu_memory_mb`` or lets it grow on demand; listing
*physical* devices, as it does, initialises nothing.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from mattectl.backends.base import MattingBackend
from mattectl.backends.bshm_processing import postprocess, preprocess
from mattectl.errors import BackendError, ModelUnavailableError

# Most of TensorFlow's C++ INFO lines would flood the journal (a few come before this is read).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
import tensorflow as tf  # after the log level, which TensorFlow reads when imported
from google.protobuf.message import DecodeError

logger = logging.getLogger(__name__)

INPUT_TENSOR = "input_image:0"
OUTPUT_TENSOR = "output_png:0"
GRAPH_FILE = "tf_graph.pb"
WARMUP_SIZE = 64  # a first run at load pays TensorFlow's graph optimisation, not the first job


def _gpu_index(requested: str, count: int) -> int | None:
    """Which physical GPU to use; None for the CPU."""
    if requested == "cpu" or (requested == "auto" and count == 0):
        return None
    index = int(requested.partition(":")[2] or 0)
    if index >= count:
        raise BackendError(f"device '{requested}' was asked for, but TensorFlow sees "
                           f"{count} GPU(s)")
    return index


def configure_devices(requested: str, memory_mb: int) -> str:
    """Choose TensorFlow's device and bound its GPU memory before first use; returns the device
    (``cpu`` or ``cuda:N``). The settings are per process: a second model in the same process
    keeps the first one's (TensorFlow refuses changes once it has started)."""
    gpus = tf.config.list_physical_devices("GPU")
    index = _gpu_index(requested, len(gpus))
    try:
        if index is None:
            tf.config.set_visible_devices([], "GPU")
            return "cpu"
        gpu = gpus[index]
        tf.config.set_visible_devices([gpu], "GPU")
        if memory_mb:
            tf.config.set_logical_device_configuration(
                gpu, [tf.config.LogicalDeviceConfiguration(memory_limit=memory_mb)])
        else:
            os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
            tf.config.experimental.set_memory_growth(gpu, True)
    except RuntimeError as exc:  # TensorFlow already started in this process (inline mode)
        logger.debug("TensorFlow devices already configured: %s", exc)
    return "cpu" if index is None else f"cuda:{index}"


def configure_threads(intra: int, inter: int) -> None:
    """Thread pools for every session of this process (0: TensorFlow's choice)."""
    try:
        tf.config.threading.set_intra_op_parallelism_threads(intra)
        tf.config.threading.set_inter_op_parallelism_threads(inter)
    except RuntimeError as exc:
        logger.debug("TensorFlow threads already configured: %s", exc)


def read_graph_def(path: Path) -> Any:
    """Parse a frozen GraphDef, turning a truncated or corrupt file into a readable error."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelUnavailableError(f"cannot read {path}: {exc.strerror or exc}") from exc
    if not data:
        raise ModelUnavailableError(f"{path} is empty (0 bytes): pull or import it again")
    graph_def = tf.compat.v1.GraphDef()
    try:
        graph_def.ParseFromString(data)
    except DecodeError as exc:
        raise ModelUnavailableError(
            f"{path} ({len(data)} bytes) is not a TensorFlow graph: truncated or corrupt "
            f"({exc}); `mattectl models verify bshm` checks the files") from exc
    return graph_def


def build_session(graph_def: Any, path: Path) -> tuple[Any, Any, Any]:
    """Import the graph into a graph of its own; returns ``(session, input, output)``."""
    graph = tf.Graph()
    try:
        with graph.as_default():
            tf.import_graph_def(graph_def, name="")
        tensors = graph.get_tensor_by_name(INPUT_TENSOR), graph.get_tensor_by_name(OUTPUT_TENSOR)
    except (ValueError, KeyError) as exc:
        raise ModelUnavailableError(
            f"{path} does not have BSHM's interface ({INPUT_TENSOR} -> {OUTPUT_TENSOR}): "
            f"{str(exc)[:300]}") from exc
    # No config: the session takes the process's device, memory and thread settings made above.
    return tf.compat.v1.Session(graph=graph), *tensors


def _one_line(message: str, limit: int = 300) -> str:
    """TensorFlow's multi-line messages as one line for a job's error column."""
    return " ".join(message.split())[:limit]


class BshmBackend(MattingBackend):
    """Returns the graph's alpha (channel 3 of ``output_png``) at the photo's size, in [0, 1].

    ``weights`` is the model folder (``tf_graph.pb`` and ``configuration.json``).
    """

    _session: Any = None
    _input: Any = None
    _output: Any = None

    def _load(self) -> str:
        bshm = self.options.bshm
        device = configure_devices(self.options.device, bshm.gpu_memory_mb)
        configure_threads(bshm.intra_op_threads or self.options.threads, bshm.inter_op_threads)
        path = self.weights / GRAPH_FILE
        self._session, self._input, self._output = build_session(read_graph_def(path), path)
        try:
            warm = self._run(np.zeros((WARMUP_SIZE, WARMUP_SIZE, 3), np.float32))
            postprocess(warm, WARMUP_SIZE, WARMUP_SIZE)
        except (BackendError, ValueError) as exc:
            self._unload()
            raise ModelUnavailableError(f"{path} loads but does not run as BSHM: {exc}") from exc
        return device

    def _unload(self) -> None:
        if self._session is not None:
            self._session.close()
        self._session = self._input = self._output = None

    def _run(self, image: np.ndarray) -> np.ndarray:
        try:
            return self._session.run(self._output, feed_dict={self._input: image})
        except tf.errors.ResourceExhaustedError as exc:
            raise BackendError(f"{self.name} ran out of memory on a {image.shape[1]}x"
                               f"{image.shape[0]} input: {_one_line(exc.message)}") from exc
        except tf.errors.OpError as exc:
            raise BackendError(f"{self.name} failed in TensorFlow: "
                               f"{_one_line(exc.message)}") from exc

    def reset_peak_memory(self) -> None:
        if self.device not in (None, "cpu"):
            # Only the chosen GPU is visible to TensorFlow: it is its GPU:0.
            tf.config.experimental.reset_memory_stats("GPU:0")

    def peak_memory(self) -> int | None:
        if self.device in (None, "cpu"):
            return None
        return int(tf.config.experimental.get_memory_info("GPU:0")["peak"])

    def _predict(self, rgb: np.ndarray) -> np.ndarray:
        height, width = rgb.shape[:2]
        output = self._run(preprocess(rgb, self.options.bshm.max_side))
        try:
            return postprocess(output, width, height)
        except ValueError as exc:
            raise BackendError(f"{self.name}: {exc}") from exc
