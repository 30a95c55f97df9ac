"""The output keys of a watch folder (config.py): validation and the OutputOptions they make."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

from mattectl import config
from mattectl.config import Settings
from mattectl.errors import ConfigError
from mattectl.imageio.options import EdgeMode, OutputFormat, OutputOptions

REPO = Path(__file__).resolve().parents[1]


def test_defaults_are_an_rgba_png_with_clean_edges(make_settings: Callable[..., Settings]) -> None:
    assert make_settings().watch[0].output_options == OutputOptions()


def test_keys_become_output_options(make_settings: Callable[..., Settings]) -> None:
    watch = make_settings(watch={
        "output_format": "jpeg", "background": "#0a7", "jpeg_quality": 88, "trim": True,
        "trim_margin": 12, "keep_16bit": False, "clean_edges": False}).watch[0]
    assert watch.output_options == OutputOptions(
        format=OutputFormat.JPEG, background=(0, 170, 119), jpeg_quality=88, trim=True,
        trim_margin=12, keep_16bit=False, clean_edges=False)


@pytest.mark.parametrize(("keys", "edges", "fill"), [
    ({}, EdgeMode.MATTING, True),  # the defaults, chosen on truth (scripts/measure_refine.py)
    ({"edges": "guided", "fill_holes": False}, EdgeMode.GUIDED, False),
    ({"edges": "clean"}, EdgeMode.CLEAN, True),
    ({"clean_edges": False, "edges": "matting"}, EdgeMode.OFF, True),  # see test_compose
])
def test_edges_and_hole_filling_are_folder_keys(make_settings: Callable[..., Settings],
                                                keys: dict, edges: EdgeMode, fill: bool) -> None:
    options = make_settings(watch=keys).watch[0].output_options
    assert options.edge_mode is edges
    assert options.fill_holes is fill


@pytest.mark.parametrize(("keys", "where", "why"), [
    ({"output_format": "gif"}, "watch[0].output_format", "png"),
    ({"edges": "blur"}, "watch[0].edges", "matting"),
    ({"background": "white"}, "watch[0].background", "#rrggbb"),
    ({"jpeg_quality": 0}, "watch[0].jpeg_quality", "greater than or equal to 1"),
    ({"trim_margin": -1}, "watch[0].trim_margin", "greater than or equal to 0"),
    ({"output_template": "{stem}.png", "output_format": "jpeg"}, "watch[0].output_template",
     "ends in .png but output_format is jpeg"),
    ({"output_template": "{stem}.tif", "output_format": "png"}, "watch[0].output_template",
     "end it in .png"),
    ({"output_template": "{nope}"}, "watch[0].output_template", "bad template"),
])
def test_bad_output_keys_are_reported_by_key(make_settings: Callable[..., Settings],
                                              keys: dict, where: str, why: str) -> None:
    with pytest.raises(ConfigError) as caught:
        make_settings(watch=keys)
    assert any(key == where and why in message for key, message in caught.value.problems), \
        caught.value.problems


def test_example_config_documents_the_output_keys(tmp_path: Path) -> None:
    text = (REPO / "config.example.toml").read_text()
    data = tomllib.loads(text)
    for key in ("output_format", "background", "jpeg_quality", "trim", "trim_margin",
                "keep_16bit", "clean_edges", "output_template"):
        assert key in data["watch"][0], key
    (tmp_path / "in").mkdir()
    settings = config.parse(data, base_dir=tmp_path)
    assert settings.watch[0].output_options == OutputOptions()
