"""The studio page's routes on a real job log and real files, through Starlette's TestClient:
what it shows, and each security rule (token, CSRF, origin, files by job id only, CSP)."""

from __future__ import annotations

import hashlib
import io
import os
import re
import sqlite3
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from PIL import Image
from starlette.testclient import TestClient

from mattectl.config import Settings
from mattectl.overview import build_overview
from mattectl.report import DaemonReport
from mattectl.store.repository import Job, JobRepository, JobResult
from mattectl.store.status import JobStatus
from mattectl.thumbnails import ThumbnailStore
from mattectl.web import auth
from mattectl.web.routes import CSP, LOOPBACK_NAMES, Studio, create_app

from .support import queue_photo

ORIGIN = "http://testserver"


class Page:
    def __init__(self, settings: Settings, repo: JobRepository, token: str | None) -> None:
        self.settings, self.repo = settings, repo
        self.watch = settings.watch[0]
        self.thumbnails = ThumbnailStore(settings.web_dir / "thumbnails")
        self.keys = auth.Keys(token)
        self.woken = 0
        studio = Studio(settings=lambda: settings, repo=repo, thumbnails=self.thumbnails,
                        keys=self.keys, web_dir=settings.web_dir, wake=self._wake)
        self.client = TestClient(create_app(studio), follow_redirects=False)

    def _wake(self) -> None:
        self.woken += 1

    def drop(self, name: str, data: bytes) -> Job:
        return queue_photo(self.repo, self.watch, name, data)

    def failed(self, name: str, reason: str) -> Job:
        job = self.drop(name, b"not a photo " + name.encode())
        self.repo.claim("h:1:w0", [self.watch.name])
        return self.repo.fail(job.id, "h:1:w0", reason)

    def done(self, name: str, photo: bytes) -> Job:
        job = self.drop(name, photo)
        self.repo.claim("h:1:w0", [self.watch.name])
        cutout = png_rgba(64, 48)
        out = self.watch.output / (Path(name).stem + ".png")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(cutout)
        done = self.repo.finish(job.id, "h:1:w0", JobResult(
            model="u2netp", device="cpu", output_path=out,
            output_hash=hashlib.sha256(cutout).hexdigest(), width=64, height=48,
            decode_ms=3.0, inference_ms=120.0, encode_ms=9.0, refine_ms=4.0, total_ms=140.0))
        self.thumbnails.make(done, cutout)
        return done

    def sign_in(self) -> str:
        """Sign in with the token; returns the CSRF value the page then carries."""
        response = self.client.post("/login", data={"token": self.keys.token},
                                    headers={"origin": ORIGIN})
        assert response.status_code == 303, response.text
        page = self.client.get("/").text
        found = re.search(r'<meta name="csrf-token" content="([0-9a-f]+)">', page)
        assert found, "a signed-in page carries its CSRF value"
        return found.group(1)


def png_rgba(width: int, height: int) -> bytes:
    image = Image.new("RGBA", (width, height), (200, 30, 30, 0))
    image.paste((200, 30, 30, 255), (10, 10, width - 10, height - 10))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg(width: int = 80, height: int = 60) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (20, 120, 200)).save(buffer, format="JPEG")
    return buffer.getvalue()


@pytest.fixture
def make_page(make_settings: Callable[..., Settings],
              repo: JobRepository) -> Iterator[Callable[..., Page]]:
    pages: list[Page] = []

    def build(token: str | None = "s3cret-token", **web: object) -> Page:
        settings = make_settings(watch={"name": "studio"}, web={"enabled": True, **web})
        pages.append(Page(settings, repo, token))
        return pages[-1]

    yield build
    for page in pages:
        page.client.close()


def test_the_page_gives_the_verdict_and_counts_of_status(make_page: Callable[..., Page]) -> None:
    page = make_page()
    page.failed("a.jpg", "a.jpg: corrupt or truncated JPEG")
    page.done("b.jpg", jpeg())
    page.drop("c.jpg", b"queued")
    html = page.client.get("/").text
    ov = build_overview(page.settings, page.repo)
    assert not ov.healthy and ov.state == "never started"
    assert "never started" in html and ov.problems[0] in html
    card = html[html.index('data-folder="studio"'):]
    for name, count in (("queued", 1), ("running", 0), ("done", 1), ("failed", 1)):
        assert re.search(rf'class="n-{name}">{count}<', card), name
    assert "a.jpg: corrupt or truncated JPEG" in html  # the failure's reason
    # A daemon that beats: the page says healthy exactly when `status` does.
    page.repo.register_daemon("host:1", "elsewhere", 1, "0", DaemonReport())
    assert build_overview(page.settings, page.repo).healthy
    live = page.client.get("/live").text
    assert '<span class="verdict">healthy</span>' in live
    hosts = build_overview(page.settings, page.repo).hosts  # the workstations status lists
    assert ("<h2>Workstations</h2>" in live) == bool(hosts)
    assert all(f"<td>{h.name}</td>" in live for h in hosts)
    assert page.client.get("/api/overview").json()["healthy"] is True


def test_recent_cutouts_show_thumbnails_with_model_and_stage_times(
        make_page: Callable[..., Page]) -> None:
    page = make_page()
    done = page.done("portrait.jpg", jpeg())
    html = page.client.get("/").text
    thumb = re.search(rf'<img src="(/jobs/{done.id}/thumbnail\.webp\?v=[0-9a-f]+)"', html)
    assert thumb, "the cutout's thumbnail is on the page"
    image = page.client.get(thumb.group(1))
    assert image.headers["content-type"] == "image/webp"
    with Image.open(io.BytesIO(image.content)) as picture:
        assert picture.size == (64, 48) and picture.mode == "RGBA"
    detail = page.client.get(f"/jobs/{done.id}").text
    for text in ("u2netp", "120 ms", "140 ms", f"/jobs/{done.id}/original.jpg",
                 f"/jobs/{done.id}/cutout.webp"):
        assert text in detail
    original = page.client.get(f"/jobs/{done.id}/original.jpg")
    assert original.status_code == 200 and original.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(original.content)) as picture:
        assert picture.size == (80, 60)
    cutout = page.client.get(f"/jobs/{done.id}/cutout.webp")
    with Image.open(io.BytesIO(cutout.content)) as picture:
        assert picture.format == "WEBP" and picture.size == (64, 48) and picture.mode == "RGBA"


def test_actions_without_the_token_are_forbidden(make_page: Callable[..., Page]) -> None:
    page = make_page()
    job = page.failed("a.jpg", "broken")
    assert "Retry" not in page.client.get("/").text.split('id="failures"')[1]
    for url in (f"/jobs/{job.id}/retry", "/folders/studio/retry-failed"):
        assert page.client.post(url).status_code == 403
        assert page.client.post(url, headers={"authorization": "Bearer wrong"}).status_code == 403
    assert page.repo.get(job.id).status == JobStatus.FAILED and page.woken == 0


def test_the_token_retries_through_the_service_jobs_retry_uses(
        make_page: Callable[..., Page]) -> None:
    page = make_page()
    one, two = page.failed("a.jpg", "broken"), page.failed("b.jpg", "broken")
    bearer = {"authorization": f"Bearer {page.keys.token}"}
    response = page.client.post(f"/jobs/{one.id}/retry", headers=bearer)
    assert response.status_code == 200 and response.json() == {"requeued": [one.id]}
    again = page.repo.get(one.id)
    assert again.status == JobStatus.QUEUED and again.attempts == 0 and again.error is None
    assert page.client.post(f"/jobs/{one.id}/retry", headers=bearer).status_code == 409
    assert page.client.post("/jobs/999/retry", headers=bearer).status_code == 404
    response = page.client.post("/folders/studio/retry-failed", headers=bearer)
    assert response.json() == {"requeued": [two.id]} and page.woken == 2
    assert page.client.post("/folders/nope/retry-failed", headers=bearer).status_code == 404


def test_the_session_cookie_needs_the_csrf_value_and_the_pages_origin(
        make_page: Callable[..., Page]) -> None:
    page = make_page()
    job = page.failed("a.jpg", "broken")
    url = f"/jobs/{job.id}/retry"
    csrf = page.sign_in()
    assert 'action="/jobs/' in page.client.get("/").text  # Retry is offered now
    assert page.client.post(url).status_code == 403  # the cookie alone
    assert page.client.post(url, data={"csrf": "0" * 64}).status_code == 403
    assert page.client.post(url, data={"csrf": csrf},
                            headers={"origin": "http://evil.example"}).status_code == 403
    assert page.client.post(url, data={"csrf": csrf},
                            headers={"sec-fetch-site": "cross-site"}).status_code == 403
    assert page.repo.get(job.id).status == JobStatus.FAILED
    done = page.client.post(url, data={"csrf": csrf, "next": "//evil.example/"},
                            headers={"origin": ORIGIN, "accept": "text/html"})
    assert done.status_code == 303 and done.headers["location"] == "/"
    assert page.repo.get(job.id).status == JobStatus.QUEUED
    # The header form (the page's script) works as well.
    page.repo.claim("h:1:w0", ["studio"])
    page.repo.fail(job.id, "h:1:w0", "broken again")
    assert page.client.post(url, headers={"x-csrf-token": csrf}).status_code == 200


def test_a_wrong_token_signs_nobody_in(make_page: Callable[..., Page]) -> None:
    page = make_page()
    response = page.client.post("/login", data={"token": "guess"}, headers={"origin": ORIGIN})
    assert response.status_code == 403 and auth.COOKIE not in response.cookies
    response = page.client.post("/login", data={"token": page.keys.token},
                                headers={"origin": "http://evil.example"})
    assert response.status_code == 403 and auth.COOKIE not in response.cookies


def test_a_one_time_link_signs_in_once(make_page: Callable[..., Page]) -> None:
    page = make_page()
    code = auth.make_link_code(page.settings.web_dir)
    first = page.client.get(f"/login/{code}")
    assert first.status_code == 303 and first.cookies.get(auth.COOKIE) == page.keys.session
    cookie = first.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    page.client.cookies.clear()
    assert page.client.get(f"/login/{code}").status_code == 403
    assert page.client.get("/login/not-a-code").status_code == 403


def test_files_are_served_by_job_id_only_and_never_from_outside_the_folders(
        make_page: Callable[..., Page], tmp_path: Path) -> None:
    page = make_page()
    secret = tmp_path / "secret.jpg"
    secret.write_bytes(jpeg())
    job = page.done("p.jpg", jpeg())
    client = page.client
    for url in ("/jobs/../../etc/passwd", "/jobs/%2e%2e/%2e%2e/etc/passwd",
                f"/jobs/{job.id}/../../../etc/passwd", "/jobs/1e3/original.jpg",
                f"/jobs/{job.id}/original.jpg/../../secret.jpg", "/static/../routes.py",
                "/static/%2e%2e/routes.py", "/jobs/999/original.jpg",
                "/jobs/999/thumbnail.webp"):
        response = client.get(url)
        assert response.status_code == 404, url
        assert b"secret" not in response.content and b"root:" not in response.content
    assert client.get(f"/jobs/{job.id}/original.jpg").status_code == 200
    inside_link = page.watch.input / "link.jpg"
    os.symlink(secret, inside_link)
    # A job row pointing outside its folder (a crafted row, a changed config) shows nothing.
    assert client.get(f"/jobs/{job.id}/cutout.webp").status_code == 200
    out_link = page.watch.output / "link.png"
    os.symlink(secret, out_link)
    for forged, out in ((str(secret), str(secret)),
                        (f"{page.watch.input}/../secret.jpg", f"{page.watch.output}/../secret.jpg"),
                        (str(inside_link), str(out_link))):
        with sqlite3.connect(page.settings.database_path) as db:
            db.execute("UPDATE jobs SET input_path = ?, output_path = ? WHERE id = ?",
                       (forged, out, job.id))
        assert client.get(f"/jobs/{job.id}/original.jpg").status_code == 404, forged
        assert client.get(f"/jobs/{job.id}/cutout.webp").status_code == 404, out


def test_on_loopback_the_page_answers_to_loopback_names_only(
        make_page: Callable[..., Page]) -> None:
    page = make_page()
    studio = Studio(settings=lambda: page.settings, repo=page.repo, thumbnails=page.thumbnails,
                    keys=page.keys, web_dir=page.settings.web_dir, hosts=LOOPBACK_NAMES)
    with TestClient(create_app(studio), base_url="http://127.0.0.1:8750") as client:
        assert client.get("/").status_code == 200
        for host in ("localhost:8750", "[::1]:8750"):
            assert client.get("/", headers={"host": host}).status_code == 200, host
        # A site whose name was re-pointed at 127.0.0.1 (DNS rebinding) reads nothing.
        for host in ("evil.example:8750", "evil.example", "", "127.0.0.1.evil.example"):
            response = client.get("/api/overview", headers={"host": host})
            assert response.status_code == 421 and b"healthy" not in response.content, host


def test_every_response_carries_a_strict_content_security_policy(
        make_page: Callable[..., Page]) -> None:
    page = make_page()
    page.failed("a.jpg", "<script>alert(1)</script>")
    for url in ("/", "/live", "/jobs?name=a", "/jobs/1", "/jobs/9", "/static/app.js", "/login"):
        response = page.client.get(url)
        assert response.headers["content-security-policy"] == CSP, url
        assert response.headers["x-content-type-options"] == "nosniff"
    assert "'unsafe-inline'" not in CSP and "script-src 'self'" in CSP
    html = page.client.get("/").text
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html
    assert re.findall(r"<script[^>]*>", html) == ['<script src="/static/app.js" defer>']
    assert " style=" not in html and "onclick" not in html


def test_search_by_name_folder_status_and_day(make_page: Callable[..., Page]) -> None:
    page = make_page()
    page.failed("wedding/ann_01.jpg", "broken")
    page.done("wedding/ann_02.jpg", jpeg())
    page.done("shoot/bob.jpg", jpeg(90, 70))

    def found(**query: str) -> list[str]:
        html = page.client.get("/jobs", params=query).text
        names = re.findall(r'<td><a href="/jobs/\d+">([^<]+)</a></td>', html)
        return sorted({name for name in names if not name.isdigit()})  # not the id column

    assert found(name="ANN") == ["wedding/ann_01.jpg", "wedding/ann_02.jpg"]
    assert found(name="ann", status="failed") == ["wedding/ann_01.jpg"]
    assert found(name="_0") == ["wedding/ann_01.jpg", "wedding/ann_02.jpg"]  # _ is no wildcard
    assert found(name="%") == []
    assert found(folder="studio", status="done") == ["shoot/bob.jpg", "wedding/ann_02.jpg"]
    today = date.today()
    assert len(found(day=today.isoformat())) == 3
    assert found(day=(today - timedelta(days=1)).isoformat()) == []
    assert found() == []  # an empty search lists nothing (the overview shows the latest)


def test_a_read_only_page_has_no_sign_in_and_refuses_actions(
        make_page: Callable[..., Page]) -> None:
    page = make_page(token=None)
    job = page.failed("a.jpg", "broken")
    assert 'href="/login"' not in page.client.get("/").text
    assert page.client.post(f"/jobs/{job.id}/retry",
                            headers={"authorization": "Bearer None"}).status_code == 403
    assert page.client.post("/login", data={"token": ""},
                            headers={"origin": ORIGIN}).status_code == 403
