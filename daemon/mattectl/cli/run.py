"""`mattectl run`: the daemon in the foreground (what systemd starts)."""

from __future__ import annotations

from mattectl.cli.common import ConfigOption, load_settings
from mattectl.logs import setup_logging


def run(config: ConfigOption = None) -> None:
    """Run the daemon in the foreground until SIGTERM or Ctrl-C."""
    from mattectl.app import Daemon

    settings = load_settings(config)
    setup_logging(settings.daemon.log_level)
    Daemon(settings).run()
