"""Where ModelScope keeps a downloaded model, found on disk alone (no modelscope, no network).

Layouts, from modelscope 1.40 / modelscope-hub 0.5 (``modelscope_hub/_download.py`` and
``modelscope/hub/utils/utils.py``), for a cache root ``R`` and a model ``owner/name``:

- current: ``R/models/owner--name/snapshots/<revision>/`` (``master`` unless a revision was
  asked for);
- legacy, ModelScope 1.37 and older: ``R/models/owner/name___/`` where dots in the name became
  ``___`` (``MODELSCOPE_CACHE`` set), or ``R/hub/models/owner/name___/`` (the default cache);
- older still: ``R/owner/name/`` and ``R/hub/owner/name/``.

The root is ``$MODELSCOPE_CACHE``, else ``~/.cache/modelscope``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

ENV_CACHE = "MODELSCOPE_CACHE"
DEFAULT_REVISIONS = ("master", "main")


def default_root() -> Path:
    """ModelScope's own cache root in this environment."""
    if env := os.environ.get(ENV_CACHE):
        return Path(env).expanduser()
    return Path.home() / ".cache" / "modelscope"


def _snapshots(root: Path, model_id: str) -> Iterator[Path]:
    snapshots = root / "models" / model_id.replace("/", "--") / "snapshots"
    for revision in DEFAULT_REVISIONS:
        yield snapshots / revision
    if snapshots.is_dir():
        yield from sorted(p for p in snapshots.iterdir() if p.name not in DEFAULT_REVISIONS)


def candidates(root: Path, model_id: str) -> Iterator[Path]:
    """Every folder where ModelScope may have put ``model_id`` under ``root``, current first."""
    owner, _, name = model_id.partition("/")
    safe = name.replace(".", "___")
    yield from _snapshots(root, model_id)
    for base in (root / "models", root / "hub" / "models", root, root / "hub"):
        yield base / owner / safe
        if safe != name:
            yield base / owner / name


def find_snapshot(roots: Iterable[Path], model_ids: Iterable[str],
                  required: Iterable[str]) -> Path | None:
    """The first folder holding every ``required`` file, searching each root for each id."""
    needed = tuple(required)
    ids = tuple(model_ids)
    for root in roots:
        for model_id in ids:
            for folder in candidates(root, model_id):
                if all((folder / name).is_file() for name in needed):
                    return folder
    return None


def pull_root(configured: Path | None, models_dir: Path) -> Path:
    """Where `mattectl models pull` puts ModelScope models: ``models.modelscope_cache``, else
    ``$MODELSCOPE_CACHE``, else ``<models dir>/modelscope`` (beside the other weights, so the
    daemon's user can read it whatever its home directory)."""
    if configured is not None:
        return configured
    if env := os.environ.get(ENV_CACHE):
        return Path(env).expanduser()
    return models_dir / "modelscope"


def search_roots(configured: Path | None, models_dir: Path) -> list[Path]:
    """The pull root, then ModelScope's own default cache (models fetched with ModelScope)."""
    roots = [pull_root(configured, models_dir)]
    if default_root() not in roots:
        roots.append(default_root())
    return roots
