"""Process isolation: a backend that runs another backend in a child process.

Why a process (``models.isolation = "process"``, the default), on evidence:

- A TensorFlow CHECK failure or abort ends the whole process (SIGABRT, e.g. the ``Abort`` op in
  tests/test_isolated.py); no ``except`` can catch it. In the daemon's own process it would take
  every folder down and leave the job ``running`` until the next start.
- A hang inside a framework's C++ (a blocked queue, a wedged GPU) cannot be interrupted from
  Python: only killing the process frees the worker. The proxy waits ``predict_timeout_s``,
  kills the child and the worker retries the job.
- TensorFlow never gives GPU memory back to the system; a CUDA error poisons the CUDA context
  until the process ends. Ending the child (idle unload, restart) returns all of it.
- TensorFlow's CUDA 12 libraries and PyTorch's CUDA 13 ones never share a process.
- The price: the hop (the photo there, its float alpha back, see ``wire``) on every call, and
  starting the child once per load; scripts/bench_backends.py measures both against inline
  (figures in the README's measuring section).

A failure ends as a :class:`BackendError` naming what happened (the signal, the child's last
words on stderr, or the timeout); the worker's retry path retries or fails the job with it, and
the next call starts a new child, which loads the model again.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import weakref
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

import mattectl
from mattectl import errors
from mattectl.backends import codec_for
from mattectl.backends.base import MattingBackend
from mattectl.backends.catalog import ModelSpec
from mattectl.backends.child_output import ChildOutput, last_words
from mattectl.backends.wire import receive_array, send_array
from mattectl.config import ModelsConfig
from mattectl.errors import BackendError

T = TypeVar("T")

logger = logging.getLogger(__name__)

STOP_TIMEOUT_S = 30.0
# Errors that keep their kind when they cross from the child.
_KINDS = {cls.__name__: cls for cls in (errors.ModelUnavailableError, errors.BackendError,
                                        errors.InputError)}


def _signal_name(returncode: int | None) -> str:
    if returncode is None:
        return "still running"
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit code {returncode}"


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """The last resort for a child whose proxy was dropped without ``unload()``."""
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    # The child must import this very mattectl (a checkout, a test run), not another install.
    root = str(Path(mattectl.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    return env


class IsolatedBackend(MattingBackend):
    """Runs ``target`` (``"module:Class"``, a MattingBackend) in a child process; same contract."""

    def __init__(self, spec: ModelSpec, weights: Path, options: ModelsConfig,
                 target: str) -> None:
        super().__init__(spec, weights, options)
        self.target = target
        # The model's own pre- and post-processing run here, on the caller's thread; only the
        # network's input and output cross to the child (320x320 for U²-Net, whatever the
        # photo's size).
        self.codec = codec_for(spec.backend, options)
        self._proc: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None
        self._output: ChildOutput | None = None
        self._finalizer: weakref.finalize | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def _where(self) -> str:
        return f" in its own process (pid {self.pid})"

    # -- the child's life ----------------------------------------------------------------------

    def _start_child(self) -> None:
        ours, theirs = socket.socketpair()
        with theirs:
            try:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "mattectl.backends.child", str(theirs.fileno())],
                    pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=_child_env())
            except BaseException:
                ours.close()
                raise
        assert proc.stdout is not None
        self._output = ChildOutput(os.dup(proc.stdout.fileno()))
        proc.stdout.close()
        self._proc, self._conn = proc, Connection(ours.detach())
        self._finalizer = weakref.finalize(self, _kill, proc)
        level = logging.getLevelName(logging.getLogger().getEffectiveLevel()).lower()
        self._conn.send((self.target, self.spec, self.weights, self.options, level))
        logger.info("started inference process %d for %s", proc.pid, self.name)

    def _stop_child(self, *, kill: bool) -> str:
        """End the child (asked politely unless ``kill``); returns how it ended."""
        proc, conn, output = self._proc, self._conn, self._output
        self._proc = self._conn = None
        if proc is None:
            return "not running"
        if kill:
            proc.kill()
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if self._finalizer is not None:
            self._finalizer.detach()
        if conn is not None:
            conn.close()
        if output is not None:
            output.drain()  # the child is gone: everything it wrote is in the pipe
            output.close()
        return _signal_name(proc.returncode)

    def _wait(self, timeout: float) -> bool:
        """Wait for the child's answer, copying its output meanwhile; False after ``timeout``."""
        assert self._conn is not None
        assert self._output is not None
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            watched: list[Any] = [self._conn] if self._output.closed else \
                [self._conn, self._output]
            ready = wait(watched, remaining)
            if self._output in ready:
                self._output.drain()
            if self._conn in ready:
                return True
        return False

    def _failure(self, what: str, mark: int, *, kill: bool) -> BackendError:
        output = self._output
        ended = self._stop_child(kill=kill)
        words = last_words(output.since(mark)) if output is not None else ""
        message = f"{self.name}: {what} ({ended})" + (f": {words}" if words else "")
        logger.error("%s; the model is loaded again for the next job", message)
        self._forget_load()
        return BackendError(message + "; the inference process is restarted")

    def _request(self, request: tuple[Any, ...], timeout: float, doing: str,
                 payload: Sequence[np.ndarray] = ()) -> Any:
        """Send a request (and the arrays that go with it); returns the answer's value, or the
        float32 arrays the child sends back."""
        assert self._conn is not None
        assert self._output is not None
        mark = self._output.count  # the child's output from here on tells what went wrong
        try:
            self._conn.send(request)
            for array in payload:
                send_array(self._conn, array)
            if not self._wait(timeout):
                raise self._failure(f"the inference process did not answer within {timeout:.0f} s "
                                    f"while {doing}; it was killed", mark, kill=True)
            reply = self._conn.recv()
            if reply[0] == "arrays":
                return [receive_array(self._conn, shape, np.float32) for shape in reply[1]]
        except (EOFError, OSError) as exc:
            raise self._failure(f"the inference process died while {doing}", mark,
                                kill=False) from exc
        if reply[0] == "ok":
            return reply[1]
        raise _KINDS.get(reply[1], BackendError)(reply[2])

    # -- MattingBackend ------------------------------------------------------------------------

    def _load(self) -> str:
        try:
            self._start_child()
        except OSError as exc:  # no process (fd or memory limits), or it died at once
            self._stop_child(kill=True)
            raise BackendError(f"cannot start the inference process for {self.name}: "
                               f"{exc}") from exc
        try:
            device = self._request(("load",), self.options.load_timeout_s, "loading the model")
            self.precision = self._request(("precision",), STOP_TIMEOUT_S, "answering precision")
            return device
        except errors.MattectlError:
            self._stop_child(kill=True)
            raise

    def _unload(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(BackendError):  # _failure() has logged it
                self._request(("unload",), STOP_TIMEOUT_S, "unloading")
        self._stop_child(kill=False)

    def _predict(self, rgb: np.ndarray) -> np.ndarray:
        return self._predict_batch([rgb])[0]

    def _predict_batch(self, images: list[np.ndarray]) -> list[np.ndarray]:
        sizes = ", ".join(f"{rgb.shape[1]}x{rgb.shape[0]}" for rgb in images)
        doing = f"matting a {sizes} photo" if len(images) == 1 else \
            f"matting {len(images)} photos ({sizes})"
        return self._restarting(lambda: self._request(
            ("predict", [rgb.shape for rgb in images]),
            self.options.predict_timeout_s * len(images), doing, payload=images))

    def _forward(self, inputs: np.ndarray) -> np.ndarray:
        doing = f"running the network on {len(inputs)} photo(s)"
        return self._restarting(lambda: self._request(
            ("forward", inputs.shape), self.options.predict_timeout_s * len(inputs), doing,
            payload=[np.ascontiguousarray(inputs, np.float32)])[0])

    def _restarting(self, call: Callable[[], T]) -> T:
        try:
            return call()
        except BackendError as exc:
            if self._proc is None:  # the child is already gone (crash, hang)
                raise
            # The framework raised (out of memory, a CUDA error): its state may be poisoned
            # (a CUDA error is sticky), so the next job starts from a new process.
            self._unload()
            self._forget_load()
            raise BackendError(f"{exc}; the inference process is restarted") from exc

    # -- what the evaluation bench asks of a backend, forwarded ---------------------------------

    def _call(self, op: str, *args: Any) -> Any:
        with self._lock:
            self.load()
            return self._request((op, *args), STOP_TIMEOUT_S, f"answering {op}")

    def set_threads(self, threads: int) -> bool:
        return bool(self._call("set_threads", threads))

    def reset_peak_memory(self) -> None:
        self._call("reset_peak_memory")

    def peak_memory(self) -> int | None:
        return self._call("peak_memory")

    def relay_output(self) -> None:
        # A request drains the pipe while it waits; between requests nobody would, and what
        # the child writes then (its stack on SIGUSR1) would wait for the next photo. Skipped
        # while a request runs: that one drains it.
        if not self._lock.acquire(blocking=False):
            return
        try:
            if self._output is not None:
                self._output.drain()
        finally:
            self._lock.release()

    def forward_profile(self, precision: str, passes: int) -> tuple[list[float], float] | None:
        return self._call("forward_profile", precision, passes)
