"""`mattectl run`: the daemon in the foreground (what systemd starts)."""

from __future__ import annotations

import logging
import os
import signal

from mattectl.cli.common import ConfigOption, load_daemon_settings
from mattectl.logs import dump_stacks_on, setup_logging


def run(config: ConfigOption = None) -> None:
    """Run the daemon in the foreground until SIGTERM or Ctrl-C."""
    from mattectl.app import Daemon

    settings = load_daemon_settings(config)
    setup_logging(settings.daemon.log_level)
    dump_stacks_on(signal.SIGUSR1)
    daemon = Daemon(settings)
    daemon.run()
    if daemon.abandoned:
        # A job outlived the grace period inside native code (a model). Its job is re-queued
        # and the job log is closed; waiting for the thread could take forever, and tearing the
        # interpreter down under a running framework can abort. Leave now, cleanly.
        logging.shutdown()
        os._exit(0)
