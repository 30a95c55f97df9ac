"""The staged pipeline: results, overlap of the stages, batching, bounds and failures."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import pytest

from mattectl.matting.stages import Outcome, StagedPipeline, run_all

from .support import wait_for

TIMEOUT = 10.0


@dataclass
class Arithmetic:
    """decode: x -> 10x, infer: d -> d + 1, encode: (x, d, a) -> a * 2. Hooks let a test hold
    a stage until another stage has been seen running."""

    bad_decode: set[int] = field(default_factory=set)
    bad_infer: set[int] = field(default_factory=set)
    bad_encode: set[int] = field(default_factory=set)
    batches: list[list[int]] = field(default_factory=list)
    before_infer: dict[int, threading.Event] = field(default_factory=dict)
    decoded: dict[int, threading.Event] = field(default_factory=dict)
    encoded: dict[int, threading.Event] = field(default_factory=dict)

    def decode(self, x: int) -> int:
        if x in self.bad_decode:
            raise ValueError(f"cannot decode {x}")
        self.decoded.setdefault(x, threading.Event()).set()
        return 10 * x

    def infer(self, batch: list[int]) -> list[int]:
        self.batches.append([d // 10 for d in batch])
        for d in batch:
            gate = self.before_infer.get(d // 10)
            if gate is not None:
                assert gate.wait(TIMEOUT), f"gate for {d // 10} never opened"
        if any(d // 10 in self.bad_infer for d in batch):
            raise RuntimeError("bad item in batch")
        return [d + 1 for d in batch]

    def encode(self, x: int, decoded: int, inferred: int) -> int:
        if x in self.bad_encode:
            raise OSError("disk full")
        self.encoded.setdefault(x, threading.Event()).set()
        return inferred * 2


def by_item(outcomes: list[Outcome]) -> dict[int, Outcome]:
    return {o.item: o for o in outcomes}


def test_every_item_passes_every_stage() -> None:
    outcomes = by_item(run_all(Arithmetic(), range(20), decode_workers=2, encode_workers=2))
    assert sorted(outcomes) == list(range(20))
    assert all(o.ok and o.result == (10 * x + 1) * 2 for x, o in outcomes.items())
    assert all(o.times.total_ms >= o.times.inference_ms > 0 for o in outcomes.values())


def test_decoding_the_next_item_overlaps_inference() -> None:
    # Inference of item 0 is held until item 1 has been decoded: possible only if decoding runs
    # beside inference (a sequential pipeline would never get there and the gate would time out).
    stages = Arithmetic()
    stages.decoded[1] = threading.Event()
    stages.before_infer[0] = stages.decoded[1]
    outcomes = run_all(stages, [0, 1])
    assert all(o.ok for o in outcomes)


def test_encoding_the_last_item_overlaps_inference() -> None:
    stages = Arithmetic()
    stages.encoded[0] = threading.Event()
    stages.before_infer[1] = stages.encoded[0]
    outcomes = run_all(stages, [0, 1])
    assert all(o.ok for o in outcomes)


def test_ready_items_are_batched() -> None:
    # Item 0 holds inference until items 1-5 are decoded; they are then all ready at once and go
    # as one batch of 4 (the limit), item 5 after them.
    stages = Arithmetic()
    everyone = threading.Event()
    stages.before_infer[0] = everyone
    done: list[Outcome] = []
    with StagedPipeline(stages, done.append, batch=4, decode_workers=2) as pipeline:
        pipeline.submit(0)
        wait_for(lambda: stages.batches, TIMEOUT, what="inference of item 0")
        for x in range(1, 6):
            pipeline.submit(x)
        for x in range(1, 6):
            assert stages.decoded.setdefault(x, threading.Event()).wait(TIMEOUT)
        everyone.set()
    assert stages.batches[0] == [0]
    assert stages.batches[1] == [1, 2, 3, 4]
    assert stages.batches[2] == [5]
    outcomes = by_item(done)
    assert outcomes[2].times.batch == 4
    assert all(o.ok for o in done)


def test_in_flight_items_never_exceed_the_capacity() -> None:
    stages = Arithmetic()
    lock = threading.Lock()
    in_flight = [0]
    peak = [0]
    decode = stages.decode

    def tracking_decode(x: int) -> int:
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        return decode(x)

    def finished(outcome: Outcome) -> None:
        with lock:
            in_flight[0] -= 1

    stages.decode = tracking_decode  # type: ignore[method-assign]
    with StagedPipeline(stages, finished, capacity=3, decode_workers=2,
                        encode_workers=2) as pipeline:
        for x in range(30):
            pipeline.submit(x)
    assert in_flight[0] == 0
    assert 1 <= peak[0] <= 3


def test_a_failure_fails_only_its_own_item() -> None:
    stages = Arithmetic(bad_decode={3}, bad_infer={5}, bad_encode={7})
    outcomes = by_item(run_all(stages, range(10), batch=4, decode_workers=2))
    assert str(outcomes[3].error) == "cannot decode 3"
    assert isinstance(outcomes[5].error, RuntimeError)
    assert isinstance(outcomes[7].error, OSError)
    assert all(o.ok for x, o in outcomes.items() if x not in (3, 5, 7))
    assert outcomes[3].times.inference_ms == 0  # it skipped the later stages


def test_a_failing_outcome_handler_does_not_stall_the_pipeline() -> None:
    seen: list[int] = []

    def handler(outcome: Outcome) -> None:
        seen.append(outcome.item)
        raise RuntimeError("handler bug")

    with StagedPipeline(Arithmetic(), handler, capacity=2) as pipeline:
        for x in range(6):
            pipeline.submit(x)
    assert sorted(seen) == list(range(6))


def test_submit_after_close_is_refused() -> None:
    pipeline = StagedPipeline(Arithmetic(), lambda o: None).start()
    pipeline.close()
    with pytest.raises(RuntimeError, match="not running"):
        pipeline.submit(1)


@dataclass
class Releasing(Arithmetic):
    """Arithmetic whose decoded items hold something (memory, say) until ``release``."""

    released: list[int] = field(default_factory=list)

    def release(self, decoded: int) -> None:
        self.released.append(decoded // 10)


def test_every_decoded_item_is_released_once_before_its_outcome_whatever_its_end() -> None:
    stages = Releasing(bad_decode={1}, bad_infer={2}, bad_encode={3})
    seen: dict[int, bool] = {}

    def done(outcome: Outcome) -> None:
        seen[outcome.item] = outcome.item in stages.released

    with StagedPipeline(stages, done, batch=3, decode_workers=2) as pipeline:
        for x in range(8):
            pipeline.submit(x)
    # 1 was never decoded; 2's batch failed and was retried one by one; 3 failed to encode.
    assert sorted(stages.released) == [0, 2, 3, 4, 5, 6, 7]
    assert seen == {x: x != 1 for x in range(8)}
