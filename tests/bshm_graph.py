"""Small frozen TensorFlow graphs with BSHM's interface, laid out as ModelScope model folders.

``input_image:0`` (HxWx3 float, RGB 0..255) -> ``output_png:0`` (HxWx4 uint8 RGBA). The alpha does
real work that a wrong input would change: a 3x3 convolution that weighs R, G and B differently
(0.9, -0.5, 0.3) on the photo scaled to 0..1, through a sigmoid. Swapped channels, a missing or
doubled /255, or a resize that should not be there all give a different alpha.

Variants: ``invert`` answers with the opposite response (a second, different model); for the
isolation tests, real TensorFlow failures rather than Python stand-ins:

- ``abort``: when the top-left pixel is pure red, runs TensorFlow's ``Abort`` op, a C++ CHECK
  failure that ends the process with SIGABRT;
- ``hang``: when the top-left pixel is pure blue, dequeues from an empty queue, which blocks
  inside ``Session.run`` for ever;
- ``error``: when the top-left pixel is pure green, a failed assertion raises an ``OpError``
  (what an out-of-memory error looks like to the caller).

Used by the BSHM tests and scripts/bench_isolation.py; TensorFlow is imported only when a graph
is built.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

CONFIGURATION = {
    "framework": "tensorflow",
    "task": "portrait-matting",
    "pipeline": {"type": "unet-image-matting"},
}
RED = (255, 0, 0)
GREEN = (0, 255, 0)
BLUE = (0, 0, 255)
WEIGHTS = (0.9, -0.5, 0.3)


def _kernel() -> np.ndarray:
    kernel = np.zeros((3, 3, 3, 1), np.float32)
    for channel, weight in enumerate(WEIGHTS):
        kernel[:, :, channel, 0] = weight * 6.0 / 9.0
    return kernel


def graph_bytes(variant: str = "matte") -> bytes:
    """A frozen GraphDef, serialised."""
    import tensorflow as tf

    graph = tf.Graph()
    with graph.as_default():
        image = tf.compat.v1.placeholder(tf.float32, [None, None, 3], name="input_image")
        response = tf.nn.conv2d(image[None] / 255.0, tf.constant(_kernel()), strides=1,
                                padding="SAME")[0, :, :, 0]
        if variant == "invert":
            response = -response
        alpha = tf.cast(tf.round(tf.sigmoid(response - 1.0) * 255.0), tf.uint8)
        rgba = tf.concat([tf.cast(image, tf.uint8), alpha[:, :, None]], axis=2)
        corner = image[0, 0]
        if variant == "abort":
            is_red = tf.reduce_all(tf.equal(corner, tf.constant(RED, tf.float32)))

            def crash() -> tf.Tensor:
                with tf.control_dependencies([tf.raw_ops.Abort(error_msg="test graph abort")]):
                    return tf.identity(rgba)

            rgba = tf.cond(is_red, crash, lambda: tf.identity(rgba))
        elif variant == "hang":
            queue = tf.queue.FIFOQueue(1, tf.uint8, shapes=[])
            is_blue = tf.reduce_all(tf.equal(corner, tf.constant(BLUE, tf.float32)))
            rgba = tf.cond(is_blue, lambda: rgba + queue.dequeue(), lambda: tf.identity(rgba))
        elif variant == "error":
            is_green = tf.reduce_all(tf.equal(corner, tf.constant(GREEN, tf.float32)))
            check = tf.debugging.Assert(tf.logical_not(is_green), ["test graph error"])
            with tf.control_dependencies([check]):
                rgba = tf.identity(rgba)
        elif variant not in ("matte", "invert"):
            raise ValueError(variant)
        tf.identity(rgba, name="output_png")
    return graph.as_graph_def().SerializeToString()


def write_model_dir(folder: Path, variant: str = "matte") -> Path:
    """``folder`` laid out as ModelScope lays out BSHM: tf_graph.pb + configuration.json."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tf_graph.pb").write_bytes(graph_bytes(variant))
    (folder / "configuration.json").write_text(json.dumps(CONFIGURATION, indent=2))
    return folder


def photo(width: int, height: int, seed: int = 0, corner: tuple[int, int, int] | None = None
          ) -> np.ndarray:
    """A smooth random RGB photo (uint8) with structure at several scales."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (max(2, height // 16), max(2, width // 16), 3), dtype=np.uint8)
    smooth = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    noise = rng.integers(-20, 21, (height, width, 3))
    rgb = np.clip(smooth.astype(np.int16) + noise, 0, 255).astype(np.uint8)
    if corner is not None:
        rgb[0, 0] = corner
    return rgb
