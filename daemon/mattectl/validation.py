"""How a pydantic validation error is told to people: one ``(key path, message)`` per problem.

The config and the rule presets word their problems alike (``watch[1].recursiv: unknown key``),
so both build their :class:`~mattectl.errors.ConfigError` from :func:`problems`.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError


def key_path(loc: tuple[int | str, ...]) -> str:
    """``('watch', 1, 'output')`` -> ``'watch[1].output'``."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def message(err: Any) -> str:
    """One pydantic error dict in plain words."""
    if err["type"] == "extra_forbidden":
        return "unknown key"
    if err["type"] == "missing":
        return "required key is missing"
    return str(err["msg"]).removeprefix("Value error, ")


def problems(exc: ValidationError) -> list[tuple[str, str]]:
    return [(key_path(err["loc"]), message(err)) for err in exc.errors()]
