"""Matting backends behind one interface, and an explicit lazy registry.

The registry maps a backend name to ``"module:Class"``; only the backend that is asked for is
imported, so importing this package imports neither torch nor tensorflow.
"""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mattectl.backends.base import Codec, MattingBackend
    from mattectl.config import ModelsConfig

# Idle OpenMP threads (torch's CPU inference) sleep instead of spinning. The runtime reads this
# once, when the first framework loads it, and every backend module is imported through this
# package, so this is early enough. Measured on a 2-core machine shared with other work (u2netp,
# 1080p, 2 threads): 2.5-3x the throughput of the default, whose spinning threads burn the cores
# that decoding, encoding and other processes need; on the quiet 2-core machine, the daemon with
# clean edges did 4.9-5.2 photos/s with it against 4.2-4.4 spinning (bench --daemon, 19 photos,
# 2026-12-05). An explicit setting in the environment wins.
_POLICY_GIVEN = "OMP_WAIT_POLICY" in os.environ
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# libgomp's own spin count when OMP_WAIT_POLICY is unset: threads spin this many times at a
# barrier before they sleep (an explicit GOMP_SPINCOUNT overrides the policy's count).
GOMP_DEFAULT_SPINCOUNT = "300000"


@contextlib.contextmanager
def spinning_threads() -> Iterator[None]:
    """Model processes started meanwhile (``models.isolation = "process"``) let their OpenMP
    threads spin between operations as libgomp does by default, instead of sleeping: the model
    alone at its fastest, for the benchmarks' bare loops. Passive threads give the pipeline
    more (their sleep is the cores' time for decoding and finishing photos) but make a lone
    forward pass slower: U²-NetP at 320x320, bfloat16, 2 cores, 112-119 ms spinning against
    130-160 passive. A model running inline is not changed (its runtime is already loaded), nor
    is anything when the environment sets ``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT`` itself.
    For a benchmark's own thread: it changes this process's environment while it lasts."""
    if _POLICY_GIVEN or "GOMP_SPINCOUNT" in os.environ:
        yield
        return
    os.environ["GOMP_SPINCOUNT"] = GOMP_DEFAULT_SPINCOUNT
    try:
        yield
    finally:
        os.environ.pop("GOMP_SPINCOUNT", None)

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


def codec_for(name: str, options: ModelsConfig) -> Codec | None:
    """The pre- and post-processing of backend ``name`` apart from its network (see
    :class:`~mattectl.backends.base.Codec`), without importing its framework: the backend and
    a process proxy for it (``isolated``) resize alike. None: the backend takes whole photos."""
    if name == "u2net":
        from mattectl.backends.u2net_processing import U2NetCodec
        return U2NetCodec(options.u2net.resample)
    return None
