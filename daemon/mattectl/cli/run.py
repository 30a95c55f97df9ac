"""`mattectl run`: the daemon in the foreground (what systemd starts)."""

from __future__ import annotations

import faulthandler
import logging
import os
import signal

from mattectl.cli.common import ConfigOption, load_settings
from mattectl.logs import setup_logging


def run(config: ConfigOption = None) -> None:
    """Run the daemon in the foreground until SIGTERM or Ctrl-C."""
    from mattectl.app import Daemon

    settings = load_settings(config)
    setup_logging(settings.daemon.log_level)
    # `kill -USR1 <pid>` writes every thread's stack to stderr (the journal): what a stuck
    # daemon is waiting for, without a debugger on the studio machine.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    daemon = Daemon(settings)
    daemon.run()
    if daemon.abandoned:
        # A job outlived the grace period inside native code (a model). Its job is re-queued
        # and the job log is closed; waiting for the thread could take forever, and tearing the
        # interpreter down under a running framework can abort. Leave now, cleanly.
        logging.shutdown()
        os._exit(0)
