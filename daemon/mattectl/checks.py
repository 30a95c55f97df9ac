"""A config and its rule presets checked against the rest of mattectl: model names against the
model catalog, and the preset each ``[[watch]]`` folder names.

:mod:`mattectl.config` and :mod:`mattectl.rules` know neither the catalog nor each other, so this
module, above config, rules and backends, puts them together. Everything that loads a config or a
preset for use goes through here (``mattectl config check``, ``mattectl run``, the daemon's SIGHUP
reload, the other commands), so each reports a problem with the same key path and wording.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mattectl import config
from mattectl.backends import catalog
from mattectl.config import Check, Settings
from mattectl.errors import ConfigError
from mattectl.rules import presets
from mattectl.rules.presets import Preset, PresetStore


def check_presets(settings: Settings) -> Iterator[tuple[str, str]]:
    """Each folder's preset exists and is valid, its model names included."""
    dirs = presets.preset_dirs(settings.daemon.rules_dir)
    for i, watch in enumerate(settings.watch):
        if watch.rules is None:
            continue
        try:
            load_preset(presets.locate(watch.rules, dirs))
        except ConfigError as exc:
            found = "; ".join(f"{key}: {msg}" if key else msg for key, msg in exc.problems)
            yield f"watch[{i}].rules", f"preset '{watch.rules}' is unusable ({found})"


CHECKS: tuple[Check, ...] = (*config.CHECKS, check_presets)
# What the daemon runs on (`mattectl run`, `config check`, a reload) needs a folder to watch;
# `status` and `jobs` read the job log of a config that has none left.
DAEMON_CHECKS: tuple[Check, ...] = (*CHECKS, config.check_watches_a_folder)
# One-shot commands that never read the drop folders (``mattectl process``) accept a config
# whose folders live on another machine.
TOOL_CHECKS: tuple[Check, ...] = tuple(c for c in CHECKS if c is not config.check_drop_folders)


def parse(
    data: dict[str, Any], *, source: str = "<config>", base_dir: Path | None = None
) -> Settings:
    """:func:`mattectl.config.parse` with model names and presets checked."""
    return config.parse(data, source=source, base_dir=base_dir, models=catalog.MODELS,
                        checks=CHECKS)


def load(path: Path | str | None = None, *, checks: tuple[Check, ...] = CHECKS) -> Settings:
    """:func:`mattectl.config.load` with model names and presets checked; raises
    :class:`ConfigError` listing every problem by key path."""
    return config.load(path, models=catalog.MODELS, checks=checks)


def load_preset(path: Path) -> Preset:
    """:func:`mattectl.rules.presets.load_preset` with model names checked."""
    return presets.load_preset(path, catalog.MODELS)


def preset_store(dirs: list[Path]) -> PresetStore:
    """A :class:`PresetStore` that refuses presets (and edits) naming a model it does not know."""
    return PresetStore(dirs, catalog.MODELS)
