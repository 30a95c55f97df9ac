"""Housekeeping on APScheduler: rescans, heartbeat, watchdog, models, pruning, maintenance."""

from __future__ import annotations

import logging
from typing import Protocol

from apscheduler.schedulers.background import BackgroundScheduler

from mattectl.config import Settings
from mattectl.sdnotify import Notifier

logger = logging.getLogger(__name__)

MODEL_CHECK_S = 30.0
PRUNE_S = 3600.0
MAINTENANCE_S = 86_400.0


class Housekeeper(Protocol):
    """What the scheduler reads and calls on the daemon (:class:`mattectl.app.Daemon` is one);
    a protocol, so that this module need not import the composition root that imports it."""

    settings: Settings
    notifier: Notifier

    def rescan(self) -> None: ...
    def heartbeat(self) -> None: ...
    def check_models(self) -> None: ...
    def prune(self) -> None: ...
    def maintain(self) -> None: ...
    def watchdog(self) -> None: ...


def build_scheduler(daemon: Housekeeper) -> BackgroundScheduler:
    settings = daemon.settings
    scheduler = BackgroundScheduler(
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 30},
        timezone="UTC",
    )

    def every(seconds: float, func, name: str) -> None:
        scheduler.add_job(func, "interval", seconds=seconds, id=name, name=name)

    every(settings.daemon.rescan_interval_s, daemon.rescan, "rescan")
    every(settings.daemon.heartbeat_s, daemon.heartbeat, "heartbeat")
    every(MODEL_CHECK_S, daemon.check_models, "models")
    every(PRUNE_S, daemon.prune, "prune")
    every(MAINTENANCE_S, daemon.maintain, "maintenance")
    if (interval := daemon.notifier.watchdog_interval_s) is not None:
        every(interval, daemon.watchdog, "watchdog")
    return scheduler
