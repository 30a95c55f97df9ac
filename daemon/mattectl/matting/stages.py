"""A bounded three-stage pipeline: a decode pool, one inference thread, an encode pool.

On a flood of photos the model should never wait for a JPEG to be decoded or a PNG to be
written: decoding the next photos and encoding the last ones run on worker threads while the
single inference thread keeps the model busy. The inference thread takes whatever decoded items
are ready (up to ``batch``) and runs them as one call, so a GPU gets batches on a flood and a
lone photo is never held back waiting for company.

At most ``capacity`` items are in flight between :meth:`StagedPipeline.submit` and their
outcome, which bounds memory (a decoded 24 MP photo is 72 MB) and makes ``submit`` block when
the model falls behind. A failing stage fails only its item: the outcome carries the exception
and the item skips the later stages; a failing batch is retried photo by photo so that one bad
item cannot fail its neighbours. Outcomes are delivered to ``on_done`` in completion order, on
the thread that finished the item.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Generic, Protocol, TypeVar

logger = logging.getLogger(__name__)

T = TypeVar("T")  # an item as submitted
D = TypeVar("D")  # a decoded item
A = TypeVar("A")  # what inference returns for one item
R = TypeVar("R")  # the final result of one item


class Stages(Protocol[T, D, A, R]):
    """The work of each stage. ``decode`` and ``encode`` run on pool threads, several at once;
    ``infer`` runs on the one inference thread and returns one output per input, in order.

    Stages may also have ``release(decoded)``: it is called once for every decoded item when
    the item leaves the pipeline, whatever its end (encoded, or failed in inference or
    encoding), before its outcome is delivered; e.g. to give back memory ``decode`` reserved.
    """

    def decode(self, item: T, /) -> D: ...

    def infer(self, batch: list[D], /) -> list[A]: ...

    def encode(self, item: T, decoded: D, inferred: A, /) -> R: ...


@dataclass(frozen=True)
class StageTimes:
    """Milliseconds per stage for one item (0 for a stage it did not reach). ``inference_ms``
    is the whole call of the batch the item ran in; ``total_ms`` runs from submit to outcome."""

    decode_ms: float = 0.0
    inference_ms: float = 0.0
    encode_ms: float = 0.0
    total_ms: float = 0.0
    batch: int = 0


@dataclass(frozen=True)
class Outcome(Generic[T, R]):
    item: T
    result: R | None
    error: Exception | None
    times: StageTimes

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class _Work(Generic[T, D]):
    item: T
    submitted: float
    decoded: D | None = None
    times: StageTimes = field(default_factory=StageTimes)


def ms_since(start: float) -> float:
    """Milliseconds since ``start`` (a ``time.perf_counter()`` reading): every stage timing."""
    return (time.perf_counter() - start) * 1000.0


class StagedPipeline(Generic[T, D, A, R]):
    """Use as a context manager: ``submit`` items inside, leaving waits for every outcome."""

    def __init__(self, stages: Stages[T, D, A, R], on_done: Callable[[Outcome[T, R]], None], *,
                 decode_workers: int = 1, encode_workers: int = 1, batch: int = 1,
                 capacity: int | None = None, name: str = "mattectl") -> None:
        if min(decode_workers, encode_workers, batch) < 1:
            raise ValueError("workers and batch must be at least 1")
        self.stages = stages
        self.on_done = on_done
        self.batch = batch
        self.capacity = capacity or 2 * (decode_workers + encode_workers) + 2 * batch
        self.name = name
        self._decode_workers = decode_workers
        self._encode_workers = encode_workers
        self._slots = threading.BoundedSemaphore(self.capacity)
        self._ready: queue.Queue[_Work[T, D] | None] = queue.Queue()
        self._decoders: ThreadPoolExecutor | None = None
        self._encoders: ThreadPoolExecutor | None = None
        self._inference: threading.Thread | None = None
        self._closed = False
        self._release: Callable[[D], object] | None = getattr(stages, "release", None)

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> StagedPipeline[T, D, A, R]:
        self._decoders = ThreadPoolExecutor(self._decode_workers, f"{self.name}-decode")
        self._encoders = ThreadPoolExecutor(self._encode_workers, f"{self.name}-encode")
        self._inference = threading.Thread(target=self._infer_loop, name=f"{self.name}-inference",
                                           daemon=True)
        self._inference.start()
        return self

    def __enter__(self) -> StagedPipeline[T, D, A, R]:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def submit(self, item: T) -> None:
        """Queue one item; blocks while ``capacity`` items are in flight."""
        if self._decoders is None or self._closed:
            raise RuntimeError("the pipeline is not running")
        self._slots.acquire()
        work: _Work[T, D] = _Work(item, time.perf_counter())
        self._decoders.submit(self._decode, work)

    def close(self) -> None:
        """Wait until every submitted item has its outcome, then stop the threads."""
        if self._closed or self._decoders is None:
            return
        self._closed = True
        self._decoders.shutdown(wait=True)  # every item is now decoded or done
        self._ready.put(None)
        assert self._inference is not None
        assert self._encoders is not None
        self._inference.join()
        self._encoders.shutdown(wait=True)

    # -- stages --------------------------------------------------------------------------------

    def _decode(self, work: _Work[T, D]) -> None:
        start = time.perf_counter()
        try:
            work.decoded = self.stages.decode(work.item)
        except Exception as exc:
            work.times = replace(work.times, decode_ms=ms_since(start))
            self._finish(work, None, exc)
            return
        work.times = replace(work.times, decode_ms=ms_since(start))
        self._ready.put(work)

    def _next_batch(self) -> tuple[list[_Work[T, D]], bool]:
        """Block for one ready item, then take what else is ready, up to ``batch``."""
        first = self._ready.get()
        if first is None:
            return [], True
        batch, stop = [first], False
        while len(batch) < self.batch:
            try:
                work = self._ready.get_nowait()
            except queue.Empty:
                break
            if work is None:
                stop = True
                break
            batch.append(work)
        return batch, stop

    def _infer_loop(self) -> None:
        stop = False
        while not stop:
            batch, stop = self._next_batch()
            if batch:
                self._infer(batch)

    def _infer(self, batch: list[_Work[T, D]]) -> None:
        start = time.perf_counter()
        try:
            outputs = self.stages.infer([w.decoded for w in batch])  # type: ignore[misc]
            if len(outputs) != len(batch):
                raise RuntimeError(f"inference returned {len(outputs)} results for "
                                   f"{len(batch)} items")
        except Exception as exc:
            if len(batch) > 1:
                logger.warning("a batch of %d failed (%s); running its items one by one",
                               len(batch), exc)
                for work in batch:
                    self._infer([work])
                return
            batch[0].times = replace(batch[0].times, inference_ms=ms_since(start), batch=1)
            self._finish(batch[0], None, exc)
            return
        elapsed = ms_since(start)
        assert self._encoders is not None
        for work, output in zip(batch, outputs, strict=True):
            work.times = replace(work.times, inference_ms=elapsed, batch=len(batch))
            self._encoders.submit(self._encode, work, output)

    def _encode(self, work: _Work[T, D], inferred: A) -> None:
        start = time.perf_counter()
        try:
            result = self.stages.encode(work.item, work.decoded, inferred)  # type: ignore[arg-type]
        except Exception as exc:
            work.times = replace(work.times, encode_ms=ms_since(start))
            self._finish(work, None, exc)
            return
        work.times = replace(work.times, encode_ms=ms_since(start))
        self._finish(work, result, None)

    def _finish(self, work: _Work[T, D], result: R | None, error: Exception | None) -> None:
        decoded, work.decoded = work.decoded, None  # it can go before the callback runs
        if decoded is not None and self._release is not None:
            try:
                self._release(decoded)
            except Exception:
                logger.exception("%s: releasing an item failed", self.name)
        del decoded
        times = replace(work.times, total_ms=ms_since(work.submitted))
        try:
            self.on_done(Outcome(work.item, result, error, times))
        except Exception:
            logger.exception("%s: the outcome handler failed", self.name)
        finally:
            self._slots.release()


def run_all(stages: Stages[T, D, A, R], items: Iterable[T], **options: int) -> list[Outcome[T, R]]:
    """Every item through a :class:`StagedPipeline`; outcomes in completion order."""
    outcomes: list[Outcome[T, R]] = []
    with StagedPipeline(stages, outcomes.append, **options) as pipeline:  # append is atomic
        for item in items:
            pipeline.submit(item)
    return outcomes
