from __future__ import annotations

from mattectl.watch.stability import FileState, StabilityTracker


def test_released_only_after_a_quiet_period() -> None:
    tracker = StabilityTracker(quiet_s=2.0)
    tracker.observe("a", FileState(100, 1), now=0.0)
    tracker.observe("a", FileState(200, 2), now=1.5)  # still growing: the clock restarts
    assert tracker.due(now=3.0) == []
    assert tracker.due(now=3.5) == ["a"]
    assert tracker.settle("a", FileState(200, 2), now=3.5) is True
    assert "a" not in tracker


def test_a_change_seen_when_due_restarts_the_wait() -> None:
    tracker = StabilityTracker(quiet_s=1.0)
    tracker.observe("a", FileState(10, 1), now=0.0)
    assert tracker.settle("a", FileState(20, 2), now=1.0) is False
    assert tracker.due(now=1.5) == []
    assert tracker.settle("a", FileState(20, 2), now=2.0) is True


def test_mtime_alone_counts_as_a_change() -> None:
    tracker = StabilityTracker(quiet_s=1.0)
    tracker.observe("a", FileState(10, 1), now=0.0)
    assert tracker.settle("a", FileState(10, 5), now=1.0) is False


def test_repeated_identical_observations_do_not_delay() -> None:
    tracker = StabilityTracker(quiet_s=1.0)
    for t in (0.0, 0.3, 0.6, 0.9):
        tracker.observe("a", FileState(10, 1), now=t)
    assert tracker.due(now=1.0) == ["a"]


def test_next_deadline_and_discard() -> None:
    tracker = StabilityTracker(quiet_s=2.0)
    assert tracker.next_deadline() is None
    tracker.observe("a", FileState(1, 1), now=5.0)
    tracker.observe("b", FileState(1, 1), now=3.0)
    assert tracker.next_deadline() == 5.0
    tracker.discard("b")
    assert tracker.next_deadline() == 7.0
    assert len(tracker) == 1


def test_a_finished_file_is_due_at_once_unless_it_changed() -> None:
    tracker = StabilityTracker(quiet_s=3.0)
    a, b = FileState(100, 1), FileState(200, 2)
    tracker.observe("done.jpg", a, now=10.0, finished=True)
    assert tracker.due(10.0) == ["done.jpg"]
    assert tracker.settle("done.jpg", a, now=10.0)
    tracker.observe("moving.jpg", a, now=10.0, finished=True)
    assert not tracker.settle("moving.jpg", b, now=10.1), "changed since it was closed"
    assert tracker.due(12.0) == []
    assert tracker.settle("moving.jpg", b, now=13.1)
