"""`mattectl run` under systemd's protocols: readiness, status, watchdog, SIGTERM and SIGHUP."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mattectl.store.manifest import MANIFEST_NAME
from mattectl.store.status import JobStatus

from .daemon_process import DaemonProcess, write_config
from .support import children, wait_for

# `mattectl run` in a subprocess: not in the fast lane (scripts/dev.sh test --fast).
pytestmark = pytest.mark.slow


class NotifySocket:
    """A listening notification socket, as systemd holds one; records every message."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.2)
        self.messages: list[str] = []
        self.on_ready: list[object] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._listen, name="notify-listener")
        self._thread.start()

    def _listen(self) -> None:
        while not self._stop.is_set():
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except TimeoutError:
                continue

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()

    def count(self, prefix: str) -> int:
        return sum(1 for m in self.messages if m.startswith(prefix))


@pytest.fixture
def notify(tmp_path: Path) -> Iterator[NotifySocket]:
    listener = NotifySocket(tmp_path / "notify.sock")
    yield listener
    listener.close()


def test_ready_status_watchdog_and_stopping(tmp_path: Path, notify: NotifySocket,
                                            small_photo: Path) -> None:
    write_config(tmp_path)
    proc = DaemonProcess(tmp_path, env={"NOTIFY_SOCKET": str(notify.path),
                                        "WATCHDOG_USEC": "1000000"})
    proc.launch()
    try:
        wait_for(lambda: notify.count("READY=1"), timeout=60, what="READY=1")
        # Ready means ready: the job log answers and the watchers run.
        assert proc.cli("status").returncode == 0
        assert (tmp_path / "state" / "jobs.sqlite3").exists()
        ready = next(m for m in notify.messages if m.startswith("READY=1"))
        assert "STATUS=idle; 0 queued" in ready
        shutil.copyfile(small_photo, tmp_path / "in" / "a.jpg")
        wait_for(lambda: (tmp_path / "out" / "a.png").exists(), timeout=60, what="the cutout")
        wait_for(lambda: notify.count("WATCHDOG=1") >= 3, timeout=30, what="watchdog pings")
        assert any(m.startswith("STATUS=") for m in notify.messages)
    finally:
        assert proc.stop() == 0
    assert notify.count("STOPPING=1") == 1


def test_ready_waits_for_the_preloaded_models(tmp_path: Path, notify: NotifySocket) -> None:
    config = write_config(tmp_path)
    config.write_text(config.read_text().replace("[models]\n", '[models]\npreload = ["u2netp"]\n'))
    proc = DaemonProcess(tmp_path, env={"NOTIFY_SOCKET": str(notify.path)})
    proc.launch()
    try:
        wait_for(lambda: notify.count("READY=1"), timeout=120, what="READY=1")
        assert "loaded model u2netp" in proc.log_text()  # before READY, not on the first photo
        [model] = proc.status()["models"]
        assert model["name"] == "u2netp" and model["loaded"] is True
    finally:
        assert proc.stop() == 0


def test_sigterm_lets_the_running_job_finish(daemon: DaemonProcess,
                                             human_photos: list[Path]) -> None:
    daemon.start()
    shutil.copyfile(human_photos[0], daemon.root / "in" / "a.jpg")
    wait_for(lambda: any(j.status == JobStatus.RUNNING for j in daemon.jobs()), timeout=60,
             what="the job to start")
    assert daemon.stop(signal.SIGTERM) == 0
    [job] = daemon.jobs()
    assert job.status == JobStatus.DONE
    assert job.output_path is not None and job.output_path.exists()


def test_sigterm_past_the_grace_period_requeues(tmp_path: Path,
                                                human_photos: list[Path]) -> None:
    write_config(tmp_path, daemon="stop_grace_s = 0.0")
    proc = DaemonProcess(tmp_path)
    proc.start()
    try:
        for photo in human_photos[:3]:
            shutil.copyfile(photo, tmp_path / "in" / photo.name)
        wait_for(lambda: any(j.status == JobStatus.RUNNING for j in proc.jobs()), timeout=60,
                 what="a running job")
    finally:
        assert proc.stop(signal.SIGTERM) == 0
    jobs = proc.jobs()
    interrupted = [j for j in jobs if j.error and "interrupted by a shutdown" in j.error]
    assert interrupted and all(j.status == JobStatus.QUEUED for j in interrupted)
    assert all(j.attempts == 0 for j in interrupted)  # a shutdown is not the photo's fault
    assert not any(j.status == JobStatus.RUNNING for j in jobs)
    proc.start()
    try:
        wait_for(lambda: all(j.status == JobStatus.DONE for j in proc.jobs()), timeout=120,
                 what="every job done after the restart")
    finally:
        assert proc.stop() == 0
    outputs = sorted(p.name for p in (tmp_path / "out").iterdir() if p.name != MANIFEST_NAME)
    assert outputs == sorted(f"{p.stem}.png" for p in human_photos[:3])


def test_sighup_reloads_without_losing_or_duplicating(daemon: DaemonProcess,
                                                      human_photos: list[Path]) -> None:
    daemon.start()
    for photo in human_photos[:3]:
        shutil.copyfile(photo, daemon.root / "in" / photo.name)
    wait_for(lambda: daemon.jobs(), timeout=60, what="jobs to be queued")
    (daemon.root / "in2").mkdir()
    daemon.config.write_text(daemon.config.read_text() + """
[[watch]]
name = "second"
input = "in2"
output = "out2"
stability_s = 0.5
""")
    assert daemon.proc is not None
    daemon.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "reloaded: 2 folder(s)" in daemon.log_text(), timeout=60, what="the reload")
    shutil.copyfile(human_photos[3], daemon.root / "in2" / "new.jpg")
    jobs = wait_for(lambda: (js := daemon.jobs()) and len(js) == 4
                    and all(j.status == JobStatus.DONE for j in js) and js,
                    timeout=180, what="four finished jobs")
    assert sorted(j.folder for j in jobs) == ["second", "studio", "studio", "studio"]
    assert len([p for p in (daemon.root / "out").iterdir() if p.name != MANIFEST_NAME]) == 3
    assert [p.name for p in (daemon.root / "out2").iterdir() if p.name != MANIFEST_NAME] == \
        ["new.png"]

    # A broken config is refused and the daemon carries on with the one it has.
    good = daemon.config.read_text()
    daemon.config.write_text(good + "\nbogus = 1\n")
    daemon.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "reload refused" in daemon.log_text(), timeout=60, what="the refusal")
    broken = daemon.cli("status")  # status reads the same file: it names the mistake
    assert broken.returncode == 2 and "bogus" in broken.stdout + broken.stderr
    # Once the file is fixed, `status` says that the daemon still runs the old configuration
    # (exit 1) until a good reload: not only the log knows of the refusal.
    daemon.config.write_text(good)
    refused = refusal(daemon, "watch[1].bogus: unknown key")
    assert refused.startswith(f"invalid config {daemon.config}: ")
    shutil.copyfile(human_photos[4], daemon.root / "in2" / "after.jpg")
    wait_for(lambda: (daemon.root / "out2" / "after.png").exists(), timeout=60,
             what="a cutout made with the running config")

    # A config that validates but cannot be applied (an output folder that cannot be created):
    # the daemon goes back to the running one instead of stopping.
    (daemon.root / "blocker").write_text("a file where a folder would go")
    (daemon.root / "in3").mkdir()
    daemon.config.write_text(good + """
[[watch]]
name = "third"
input = "in3"
output = "blocker/out3"
""")
    daemon.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "reload failed, back to the running configuration" in daemon.log_text(),
             timeout=60, what="the failed reload")
    shutil.copyfile(human_photos[5], daemon.root / "in2" / "still.jpg")
    wait_for(lambda: (daemon.root / "out2" / "still.png").exists(), timeout=60,
             what="a cutout made after the failed reload")
    assert refusal(daemon, "reload failed, back to the running configuration")
    daemon.config.write_text(good)
    assert daemon.cli("status").returncode == 1  # a good file is not a good reload yet
    daemon.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: daemon.log_text().count("reloaded: 2 folder(s)") == 2, timeout=60,
             what="the good reload")
    wait_for(lambda: daemon.cli("status").returncode == 0, timeout=30,
             what="status healthy after the good reload")
    assert daemon.stop() == 0


def refusal(daemon: DaemonProcess, words: str) -> str:
    """The refused reload that ``mattectl status`` shows, once it shows one with ``words``."""
    prefix = ("the last reload was refused; the daemon runs with its previous configuration: ")

    def shown() -> str | None:
        result = daemon.cli("status", "--json")
        found = [p for p in json.loads(result.stdout)["problems"] if p.startswith(prefix)]
        if result.returncode == 1 and found and words in found[0]:
            return found[0][len(prefix):]
        return None

    return wait_for(shown, timeout=30, what=f"status to show the refused reload ({words})")


def test_sigusr1_on_a_busy_daemon_writes_every_threads_stack_and_the_daemon_goes_on(
        daemon: DaemonProcess, human_photos: list[Path]) -> None:
    # A burst of signals while photos are in flight, so that other threads run Python code
    # while the stacks are read. faulthandler.register's C handler crashed the daemon here
    # (SIGSEGV, about once in a few hundred signals): reading running threads' frames.
    daemon.start()
    assert daemon.proc is not None
    photos = human_photos[:3]
    for i, photo in enumerate(photos):
        shutil.copyfile(photo, daemon.root / "in" / f"busy{i}{photo.suffix}")
    sent = 0
    deadline = time.monotonic() + 60
    while sent < 300 or not children(daemon.proc.pid):
        assert time.monotonic() < deadline, "the model's process never started"
        daemon.proc.send_signal(signal.SIGUSR1)
        sent += 1
        time.sleep(0.01)
        assert daemon.proc.poll() is None, daemon.log_text()[-3000:]
    for i in range(len(photos)):
        wait_for(lambda i=i: (daemon.root / "out" / f"busy{i}.png").exists(), timeout=120,
                 what=f"cutout {i} despite the signals")
    # The model's own process (what `systemctl kill -s USR1` also reaches) dumps and goes on;
    # idle, as here, its dump reaches the log with the daemon's next heartbeat.
    (inference,) = children(daemon.proc.pid)
    os.kill(inference, signal.SIGUSR1)
    # The main thread comes last, waiting in Daemon.run (app.py) for a signal.
    main_thread = re.compile(r'mattectl/app\.py", line \d+ in run\n')
    # (the dump's own header: "loaded model ... in its own process (pid N)" names it too)
    header = f"the stack of every thread (pid {inference}), most recent call first"
    log = wait_for(lambda: main_thread.search(t := daemon.log_text()) and header in t
                   and "mattectl/backends/child.py" in t.split(header, 1)[1] and t,
                   timeout=30, what="the daemon's and the model process's stack dumps")
    assert log.count("Thread 0x") >= 3  # workers, intake, observer, ...
    assert children(daemon.proc.pid) == {inference}  # the model's process was not restarted
    assert daemon.cli("status").returncode == 0
    assert daemon.stop() == 0
