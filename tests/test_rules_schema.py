"""Rule presets are validated as strictly as the config: every problem by key path."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from mattectl import checks
from mattectl.errors import ConfigError
from mattectl.imageio.options import OutputFormat, OutputOptions
from mattectl.rules.presets import find_presets, load_preset, preset_dirs
from mattectl.rules.schema import RuleSet

GOOD = """
description = "test"

[[rules]]
name = "small"
when.subject_fraction = { max = 0.25 }
model = "u2netp"
crop_to_subject = true

[[rules]]
name = "rest"
model = "bshm"
fallback = ["u2net"]
"""


CROP = "crop_to_subject = true"
OUTPUT = "\n[rules.output]\n"


def write(tmp_path: Path, text: str, name: str = "p") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


def problems(tmp_path: Path, text: str) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as info:
        checks.load_preset(write(tmp_path, text))  # model names checked against the catalog
    return info.value.problems


def test_a_good_preset_loads(tmp_path: Path) -> None:
    preset = load_preset(write(tmp_path, GOOD))
    assert [r.name for r in preset.ruleset.rules] == ["small", "rest"]
    assert preset.ruleset.models == ("u2netp", "bshm", "u2net")
    assert preset.ruleset.needs_subject
    assert len(preset.sha256) == 64


def test_bshm_is_valid_before_the_catalog_knows_it(tmp_path: Path) -> None:
    # The BSHM backend is being added in parallel; presets must not depend on it being there.
    assert checks.load_preset(write(tmp_path, GOOD)).ruleset.rules[1].model == "bshm"


def test_model_names_are_checked_only_against_a_catalog_given(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace('model = "u2netp"', 'model = "u3net"', 1))
    assert load_preset(path).ruleset.rules[0].model == "u3net"  # rules know no catalog
    with pytest.raises(ConfigError) as info:
        load_preset(path, models=("u2net",))
    assert info.value.problems == [("rules[0].model", "unknown model 'u3net' (known: bshm, u2net)")]


@pytest.mark.parametrize(("change", "key", "message"), [
    (("model = \"u2netp\"", "model = \"u3net\""), "rules[0].model", "unknown model 'u3net'"),
    (("crop_to_subject = true", "crop_to_subject = true\ncolour = 1"), "rules[0].colour",
     "unknown key"),
    (("{ max = 0.25 }", "{ max = 1.5 }"), "rules[0].when.subject_fraction",
     "between 0 and 1"),
    (("{ max = 0.25 }", "{ min = 0.5, max = 0.25 }"), "rules[0].when.subject_fraction",
     "must be below max"),
    (("{ max = 0.25 }", "{ }"), "rules[0].when.subject_fraction", "give min, max or both"),
    (("when.subject_fraction", "when.subject_size"), "rules[0].when.subject_size",
     "unknown key"),
    (("fallback = [\"u2net\"]", "fallback = [\"bshm\"]"), "rules[1]", "listed twice"),
    (("crop_to_subject = true", "crop_margin = 0.2"), "rules[0]",
     "crop_margin needs crop_to_subject"),
    (("crop_to_subject = true", "crop_to_subject = true\ncrop_margin = 2"),
     "rules[0].crop_margin", "less than or equal to 1"),
    (("name = \"rest\"", "name = \"small\""), "", "rule names must be unique: small"),
    (("name = \"rest\"", "name = \"rest\"\nwhen.folder = [\"x\"]"), "",
     "the last rule ('rest') must have no conditions"),
    (("name = \"small\"", "name = \"has space\""), "rules[0]", "rule name 'has space'"),
    ((CROP, CROP + OUTPUT + 'format = "gif"'), "rules[0].output.format",
     "Input should be 'png', 'tiff', 'webp', 'jpeg' or 'matte'"),
    ((CROP, CROP + OUTPUT + 'background = "white"'), "rules[0].output.background",
     "colour 'white' is not '#rrggbb'"),
    ((CROP, CROP + OUTPUT + 'format = "jpeg"\ncolor = "#fff"'), "rules[0].output.color",
     "unknown key"),
    ((CROP, CROP + OUTPUT + "jpeg_quality = 101"), "rules[0].output.jpeg_quality",
     "less than or equal to 100"),
    ((CROP, CROP + OUTPUT + "trim_margin = -4"), "rules[0].output.trim_margin",
     "greater than or equal to 0"),
    ((CROP, CROP + OUTPUT + 'format = "png"\nbackground = "#fff"'), "rules[0].output",
     "background applies to format = 'jpeg' only, not 'png'"),
    ((CROP, CROP + OUTPUT + "trim = false\ntrim_margin = 10"), "rules[0].output",
     "trim_margin needs trim = true"),
    ((CROP, CROP + OUTPUT), "rules[0].output", "an empty output table"),
    ((CROP, CROP + "\noutput = 'jpeg'"), "rules[0].output", "valid dictionary"),
    ((CROP, CROP + '\nsecond_opinion = { below = 1.5, model = "u2net" }'),
     "rules[0].second_opinion.below", "less than or equal to 1"),
    ((CROP, CROP + '\nsecond_opinion = { below = 0.5, model = "u3net" }'),
     "rules[0].second_opinion.model", "u3net"),
    ((CROP, CROP + '\nsecond_opinion = { below = 0.5 }'),
     "rules[0].second_opinion.model", "required key is missing"),
])
def test_invalid_presets_are_reported_by_key(tmp_path: Path, change: tuple[str, str],
                                             key: str, message: str) -> None:
    found = problems(tmp_path, GOOD.replace(*change, 1))
    assert any(k == key and message in m for k, m in found), found


def test_an_empty_preset_and_bad_toml_are_errors(tmp_path: Path) -> None:
    assert problems(tmp_path, "description = 'x'\n") == [("rules", "required key is missing")]
    assert problems(tmp_path, "[[rules]\n")[0][1].startswith("not valid TOML")


def test_every_shipped_preset_is_valid() -> None:
    presets = find_presets(preset_dirs(None))
    assert {"default", "ecommerce", "live", "group-and-small-subjects"} <= set(presets)
    for path in presets.values():
        ruleset = checks.load_preset(path).ruleset
        assert isinstance(ruleset, RuleSet)
        assert ruleset.rules[-1].when.empty


def test_a_rule_output_replaces_only_the_folder_keys_it_names(tmp_path: Path) -> None:
    text = GOOD.replace(CROP, CROP + OUTPUT + 'format = "jpeg"\nbackground = "#2040c0"\n'
                        "trim = true\ntrim_margin = 40", 1)
    small, rest = load_preset(write(tmp_path, text)).ruleset.rules
    assert rest.output is None
    assert small.output is not None
    assert small.output.to_dict() == {"format": "jpeg", "background": "#2040c0", "trim": True,
                                      "trim_margin": 40}
    assert str(small.output) == "format jpeg, background #2040c0, trim true, trim_margin 40"
    folder = OutputOptions(format=OutputFormat.PNG, jpeg_quality=80, keep_16bit=False)
    assert small.output.apply(folder) == OutputOptions(
        format=OutputFormat.JPEG, background=(0x20, 0x40, 0xc0), jpeg_quality=80, trim=True,
        trim_margin=40, keep_16bit=False)


def test_a_rule_output_without_format_may_set_jpeg_keys_for_a_jpeg_folder(
        tmp_path: Path) -> None:
    text = GOOD.replace(CROP, CROP + OUTPUT + 'background = "#000"\njpeg_quality = 70', 1)
    output = load_preset(write(tmp_path, text)).ruleset.rules[0].output
    assert output is not None
    folder = OutputOptions(format=OutputFormat.JPEG)
    assert output.apply(folder) == replace(folder, background=(0, 0, 0), jpeg_quality=70)
