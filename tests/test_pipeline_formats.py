"""End to end with the real u2netp weights: photo in, finished file out, in every format."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from mattectl.app import Daemon
from mattectl.backends.cache import ModelCache
from mattectl.config import ModelsConfig, Settings
from mattectl.fsutil import is_temp
from mattectl.imageio.metadata import read_metadata, rights
from mattectl.imageio.options import EdgeMode, OutputFormat, OutputOptions
from mattectl.matting.pipeline import Photo, PhotoPipeline, Recipe
from mattectl.store.status import JobStatus

from . import samples
from .support import HUMAN_IMAGES, need, wait_for

# A Lightroom/Photoshop export: ICC profile, EXIF, XMP and IPTC.
CAMERA_JPEG = HUMAN_IMAGES / "julia+trotti_17.jpg"


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> PhotoPipeline:
    """One loaded model for the module's tests (loading it is most of a small photo's time);
    nothing installed, so u2netp comes from the weights shipped in the package."""
    return PhotoPipeline(ModelCache(ModelsConfig(), tmp_path_factory.mktemp("models")),
                         max_pixels=100_000_000)


def subject_found(alpha: np.ndarray) -> None:
    """The model found a subject: some of the picture opaque, some transparent."""
    assert (alpha > 0.9).mean() > 0.05
    assert (alpha < 0.1).mean() > 0.05


@pytest.mark.parametrize("fmt", list(OutputFormat))
def test_every_format_from_a_real_photo(pipeline: PhotoPipeline, small_photo: Path,
                                        fmt: OutputFormat) -> None:
    cutout = pipeline.run(Photo(small_photo.name, small_photo.read_bytes()),
                          Recipe("u2netp", options=OutputOptions(format=fmt)))
    img = Image.open(io.BytesIO(cutout.data))
    assert img.size == (cutout.width, cutout.height)
    assert cutout.extension == OutputOptions(format=fmt).extension
    if fmt in (OutputFormat.PNG, OutputFormat.TIFF, OutputFormat.WEBP):
        assert img.mode == "RGBA"
        subject_found(np.asarray(img)[:, :, 3] / 255)
    elif fmt is OutputFormat.MATTE:
        assert img.mode == "L"
        subject_found(np.asarray(img) / 255)
    else:
        assert img.mode == "RGB"  # flattened onto white: the corners are background
        assert np.asarray(img)[:4, :4].min() > 200


def test_a_lightroom_export_keeps_profile_and_metadata(pipeline: PhotoPipeline) -> None:
    source = Image.open(need(CAMERA_JPEG))
    cutout = pipeline.run(Photo(CAMERA_JPEG.name, CAMERA_JPEG.read_bytes()),
                          Recipe("u2netp", options=OutputOptions(format=OutputFormat.TIFF,
                                                                 trim=True, trim_margin=20)))
    img = Image.open(io.BytesIO(cutout.data))
    assert img.info["icc_profile"] == source.info["icc_profile"]
    exif = img.getexif()
    assert exif.get(0x0110) == source.getexif().get(0x0110)  # camera model
    assert exif.get_ifd(0x8769).get(0x9003) == source.getexif().get_ifd(0x8769).get(0x9003)
    assert rights(read_metadata(img)) == rights(read_metadata(source))
    assert read_metadata(img).xmp == read_metadata(source).xmp  # orientation was already 1
    assert img.width < source.width  # trimmed to the subject
    assert img.height <= source.height


def test_daemon_writes_16bit_tiff_and_jpeg_per_folder(
        make_settings: Callable[..., Settings], small_photo: Path, tmp_path: Path) -> None:
    photo = np.asarray(Image.open(small_photo).convert("RGB"))
    wide = photo.astype(np.uint16) * 257 + 100  # a 16-bit scan, stored turned left
    profile = samples.icc_profile("Test Adobe RGB")
    settings = make_settings(watch=[
        {"name": "tiffs", "output_format": "tiff"},
        {"name": "jpegs", "output_format": "jpeg", "background": "#00ff00",
         "output_template": "{stem}-{model}"},
    ])
    out = io.BytesIO()
    tifffile.imwrite(out, np.rot90(wide, 1), photometric="rgb", compression="zlib",
                     extratags=[(274, "H", 1, 6, True),
                                (34675, "B", len(profile), profile, True)])
    (tmp_path / "in-tiffs" / "scan.tif").write_bytes(out.getvalue())
    (tmp_path / "in-jpegs" / "shot.jpg").write_bytes(small_photo.read_bytes())
    daemon = Daemon(settings)
    daemon.start()
    try:
        tif = wait_for(lambda: next((tmp_path / "out-tiffs").glob("scan.tif"), None),
                       timeout=120, what="the TIFF cutout")
        jpg = wait_for(lambda: next((tmp_path / "out-jpegs").glob("shot-u2netp.jpg"), None),
                       timeout=120, what="the JPEG cutout")
    finally:
        daemon.stop()
    with tifffile.TiffFile(tif) as written:
        page = written.pages[0]
        rgba = page.asarray()
        assert bytes(page.tags[34675].value) == profile
        assert page.tags[274].value == 1
    assert rgba.dtype == np.uint16
    assert rgba.shape == (*photo.shape[:2], 4)  # upright
    opaque = rgba[:, :, 3] == 65535
    assert opaque.any()
    # Where the subject is solid, the 16-bit source values are kept exactly.
    np.testing.assert_array_equal(rgba[:, :, :3][opaque], wide[opaque])
    shot = np.asarray(Image.open(jpg))
    assert shot.shape == photo.shape
    assert not any(is_temp(p) for p in (tmp_path / "out-jpegs").iterdir())


def test_a_symbolic_link_in_the_output_tree_cannot_lead_outside(
        make_settings: Callable[..., Settings], small_photo: Path, tmp_path: Path) -> None:
    settings = make_settings(watch={"name": "w"})
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "out-w").mkdir()
    (tmp_path / "out-w" / "shoot").symlink_to(elsewhere)
    (tmp_path / "in-w" / "shoot" / "day1").mkdir(parents=True)
    (tmp_path / "in-w" / "shoot" / "day1" / "a.jpg").write_bytes(small_photo.read_bytes())
    daemon = Daemon(settings)
    daemon.start()
    try:
        failed = wait_for(lambda: daemon.repo.list(status=[JobStatus.FAILED]), timeout=120,
                          what="the job to fail")
    finally:
        daemon.stop()
    assert "leads outside" in failed[0].error
    assert list(elsewhere.iterdir()) == []  # not even the day1 folder


@pytest.mark.slow
@pytest.mark.parametrize("edges", [EdgeMode.MATTING, EdgeMode.GUIDED])
def test_a_matted_cutout_is_complete_and_the_same_every_time(
        pipeline: PhotoPipeline, small_photo: Path, edges: EdgeMode) -> None:
    """The refinement stage on a real photo: a whole PNG of the photo's size, the subject kept,
    and byte for byte the same file on a second run (no nondeterministic solver)."""
    recipe = Recipe("u2netp", options=OutputOptions(edges=edges, fill_holes=True))
    photo = Photo(small_photo.name, small_photo.read_bytes())
    first, second = pipeline.run(photo, recipe), pipeline.run(photo, recipe)
    assert first.data == second.data
    img = Image.open(io.BytesIO(first.data))
    img.load()  # every row decodes
    assert img.size == (first.width, first.height) and img.mode == "RGBA"
    alpha = np.asarray(img)[:, :, 3] / 255
    subject_found(alpha)
    plain = pipeline.run(photo, Recipe("u2netp", options=OutputOptions(clean_edges=False)))
    plain_alpha = np.asarray(Image.open(io.BytesIO(plain.data)))[:, :, 3] / 255
    # the refinement moves edges, never the subject: the opaque parts agree
    assert ((alpha > 0.5) == (plain_alpha > 0.5)).mean() > 0.97
    assert first.refine_ms > 0
