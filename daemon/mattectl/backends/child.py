"""The child side of process isolation: ``python -m mattectl.backends.child FD``.

Reads requests from the connection on file descriptor ``FD`` and answers each with
``("ok", value)`` or ``("error", kind, message)``:

- first message: ``(target, spec, weights, options, log_level)``, the backend to build
  (``"module:Class"``) and its arguments;
- ``("predict", [shape, ...])`` followed by each photo's bytes -> ``("arrays", [shape, ...])``
  followed by each alpha's bytes (see ``wire``; several photos make one ``predict_batch``);
- ``("forward", shape)`` followed by the network's input (float32, see ``base.Codec``) ->
  ``("arrays", [shape])`` followed by its output;
- ``("load",)``, ``("set_threads", n)``, ``("reset_peak_memory",)``, ``("peak_memory",)`` ->
  what the backend's method returns; ``("precision",)`` -> the loaded model's number format;
  ``("unload",)`` -> None, then the child exits.

Errors mattectl raises on purpose keep their kind; anything else is reported as a BackendError.
A crash or a hang has no answer at all: the parent notices (see ``isolated``).
"""

from __future__ import annotations

import importlib
import logging
import os
import signal
import sys
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from mattectl.backends.base import MattingBackend
from mattectl.backends.wire import receive_array, send_array
from mattectl.errors import BackendError, MattectlError
from mattectl.logs import dump_stacks_on, setup_logging

logger = logging.getLogger(__name__)


def _exit_with_parent() -> None:
    """End this process when the daemon is gone, even in the middle of an inference.

    A thread polls the parent's pid: the main thread may be stuck in C++ (that is what hangs
    look like), and Linux's PR_SET_PDEATHSIG would fire when the daemon's *thread* that started
    us ends (a worker thread at shutdown), not the daemon.
    """
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="mattectl-parent-watch", daemon=True).start()


def _build(target: str, spec: Any, weights: Any, options: Any) -> MattingBackend:
    module_name, _, class_name = target.partition(":")
    backend = getattr(importlib.import_module(module_name), class_name)(spec, weights, options)
    backend.reports = False  # the parent's proxy checks the device and logs the load
    return backend


# Requests answered by calling the backend's method of that name with the request's arguments.
_CALLS = ("load", "unload", "set_threads", "reset_peak_memory", "peak_memory",
          "forward_profile")


def _answer(backend: MattingBackend, conn: Connection,
            request: tuple[Any, ...]) -> tuple[tuple[Any, ...], list[np.ndarray]]:
    """The reply to one request, and the arrays that follow it (the alphas of a predict)."""
    op = request[0]
    if op == "predict":
        photos = [receive_array(conn, shape, np.uint8) for shape in request[1]]
        alphas = backend.predict_batch(photos)
        return ("arrays", [a.shape for a in alphas]), alphas
    if op == "forward":
        outputs = np.ascontiguousarray(backend.forward(receive_array(conn, request[1],
                                                                     np.float32)), np.float32)
        return ("arrays", [outputs.shape]), [outputs]
    if op in _CALLS:
        return ("ok", getattr(backend, op)(*request[1:])), []
    if op == "precision":
        return ("ok", backend.precision), []
    raise BackendError(f"unknown request {op!r}")


def serve(conn: Connection) -> None:
    target, spec, weights, options, log_level = conn.recv()
    setup_logging(log_level)
    backend = _build(target, spec, weights, options)
    while True:
        try:
            request = conn.recv()
        except EOFError:  # the parent went away
            backend.unload()
            return
        try:
            reply, arrays = _answer(backend, conn, request)
            conn.send(reply)
            for array in arrays:
                send_array(conn, array)
        except MattectlError as exc:
            conn.send(("error", type(exc).__name__, str(exc)))
        except Exception as exc:
            logger.exception("%s: unexpected error in the inference process", spec.name)
            conn.send(("error", "BackendError", f"{type(exc).__name__}: {exc}"))
        if request[0] == "unload":
            return


def main(argv: list[str]) -> None:
    _exit_with_parent()
    # Ctrl-C in a terminal and systemd's SIGTERM at stop reach every process of the daemon;
    # the daemon decides when this one stops (it unloads the model first).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # `systemctl kill -s USR1 mattectl` reaches this process too: its stack, not its end.
    dump_stacks_on(signal.SIGUSR1)
    with Connection(int(argv[1])) as conn:
        serve(conn)


if __name__ == "__main__":
    main(sys.argv)
