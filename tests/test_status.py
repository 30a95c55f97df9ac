from __future__ import annotations

from mattectl.store.status import TERMINAL, TRANSITIONS, JobStatus, allowed, sources


def test_every_status_has_a_row_in_the_table() -> None:
    assert set(TRANSITIONS) == set(JobStatus)


def test_only_a_running_job_can_end() -> None:
    assert sources(JobStatus.DONE) == {JobStatus.RUNNING}
    assert sources(JobStatus.FAILED) == {JobStatus.RUNNING}
    assert sources(JobStatus.RUNNING) == {JobStatus.QUEUED}


def test_terminal_jobs_can_only_be_queued_again() -> None:
    for status in TERMINAL:
        assert TRANSITIONS[status] == {JobStatus.QUEUED}
    assert not allowed(JobStatus.DONE, JobStatus.RUNNING)
    assert not allowed(JobStatus.QUEUED, JobStatus.DONE)
