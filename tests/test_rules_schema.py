"""Rule presets are validated as strictly as the config: every problem by key path."""

from __future__ import annotations

from pathlib import Path

import pytest

from mattectl.errors import ConfigError
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


def write(tmp_path: Path, text: str, name: str = "p") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


def problems(tmp_path: Path, text: str) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as info:
        load_preset(write(tmp_path, text))
    return info.value.problems


def test_a_good_preset_loads(tmp_path: Path) -> None:
    preset = load_preset(write(tmp_path, GOOD))
    assert [r.name for r in preset.ruleset.rules] == ["small", "rest"]
    assert preset.ruleset.models == ("u2netp", "bshm", "u2net")
    assert preset.ruleset.needs_subject
    assert len(preset.sha256) == 64


def test_bshm_is_valid_before_the_catalog_knows_it(tmp_path: Path) -> None:
    # The BSHM backend is being added in parallel; presets must not depend on it being there.
    assert load_preset(write(tmp_path, GOOD)).ruleset.rules[1].model == "bshm"


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
        ruleset = load_preset(path).ruleset
        assert isinstance(ruleset, RuleSet)
        assert ruleset.rules[-1].when.empty
