"""Finding presets, reloading them when edited, and the config keys that name them."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from mattectl import checks
from mattectl.config import Settings
from mattectl.errors import ConfigError
from mattectl.rules.presets import PresetStore, find_presets, preset_dirs, shipped_dir

ONE_RULE = '[[rules]]\nname = "{name}"\nmodel = "{model}"\n'


def write(folder: Path, preset: str, name: str, model: str = "u2netp") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{preset}.toml"
    path.write_text(ONE_RULE.format(name=name, model=model))
    return path


def test_shipped_presets_are_found_from_the_checkout() -> None:
    shipped = shipped_dir()
    assert shipped is not None
    assert (shipped / "default.toml").is_file()
    assert preset_dirs(None) == [shipped]


def test_a_preset_in_rules_dir_overrides_the_shipped_one(tmp_path: Path) -> None:
    mine = write(tmp_path / "rules", "live", "mine")
    dirs = preset_dirs(tmp_path / "rules")
    assert find_presets(dirs)["live"] == mine
    assert find_presets(dirs)["default"].parent == shipped_dir()
    assert PresetStore(dirs).get("live").ruleset.rules[0].name == "mine"


def test_an_edit_applies_to_the_next_use(tmp_path: Path) -> None:
    path = write(tmp_path, "p", "first")
    store = PresetStore([tmp_path])
    first = store.get("p")
    assert store.get("p") is first  # unchanged file: the parsed preset is reused
    path.write_text(ONE_RULE.format(name="second", model="u2net"))
    second = store.get("p")
    assert second.ruleset.rules[0].name == "second"
    assert second.sha256 != first.sha256


def test_a_broken_edit_keeps_the_last_good_version(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write(tmp_path, "p", "good")
    store = checks.preset_store([tmp_path])  # refuses models the catalog does not know
    good = store.get("p")
    path.write_text(ONE_RULE.format(name="bad", model="no-such-model"))
    with caplog.at_level(logging.ERROR, logger="mattectl.rules.presets"):
        assert store.get("p") is good
        assert store.get("p") is good
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "no-such-model" in errors[0].getMessage()
    path.unlink()
    assert store.get("p") is good  # a deleted file too
    write(tmp_path, "p", "fixed")
    assert store.get("p").ruleset.rules[0].name == "fixed"


def test_an_unknown_or_never_valid_preset_raises(tmp_path: Path) -> None:
    store = checks.preset_store([tmp_path])
    with pytest.raises(ConfigError, match="no preset 'nope'"):
        store.get("nope")
    write(tmp_path, "broken", "x", model="no-such-model")
    with pytest.raises(ConfigError, match="unknown model"):
        store.get("broken")
    with pytest.raises(ConfigError, match="letters, digits"):
        store.get("../etc/passwd")


# -- config: [[watch]] rules and latency_budget_ms ----------------------------------------------

def test_a_folder_names_its_preset_and_budget(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(watch={"rules": "live", "latency_budget_ms": 1500})
    assert settings.watch[0].rules == "live"
    assert settings.watch[0].latency_budget_ms == 1500
    assert settings.watch[0].model_choice == "rules: live"  # what status and config check show


@pytest.mark.parametrize(("watch", "key", "message"), [
    ({"rules": "nope"}, "watch[0].rules", "no preset 'nope'"),
    ({"rules": "live", "model": "u2net"}, "watch[0].model", "not both"),
    ({"latency_budget_ms": 1000}, "watch[0].latency_budget_ms", "only used with `rules`"),
    ({"rules": "live", "latency_budget_ms": 0}, "watch[0].latency_budget_ms", "greater than 0"),
])
def test_config_checks_rules_keys(make_settings: Callable[..., Settings], watch: dict,
                                  key: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        make_settings(watch=watch)
    assert any(k == key and message in m for k, m in info.value.problems), info.value.problems


def test_config_reports_an_invalid_preset(tmp_path: Path,
                                          make_settings: Callable[..., Settings]) -> None:
    write(tmp_path / "rules", "mine", "x", model="no-such-model")
    with pytest.raises(ConfigError) as info:
        make_settings(watch={"rules": "mine"}, daemon={"rules_dir": "rules"})
    (key, message), = info.value.problems
    assert key == "watch[0].rules"
    assert "unknown model 'no-such-model'" in message


def test_rules_dir_defaults_to_rules_beside_the_config(
        tmp_path: Path, make_settings: Callable[..., Settings]) -> None:
    assert make_settings().daemon.rules_dir == tmp_path / "rules"
