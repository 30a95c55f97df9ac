"""One error hierarchy for the whole daemon, and the exit codes the CLI maps it to."""

from __future__ import annotations

from enum import IntEnum
from typing import Any


class ExitCode(IntEnum):
    OK = 0
    FAILURE = 1  # the command ran and something failed (a job, a check)
    USAGE = 2  # bad config, bad arguments
    NOT_RUNNING = 3  # the daemon is not running (its pid is gone, or it stopped)
    NOT_FOUND = 4  # a job, a file or a model that does not exist
    # The job database is missing, emptied or corrupt: starting again cannot help (systemd's
    # RestartPreventExitStatus=), a person restores or resets it (`mattectl db check`).
    DATABASE = 5
    NOT_RESPONDING = 6  # the daemon's process is alive but its heartbeat is old (frozen?)


class MattectlError(Exception):
    """Base of every error mattectl raises on purpose. ``str(error)`` is written for a person."""

    exit_code: ExitCode = ExitCode.FAILURE


class ConfigError(MattectlError):
    """The configuration is invalid; ``problems`` lists ``(key path, message)`` pairs."""

    exit_code = ExitCode.USAGE

    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        self.source = source
        self.problems = problems
        lines = [f"{source}: {len(problems)} problem(s)"]
        lines += [f"  {key}: {message}" if key else f"  {message}" for key, message in problems]
        super().__init__("\n".join(lines))


class InputError(MattectlError):
    """An input cannot be used (unreadable, truncated, not an image); retrying will not help."""


class InputChangedError(InputError):
    """The input was replaced or vanished between queueing and processing; leave it where it is."""


class OutputError(MattectlError):
    """Writing a result failed (disk full, no permission). The job is retried later, or held
    while its folder is paused when the output folder itself cannot take it (jobs.conditions)."""


class OutputNameError(MattectlError):
    """The result cannot be written under its name whatever is retried: the name is too long
    for the filesystem, a folder or a file is in its way, or a symbolic link below the output
    folder would lead elsewhere. The job fails at once (not an OutputError: no retry)."""


class ModelUnavailableError(MattectlError):
    """A model's weights or framework are missing; the message says how to get them."""


class RuleBlockedError(ModelUnavailableError):
    """A required rule's models cannot run; ``decision`` (the rules' decision as the job log
    keeps it) says which and why."""

    def __init__(self, message: str, decision: dict[str, Any]) -> None:
        super().__init__(message)
        self.decision = decision


class BackendError(MattectlError):
    """A model failed while running (out of memory, a framework error)."""


class DownloadError(MattectlError):
    """A download failed or stopped early; running the same command again resumes it."""


class ChecksumError(MattectlError):
    """Weights are not the expected file (wrong checksum or size); they are not used."""


class JobNotFoundError(MattectlError):
    exit_code = ExitCode.NOT_FOUND


class JobLogUnavailableError(MattectlError):
    """The job log cannot be read or written just now: another process holds a lock past the
    busy timeout, or the database file is unreadable. ``reason`` is the database's own words;
    the same call may succeed later."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"the job log is locked or unavailable: {reason}")


class JobLogDamagedError(JobLogUnavailableError):
    """The job database is corrupt, emptied (0 bytes) or missing after one was created.
    Waiting cannot fix it; the message says what happened, where the file is, and how to
    restore a backup or start afresh. (A subclass of JobLogUnavailableError so that a worker
    that meets it mid-run waits instead of losing its job's outcome.)"""

    exit_code = ExitCode.DATABASE

    def __init__(self, message: str, reason: str = "") -> None:
        self.reason = reason or message
        MattectlError.__init__(self, message)


class SchemaTooNewError(MattectlError):
    """The job log was migrated by a newer mattectl; this one does not know its schema and must
    not write to it. Upgrading mattectl fixes it, restarting does not."""

    exit_code = ExitCode.DATABASE


class SchemaTooOldError(MattectlError):
    """The job log needs ``mattectl db upgrade`` before this mattectl can use it."""

    exit_code = ExitCode.DATABASE


class InvalidTransitionError(MattectlError):
    """A job status change that the transition table does not allow, or that lost a race."""


class DaemonNotRunningError(MattectlError):
    exit_code = ExitCode.NOT_RUNNING
