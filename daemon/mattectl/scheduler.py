"""Housekeeping on APScheduler: rescans, heartbeat, model availability and idle unloading."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from apscheduler.schedulers.background import BackgroundScheduler

if TYPE_CHECKING:
    from mattectl.app import Daemon

logger = logging.getLogger(__name__)

MODEL_CHECK_S = 30.0


def build_scheduler(daemon: Daemon) -> BackgroundScheduler:
    settings = daemon.settings
    scheduler = BackgroundScheduler(
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 30},
        timezone="UTC",
    )
    scheduler.add_job(daemon.rescan, "interval", seconds=settings.daemon.rescan_interval_s,
                      id="rescan", name="rescan drop folders")
    scheduler.add_job(daemon.heartbeat, "interval", seconds=settings.daemon.heartbeat_s,
                      id="heartbeat", name="heartbeat")
    scheduler.add_job(daemon.check_models, "interval", seconds=MODEL_CHECK_S,
                      id="models", name="model availability and idle unloading")
    return scheduler
