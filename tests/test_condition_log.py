"""A lasting condition is logged once, reminded rarely, and its end logged once."""

from __future__ import annotations

import logging
import threading

import pytest

from mattectl.condition_log import ConditionLog


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make(clock: Clock) -> ConditionLog:
    return ConditionLog(logging.getLogger("test.condition"), "job log busy",
                        "job log writable again", remind_s=600, quiet_s=60, clock=clock)


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "test.condition"]


def test_a_condition_met_every_tick_by_many_threads_is_one_line(
        clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    log = make(clock)
    caplog.set_level(logging.WARNING, logger="test.condition")

    def tick() -> None:
        for _ in range(200):
            log.failed("database or disk is full")

    threads = [threading.Thread(target=tick, name=f"test-tick-{i}") for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    clock.now += 59
    log.failed("database or disk is full")
    assert lines(caplog) == ["job log busy (database or disk is full); logged again every "
                             "10 min while it lasts"]
    assert log.active and log.reason == "database or disk is full"


def test_reminded_while_it_lasts_and_its_end_told_once(
        clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    log = make(clock)
    caplog.set_level(logging.WARNING, logger="test.condition")
    log.failed("database or disk is full")
    clock.now += 601
    log.failed("database or disk is full")
    clock.now += 10
    log.failed("database or disk is full")
    log.cleared()
    log.cleared()
    assert lines(caplog)[1:] == ["job log busy (database or disk is full) for 601 s now",
                                 "job log writable again after 611 s"]
    assert not log.active and log.reason is None


def test_a_condition_that_comes_and_goes_is_told_once_a_quiet_period(
        clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    log = make(clock)
    caplog.set_level(logging.WARNING, logger="test.condition")
    for _ in range(30):  # a lock that comes and goes every second for half a minute
        log.failed("database is locked")
        clock.now += 0.5
        log.cleared()
        clock.now += 0.5
    assert len(lines(caplog)) == 2  # the first spell and its end
    clock.now += 60
    log.failed("database is locked")
    assert len(lines(caplog)) == 3


def test_cleared_without_a_condition_says_nothing(clock: Clock,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    log = make(clock)
    caplog.set_level(logging.DEBUG, logger="test.condition")
    log.cleared()
    assert lines(caplog) == [] and not log.active
