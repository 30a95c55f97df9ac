"""Finding, validating and reloading rule presets (TOML files named ``<preset>.toml``).

Presets are looked up in the configured ``daemon.rules_dir`` first, then among the presets
shipped with mattectl, so a studio overrides a shipped preset by writing one of the same name.
An edited file is picked up on the next photo (its modification time and size are checked each
time); an edit that does not validate is logged and the last good version stays in use.

Model names are checked against the catalog the caller passes (``models=``; see
:mod:`mattectl.checks`); without one, any name passes and the engine falls back from a model it
does not know.
"""

from __future__ import annotations

import hashlib
import logging
import re
import sys
import threading
import tomllib
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from mattectl.errors import ConfigError
from mattectl.rules.schema import MODEL_NAMES, RuleSet
from mattectl.validation import problems

logger = logging.getLogger(__name__)

SUFFIX = ".toml"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def shipped_dir() -> Path | None:
    """The presets that come with mattectl: ``rules/`` beside the package in a source checkout,
    else ``<prefix>/share/mattectl/rules`` where a wheel installs them (pyproject's data-files)."""
    checkout = Path(__file__).resolve().parents[3] / "rules"
    installed = Path(sys.prefix) / "share" / "mattectl" / "rules"
    return next((d for d in (checkout, installed) if d.is_dir()), None)


def preset_dirs(rules_dir: Path | None) -> list[Path]:
    """Where presets are looked up, first match wins."""
    dirs = [d for d in (rules_dir, shipped_dir()) if d is not None]
    return list(dict.fromkeys(dirs))


def find_presets(dirs: list[Path]) -> dict[str, Path]:
    """``{name: file}`` for every preset in ``dirs``; an earlier folder hides a later one."""
    found: dict[str, Path] = {}
    for folder in reversed(dirs):
        if folder.is_dir():
            found.update({p.stem: p for p in sorted(folder.glob(f"*{SUFFIX}")) if p.is_file()})
    return dict(sorted(found.items()))


@dataclass(frozen=True)
class Preset:
    name: str
    path: Path
    ruleset: RuleSet
    sha256: str  # of the file as loaded: which version of a preset decided

    def describe(self) -> dict[str, str]:
        return {"preset": self.name, "preset_file": str(self.path),
                "preset_sha256": self.sha256[:12]}


def read_preset(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(str(path), [("", f"cannot read: {exc.strerror or exc}")]) from None


def parse_preset(path: Path, data: bytes, models: Collection[str] | None = None) -> Preset:
    """Validate one preset file's content, its model names against ``models`` when given;
    problems raise :class:`ConfigError` by key path."""
    try:
        tree = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(str(path), [("", f"not valid TOML: {exc}")]) from None
    try:
        ruleset = RuleSet.model_validate(tree, context={MODEL_NAMES: models})
    except ValidationError as exc:
        raise ConfigError(str(path), problems(exc)) from None
    return Preset(path.stem, path, ruleset, hashlib.sha256(data).hexdigest())


def load_preset(path: Path, models: Collection[str] | None = None) -> Preset:
    return parse_preset(path, read_preset(path), models)


def locate(name: str, dirs: list[Path]) -> Path:
    if not _NAME.fullmatch(name):
        raise ConfigError(name, [("", "a preset name uses letters, digits, '-', '_', '.'")])
    for folder in dirs:
        path = folder / f"{name}{SUFFIX}"
        if path.is_file():
            return path
    known = ", ".join(find_presets(dirs)) or "none"
    searched = ", ".join(map(str, dirs)) or "nowhere"
    raise ConfigError(name, [("", f"no preset '{name}' in {searched} (known: {known})")])


class PresetStore:
    """Presets by name, re-read on every use (a small file) and re-validated when its content
    changed, so an edit applies to the next photo without a restart. Model names are checked
    against ``models`` when given (an edit naming another model is refused). Thread-safe."""

    def __init__(self, dirs: list[Path], models: Collection[str] | None = None) -> None:
        self.dirs = dirs
        self.models = models
        self._lock = threading.Lock()
        self._good: dict[str, Preset] = {}
        self._rejected: dict[str, str] = {}  # name -> the problem last logged for it

    def get(self, name: str) -> Preset:
        """The current version of a preset. Raises :class:`ConfigError` only when no valid
        version of it was loaded before; otherwise a broken edit keeps the last good one."""
        with self._lock:
            good = self._good.get(name)
            try:
                path = locate(name, self.dirs)
                data = read_preset(path)
                if good is not None and good.path == path and \
                        good.sha256 == hashlib.sha256(data).hexdigest():
                    return good
                fresh = parse_preset(path, data, self.models)
            except ConfigError as exc:
                if good is None:
                    raise
                return self._keep(good, str(exc))
            self._good[name] = fresh
            self._rejected.pop(name, None)
            if good is not None:
                logger.info("preset %s reloaded from %s (%s)", name, path, fresh.sha256[:12])
            return fresh

    def _keep(self, good: Preset, problem: str) -> Preset:
        if self._rejected.get(good.name) != problem:  # log each new problem once
            logger.error("preset %s: keeping the last good version (%s) because the current "
                         "file is unusable: %s", good.name, good.sha256[:12], problem)
            self._rejected[good.name] = problem
        return good
