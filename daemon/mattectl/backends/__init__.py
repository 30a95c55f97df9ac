"""Matting backends behind one interface, and an explicit lazy registry.

The registry maps a backend name to ``"module:Class"``; only the backend that is asked for is
imported, so importing this package imports neither torch nor tensorflow.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mattectl.backends.base import MattingBackend

BACKENDS: dict[str, str] = {
    "u2net": "mattectl.backends.u2net:U2NetBackend",
    "bshm": "mattectl.backends.bshm:BshmBackend",
}


def backend_class(name: str) -> type[MattingBackend]:
    try:
        target = BACKENDS[name]
    except KeyError:
        raise KeyError(f"unknown backend '{name}' (known: {', '.join(sorted(BACKENDS))})") from None
    module_name, _, class_name = target.partition(":")
    return getattr(importlib.import_module(module_name), class_name)
