from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from mattectl.sdnotify import Notifier


@pytest.fixture
def listener(tmp_path: Path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = tmp_path / "notify.sock"
    sock.bind(str(path))
    sock.settimeout(5)
    yield sock, str(path)
    sock.close()


def test_messages_reach_the_socket(listener) -> None:
    sock, path = listener
    notifier = Notifier({"NOTIFY_SOCKET": path})
    assert notifier.enabled
    assert notifier.ready("idle; 0 queued")
    assert sock.recv(4096).decode() == "READY=1\nSTATUS=idle; 0 queued"
    notifier.watchdog()
    assert sock.recv(4096) == b"WATCHDOG=1"
    notifier.reloading()
    message = sock.recv(4096).decode()
    assert message.startswith("RELOADING=1\nMONOTONIC_USEC=")
    notifier.close()


def test_abstract_namespace_socket() -> None:
    name = f"mattectl-test-{os.getpid()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(5)
    try:
        Notifier({"NOTIFY_SOCKET": "@" + name}).status("hello")
        assert sock.recv(4096) == b"STATUS=hello"
    finally:
        sock.close()


def test_without_systemd_nothing_is_sent() -> None:
    notifier = Notifier({})
    assert not notifier.enabled and not notifier.ready("x")
    assert notifier.watchdog_interval_s is None


def test_watchdog_interval_is_half_the_period_and_only_for_our_pid() -> None:
    assert Notifier({"WATCHDOG_USEC": "20000000"}).watchdog_interval_s == 10.0
    mine = {"WATCHDOG_USEC": "4000000", "WATCHDOG_PID": str(os.getpid())}
    assert Notifier(mine).watchdog_interval_s == 2.0
    assert Notifier({**mine, "WATCHDOG_PID": "1"}).watchdog_interval_s is None


def test_a_full_socket_never_blocks_the_daemon(listener) -> None:
    sock, path = listener
    notifier = Notifier({"NOTIFY_SOCKET": path})
    # Nobody reads: past the socket's queue, messages are dropped instead of blocking.
    results = [notifier.watchdog() for _ in range(5000)]
    assert results[0] is True and results[-1] is False
    assert sock.recv(4096) == b"WATCHDOG=1"
    notifier.close()
