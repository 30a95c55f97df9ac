"""Housekeeping on APScheduler: rescans, heartbeat, watchdog, models, folder pauses, pruning,
maintenance."""

from __future__ import annotations

import logging
from typing import Protocol

from apscheduler.schedulers.background import BackgroundScheduler

from mattectl.condition_log import ConditionLog
from mattectl.config import Settings
from mattectl.errors import JobLogUnavailableError
from mattectl.sdnotify import Notifier

logger = logging.getLogger(__name__)

MODEL_CHECK_S = 30.0
PAUSE_CHECK_S = 5.0  # a paused folder's probe: a few small file operations
PRUNE_S = 3600.0
BACKUP_CHECK_S = 3600.0  # whether the newest job database backup is older than its interval
MAINTENANCE_S = 86_400.0


class Housekeeper(Protocol):
    """What the scheduler reads and calls on the daemon (:class:`mattectl.app.Daemon` is one);
    a protocol, so that this module need not import the composition root that imports it."""

    settings: Settings
    notifier: Notifier
    job_log: ConditionLog

    def rescan(self) -> None: ...
    def heartbeat(self) -> None: ...
    def check_models(self) -> None: ...
    def check_pauses(self) -> None: ...
    def prune(self) -> None: ...
    def maintain(self) -> None: ...
    def backup(self) -> None: ...
    def watchdog(self) -> None: ...


def build_scheduler(daemon: Housekeeper) -> BackgroundScheduler:
    settings = daemon.settings
    scheduler = BackgroundScheduler(
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 30},
        timezone="UTC",
    )

    def every(seconds: float, func, name: str) -> None:
        def run() -> None:
            try:
                func()
            except JobLogUnavailableError as exc:  # one line, not a traceback each time
                daemon.job_log.failed(exc.reason)

        scheduler.add_job(run, "interval", seconds=seconds, id=name, name=name)

    every(settings.daemon.rescan_interval_s, daemon.rescan, "rescan")
    every(settings.daemon.heartbeat_s, daemon.heartbeat, "heartbeat")
    every(MODEL_CHECK_S, daemon.check_models, "models")
    every(PAUSE_CHECK_S, daemon.check_pauses, "pauses")
    every(PRUNE_S, daemon.prune, "prune")
    every(MAINTENANCE_S, daemon.maintain, "maintenance")
    if (backup_h := settings.daemon.backup_interval_h) > 0:
        every(min(BACKUP_CHECK_S, backup_h * 3600), daemon.backup, "backup")
    if (interval := daemon.notifier.watchdog_interval_s) is not None:
        every(interval, daemon.watchdog, "watchdog")
    return scheduler
