"""The studio page in a real browser (Debian's headless Chromium, driven by playwright), served
by a real `mattectl run` cutting out real portraits."""

from __future__ import annotations

import re
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mattectl.store.status import JobStatus

from .conftest import CHROMIUM_FLAGS
from .daemon_process import DaemonProcess, write_config
from .support import wait_for

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def browser() -> Iterator[object]:
    playwright_api = pytest.importorskip("playwright.sync_api",
                                         reason="pip install -e '.[dev]' brings playwright")
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        pytest.skip("chromium is not installed: scripts/dev.sh setup installs it (apt, as root)")
    with playwright_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=binary, args=list(CHROMIUM_FLAGS))
        yield chromium
        chromium.close()


def not_blank(shot: Path) -> None:
    pixels = np.asarray(Image.open(shot).convert("RGB")).astype(float)
    assert pixels.std() > 20, "the screenshot is (nearly) one colour"
    assert len(np.unique(pixels.reshape(-1, 3)[::7], axis=0)) > 500  # photos, not only text


def test_the_page_shows_real_cutouts_and_retries_a_failed_job(
        tmp_path: Path, human_photos: list[Path], browser: object) -> None:
    port = free_port()
    config = write_config(tmp_path)
    config.write_text(config.read_text() + f'\n[web]\nenabled = true\nlisten = '
                                           f'"127.0.0.1:{port}"\nrefresh_s = 1\n')
    for photo in human_photos[:3]:
        shutil.copy(photo, tmp_path / "in" / photo.name)
    good = human_photos[0].read_bytes()
    (tmp_path / "in" / "corrupt.jpg").write_bytes(good[:2000])  # a card-reader's half copy
    daemon = DaemonProcess(tmp_path)
    daemon.start()
    try:
        def all_finished() -> list | None:
            jobs = daemon.jobs()
            ended = [j for j in jobs if j.status in (JobStatus.DONE, JobStatus.FAILED)]
            return ended if len(ended) == len(jobs) == 4 else None

        finished = wait_for(all_finished, timeout=180, what="four finished jobs")
        [broken] = [j for j in finished if j.status == JobStatus.FAILED]
        link = re.search(r"http://\S+/login/\S+", daemon.cli("web", "--token").stdout)
        assert link, "mattectl web --token prints a one-time link"

        page = browser.new_page(viewport={"width": 1280, "height": 900})  # type: ignore[attr-defined]
        refused: list[str] = []
        page.on("console", lambda msg: refused.append(msg.text)
                if "Content Security Policy" in msg.text else None)
        page.goto(link.group(0))  # signs in, then lands on the overview
        assert page.url == f"http://127.0.0.1:{port}/"
        page.wait_for_function(
            "() => document.querySelectorAll('.cutout img').length === 3 && "
            "[...document.querySelectorAll('.cutout img')].every(i => i.complete && "
            "i.naturalWidth > 0)", timeout=30_000)
        card = page.locator('.folder[data-folder="studio"]')
        assert card.locator(".n-done").inner_text() == "3"
        assert card.locator(".n-failed").inner_text() == "1"
        failure = page.locator(f'.failure[data-job="{broken.id}"]')
        assert "corrupt.jpg" in failure.inner_text()
        assert failure.locator(".reason").inner_text() == broken.error  # readable, whole
        assert page.locator(".health .verdict").inner_text() == "healthy"
        shot = tmp_path / "desktop.png"
        page.screenshot(path=str(shot), full_page=True)
        not_blank(shot)

        failure.locator("button").click()  # Retry, through the page's script
        wait_for(lambda: (job := next(j for j in daemon.jobs() if j.id == broken.id)).status
                 == JobStatus.FAILED and job.finished_at > broken.finished_at,
                 timeout=60, what="the retried job to run (and fail) again")
        assert "re-queued from the studio page" in daemon.log_text()
        page.wait_for_function("() => document.body.dataset.updated !== undefined",
                               timeout=10_000)

        # The detail page: the original beside the cutout, and the times per stage.
        page.locator(".cutout").first.click()
        page.wait_for_function("() => document.querySelector('.original img').naturalWidth > 0",
                               timeout=30_000)
        facts = page.locator(".facts").first.inner_text()
        assert "u2netp" in facts and "total" in facts and "decode" in facts

        phone = browser.new_page(viewport={"width": 375, "height": 812})  # type: ignore[attr-defined]
        phone.goto(f"http://127.0.0.1:{port}/")
        phone.wait_for_selector(".cutout img")
        width = phone.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 375  # nothing to scroll sideways on a phone
        assert phone.locator(".failure button").count() == 0  # signed out: read-only
        shot = tmp_path / "phone.png"
        phone.screenshot(path=str(shot), full_page=True)
        not_blank(shot)
        assert refused == []  # the page needs nothing the policy forbids
    finally:
        daemon.stop()
