"""Output names: the template, the format's extension, and never outside the output root."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from mattectl.config import Settings
from mattectl.errors import ConfigError, InputError
from mattectl.imageio.options import OutputFormat, OutputOptions
from mattectl.matting.naming import output_path

DAY = date(2024, 5, 6)


@pytest.mark.parametrize(("template", "fmt", "expected"), [
    ("{stem}", "png", "photo.png"),
    ("{stem}", "tiff", "photo.tif"),
    ("{stem}", "jpeg", "photo.jpg"),
    ("{stem}", "webp", "photo.webp"),
    ("{stem}-matte", "matte", "photo-matte.png"),
    ("{stem}.png", "png", "photo.png"),
    ("{stem}.TIFF", "tiff", "photo.TIFF"),
    ("{stem}.jpeg", "jpeg", "photo.jpeg"),
    ("{name}", "png", "photo.JPG.png"),  # an extension from a field is part of the name
    ("{stem}_{ext}_{model}_{date}", "png", "photo_JPG_u2netp_2024-05-06.png"),
    ("{date}/{folder}/{stem}.v2", "webp", "2024-05-06/w0/photo.v2.webp"),
])
def test_template_and_format_make_the_name(make_settings: Callable[..., Settings],
                                           template: str, fmt: str, expected: str) -> None:
    watch = make_settings(watch={"output_template": template, "output_format": fmt}).watch[0]
    target = output_path(watch, "sub/photo.JPG", "u2netp", DAY)
    assert target == watch.output / "sub" / expected


def test_a_rule_choosing_another_format_swaps_the_extension(
        make_settings: Callable[..., Settings]) -> None:
    watch = make_settings(watch={"output_template": "{stem}.png"}).watch[0]
    options = OutputOptions(format=OutputFormat.JPEG)
    assert output_path(watch, "a.tif", "m", DAY, options) == watch.output / "a.jpg"


@pytest.mark.parametrize("template", ["../{stem}", "../../etc/{stem}", "/tmp/{stem}",
                                      "{stem}/../../x"])
def test_names_never_leave_the_output_root(make_settings: Callable[..., Settings],
                                           template: str) -> None:
    with pytest.raises(ConfigError, match="output_template"):
        make_settings(watch={"output_template": template})
    # And if such a template got past the config (a rule's, say), naming still refuses it.
    watch = make_settings().watch[0].model_copy(update={"output_template": template})
    with pytest.raises(InputError, match="would land outside"):
        output_path(watch, "photo.jpg", "m", DAY)


@pytest.mark.parametrize("rel", ["..jpg", "...jpg", "a/..b.jpg", "dir.with.dots/x.jpg"])
def test_odd_file_names_stay_inside(make_settings: Callable[..., Settings], rel: str,
                                    tmp_path: Path) -> None:
    watch = make_settings().watch[0]
    target = output_path(watch, rel, "m", DAY)
    assert watch.output in target.parents


@pytest.mark.parametrize(("policy", "written", "kept"), [
    ("suffix", "photo-1.tif", b"old"), ("skip", None, b"old"), ("overwrite", "photo.tif", b"new")])
def test_collision_policies_with_the_format_extension(
        make_settings: Callable[..., Settings], policy: str, written: str | None,
        kept: bytes) -> None:
    from mattectl.fsutil import write_file

    watch = make_settings(watch={"output_format": "tiff", "on_collision": policy}).watch[0]
    target = output_path(watch, "photo.jpg", "m", DAY)
    target.parent.mkdir(parents=True)
    target.write_bytes(b"old")
    result = write_file(target, b"new", watch.on_collision)
    assert (result.name if result else None) == written
    assert target.read_bytes() == kept
    assert not [p for p in target.parent.iterdir() if p.name.startswith(".")]  # no temp left
