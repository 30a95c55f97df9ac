"""BSHM on TensorFlow, run in this process, against ModelScope's own portrait-matting pipeline.

The model is a small frozen graph with BSHM's interface (tests/bshm_graph.py) in a ModelScope
model folder; ModelScope is given its absolute path, so neither side reaches a network.
"""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from PIL import Image

from mattectl import config
from mattectl.backends.base import MattingBackend
from mattectl.backends.bshm import BshmBackend
from mattectl.backends.cache import ModelCache
from mattectl.backends.catalog import MODELS
from mattectl.errors import ModelUnavailableError
from mattectl.imageio.options import EdgeMode, OutputOptions
from mattectl.matting.pipeline import Photo, PhotoPipeline, Recipe

from . import bshm_graph

pytest.importorskip("tensorflow")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return bshm_graph.write_model_dir(tmp_path_factory.mktemp("bshm") / "matte")


@pytest.fixture(scope="module")
def modelscope_matting(model_dir: Path) -> Callable[[Any], np.ndarray]:
    """ModelScope's portrait-matting pipeline on the test model; returns the uint8 alpha."""
    pipelines = pytest.importorskip("modelscope.pipelines")
    from modelscope.outputs import OutputKeys
    from modelscope.utils.constant import Tasks

    matting = pipelines.pipeline(Tasks.portrait_matting, model=str(model_dir.resolve()))

    def run(image: Any) -> np.ndarray:
        return matting(image)[OutputKeys.OUTPUT_IMG][:, :, 3]

    return run


def make_backend(model_dir: Path, **bshm: Any) -> MattingBackend:
    options = config.parse({"models": {"device": "cpu", "isolation": "inline", "bshm": bshm}})
    return BshmBackend(MODELS["bshm"], model_dir, options.models)


def to_uint8(alpha: np.ndarray) -> np.ndarray:
    return np.clip(alpha * 255.0 + 0.5, 0, 255).astype(np.uint8)


def test_same_alpha_as_modelscope(model_dir: Path, modelscope_matting: Callable[[Any], np.ndarray],
                                  tmp_path: Path, no_network: list[str]) -> None:
    backend = make_backend(model_dir)
    for width, height in ((97, 61), (640, 480)):
        rgb = bshm_graph.photo(width, height, seed=width)
        path = tmp_path / f"photo-{width}.png"
        Image.fromarray(rgb).save(path)
        reference = modelscope_matting(str(path))  # ModelScope reads the file itself
        ours = backend.predict(rgb)
        assert ours.shape == (height, width)
        assert ours.dtype == np.float32
        np.testing.assert_array_equal(to_uint8(ours), reference)
        assert reference.std() > 20, "the test model must give a varied alpha"
        # The comparison has teeth: the same photo with red and blue swapped mattes differently.
        swapped = to_uint8(backend.predict(np.ascontiguousarray(rgb[:, :, ::-1])))
        assert np.abs(swapped.astype(int) - reference).mean() > 10
    backend.unload()
    assert no_network == []


def test_long_side_reduced_then_alpha_enlarged(
        model_dir: Path, modelscope_matting: Callable[[Any], np.ndarray]) -> None:
    rgb = bshm_graph.photo(400, 200, seed=3)
    alpha = make_backend(model_dir, max_side=128).predict(rgb)
    assert alpha.shape == (200, 400)
    reduced = cv2.resize(rgb, (128, 64), interpolation=cv2.INTER_AREA)
    small = modelscope_matting(np.ascontiguousarray(reduced[:, :, ::-1]))  # ndarray input is BGR
    expected = cv2.resize(small.astype(np.float32) / 255, (400, 200),
                          interpolation=cv2.INTER_LINEAR)
    np.testing.assert_allclose(alpha, expected, atol=1e-6)
    # ...and a photo at or under the limit goes through untouched.
    np.testing.assert_array_equal(to_uint8(make_backend(model_dir, max_side=400).predict(rgb)),
                                  modelscope_matting(np.ascontiguousarray(rgb[:, :, ::-1])))


def _png(array: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".png", array)
    assert ok
    return data.tobytes()


def _inputs(rgb: np.ndarray) -> dict[str, bytes]:
    """The same 8-bit picture as gray, RGBA, 16-bit gray and 16-bit RGB files."""
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    # Opaque: imageio composites a transparent input over white for the model.
    rgba = Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)]), "RGBA")
    buffer = io.BytesIO()
    rgba.save(buffer, format="PNG")
    bgr = np.ascontiguousarray(rgb[:, :, ::-1])
    return {"gray": _png(gray), "rgba": buffer.getvalue(),
            "gray16": _png(gray.astype(np.uint16) * 257),
            "rgb16": _png(bgr.astype(np.uint16) * 257)}


def test_gray_rgba_and_16_bit_photos_reach_the_graph_as_8_bit_rgb(
        model_dir: Path, modelscope_matting: Callable[[Any], np.ndarray],
        tmp_path: Path) -> None:
    settings = config.parse({"models": {"device": "cpu", "isolation": "inline",
                                        "paths": {"bshm": str(model_dir)}}})
    models = ModelCache(settings.models, tmp_path / "models")
    pipeline = PhotoPipeline(models, max_pixels=10**8)
    rgb = bshm_graph.photo(120, 90, seed=5)
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    expected = {"gray": np.dstack([gray] * 3), "rgba": rgb, "gray16": np.dstack([gray] * 3),
                "rgb16": rgb}
    for kind, data in _inputs(rgb).items():
        # the model's alpha as it came (no edge refinement, which works on any model's alpha)
        raw = Recipe("bshm", options=OutputOptions(clean_edges=False))
        cutout = pipeline.run(Photo(f"{kind}.png", data), raw)
        alpha = np.asarray(Image.open(io.BytesIO(cutout.data)))[:, :, 3]
        reference = modelscope_matting(np.ascontiguousarray(expected[kind][:, :, ::-1]))
        np.testing.assert_array_equal(alpha, reference, err_msg=kind)
    models.unload_all()


def test_each_model_runs_in_its_own_graph(model_dir: Path, tmp_path: Path) -> None:
    # ModelScope's pipelines share TensorFlow's default graph: a second model silently runs the
    # first. Two backends in one process must each answer with their own model.
    inverted = bshm_graph.write_model_dir(tmp_path / "invert", "invert")
    first, second = make_backend(model_dir), make_backend(inverted)
    rgb = bshm_graph.photo(64, 48, seed=9)
    before = first.predict(rgb)
    other = second.predict(rgb)
    np.testing.assert_array_equal(first.predict(rgb), before)
    assert np.abs(before - other).mean() > 0.1
    first.unload()
    second.unload()


@pytest.mark.slow
def test_thread_counts_come_from_the_config(model_dir: Path) -> None:
    script = (
        "import sys; from pathlib import Path; import tensorflow as tf\n"
        "from mattectl import config\n"
        "from mattectl.backends.bshm import BshmBackend\n"
        "from mattectl.backends.catalog import MODELS\n"
        "o = config.parse({'models': {'device': 'cpu', 'bshm': {'intra_op_threads': 1,"
        " 'inter_op_threads': 2}}}).models\n"
        "BshmBackend(MODELS['bshm'], Path(sys.argv[1]), o).load()\n"
        "print(tf.config.threading.get_intra_op_parallelism_threads(),"
        " tf.config.threading.get_inter_op_parallelism_threads())\n"
    )
    daemon_dir = str(Path(__file__).resolve().parents[1] / "daemon")
    out = subprocess.run([sys.executable, "-c", script, str(model_dir)], capture_output=True,
                         text=True, env={"PYTHONPATH": daemon_dir, "PATH": "/usr/bin:/bin"},
                         timeout=240, check=True)
    assert out.stdout.split() == ["1", "2"]


def test_truncated_graph_is_reported_as_such(model_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "configuration.json").write_bytes((model_dir / "configuration.json").read_bytes())
    data = (model_dir / "tf_graph.pb").read_bytes()
    (broken / "tf_graph.pb").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelUnavailableError, match="truncated or corrupt"):
        make_backend(broken).load()
    (broken / "tf_graph.pb").write_bytes(b"")
    with pytest.raises(ModelUnavailableError, match="empty"):
        make_backend(broken).load()


def test_graph_without_bshm_interface_is_refused(tmp_path: Path) -> None:
    import tensorflow as tf

    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, None, 3], name="image")
        tf.identity(x, name="alpha")
    folder = tmp_path / "other"
    folder.mkdir()
    (folder / "tf_graph.pb").write_bytes(graph.as_graph_def().SerializeToString())
    (folder / "configuration.json").write_text("{}")
    with pytest.raises(ModelUnavailableError, match="does not have BSHM's interface"):
        make_backend(folder).load()


def test_bshm_alpha_is_matted_like_any_models(model_dir: Path, tmp_path: Path) -> None:
    """The default finish (edges = "matting") takes BSHM's full-resolution alpha as it takes
    U²-Net's enlarged one: a whole cutout, the same bytes every time."""
    settings = config.parse({"models": {"device": "cpu", "isolation": "inline",
                                        "paths": {"bshm": str(model_dir)}}})
    models = ModelCache(settings.models, tmp_path / "models")
    pipeline = PhotoPipeline(models, max_pixels=10**8)
    data = _inputs(bshm_graph.photo(120, 90, seed=5))["rgba"]
    recipe = Recipe("bshm")
    assert recipe.options.edge_mode is EdgeMode.MATTING
    first = pipeline.run(Photo("p.png", data), recipe)
    assert first.data == pipeline.run(Photo("p.png", data), recipe).data
    with Image.open(io.BytesIO(first.data)) as png:
        png.load()
        assert png.size == (120, 90) and png.mode == "RGBA"
    models.unload_all()
