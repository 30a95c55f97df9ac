"""The studio page's routes. Reading is open; each action checks :func:`authorised` first.

Endpoints are plain functions (Starlette runs them on its thread pool), as the job log is read
and written through the same blocking :class:`JobRepository` the CLI uses.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mattectl.config import Settings
from mattectl.errors import InvalidTransitionError, JobNotFoundError
from mattectl.overview import build_overview
from mattectl.store.repository import Job, JobRepository
from mattectl.store.status import JobStatus
from mattectl.thumbnails import ThumbnailStore
from mattectl.web import auth, files, views

logger = logging.getLogger(__name__)

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
HEADERS = [(b"content-security-policy", CSP.encode()), (b"x-content-type-options", b"nosniff"),
           (b"referrer-policy", b"no-referrer"), (b"x-frame-options", b"DENY"),
           (b"cross-origin-opener-policy", b"same-origin")]
FAILURES_SHOWN = 50
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass
class Studio:
    """What the page reads and acts through: the daemon's settings (as reloaded), its job log,
    the thumbnails, the keys, and ``wake`` (a retried job is picked up at once)."""

    settings: Callable[[], Settings]
    repo: JobRepository
    thumbnails: ThumbnailStore
    keys: auth.Keys
    web_dir: Path
    wake: Callable[[], None] = lambda: None
    # The names a browser may use for the page; None: any. On loopback only loopback names,
    # so that a web site whose name is re-pointed at 127.0.0.1 (DNS rebinding) reads nothing.
    hosts: frozenset[str] | None = None


class SecurityHeaders:
    """Every response carries the strict Content-Security-Policy and its companions; a request
    for a host name the page does not answer to is turned away (421)."""

    def __init__(self, app: ASGIApp, hosts: frozenset[str] | None = None) -> None:
        self.app = app
        self.hosts = hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.hosts is not None and \
                _host_name(scope) not in self.hosts:
            response = Response("this page answers to its own address only\n", 421,
                                media_type="text/plain")
            await response(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _host_name(scope: Scope) -> str | None:
    host = dict(scope.get("headers") or []).get(b"host", b"").decode("latin-1")
    try:
        return urlsplit(f"//{host}").hostname
    except ValueError:
        return None


def signed_in(studio: Studio, request: Request) -> bool:
    keys = studio.keys
    return keys.bearer_ok(request.headers.get("authorization")) or \
        keys.cookie_ok(request.cookies.get(auth.COOKIE))


def same_origin(request: Request) -> bool:
    """False when the browser says the request comes from another site."""
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    return origin is None or urlsplit(origin).netloc == request.headers.get("host")


async def authorised(studio: Studio, request: Request) -> tuple[bool, dict[str, Any]]:
    """Whether this request may act, and its form. The bearer token suffices; the cookie needs
    the CSRF value and the page's own origin too."""
    form = dict(await request.form()) if request.method == "POST" else {}
    keys = studio.keys
    if keys.bearer_ok(request.headers.get("authorization")):
        return True, form
    given = request.headers.get("x-csrf-token") or form.get("csrf")
    ok = keys.cookie_ok(request.cookies.get(auth.COOKIE)) and \
        keys.csrf_ok(given if isinstance(given, str) else None) and same_origin(request)
    return ok, form


def forbidden(studio: Studio, why: str) -> Response:
    hint = "sign in with the token (mattectl web --token)" if studio.keys.token else \
        "this page is read-only (web.token = false)"
    return Response(f"forbidden: {why}; {hint}\n", status_code=403, media_type="text/plain")


def back(form: dict[str, Any], fallback: str = "/") -> str:
    """Where a form without JavaScript returns to: a path on this site only."""
    target = str(form.get("next") or fallback)
    return target if target.startswith("/") and not target.startswith("//") and \
        "\\" not in target else fallback


class Pages:
    """The endpoints, over one :class:`Studio`."""

    def __init__(self, studio: Studio) -> None:
        self.studio = studio
        self.env = views.templates()

    def render(self, request: Request, name: str, status: int = 200,
               **context: Any) -> HTMLResponse:
        studio, settings = self.studio, self.studio.settings()
        signed = signed_in(studio, request)
        html = self.env.get_template(name).render(
            request=request, views=views, settings=settings, signed_in=signed,
            csrf=studio.keys.csrf if signed else None, can_sign_in=studio.keys.token is not None,
            refresh_s=settings.web.refresh_s, thumb=self.thumb_url, **context)
        return HTMLResponse(html, status_code=status, headers={"cache-control": "no-store"})

    def thumb_url(self, job: Job) -> str | None:
        """The thumbnail's address; its cutout's hash in it, so a retried job's is fetched anew."""
        path = self.studio.thumbnails.path(job)
        return f"/jobs/{job.id}/thumbnail.webp?v={path.stem.split('-')[1]}" \
            if path is not None and path.exists() else None

    def live_context(self) -> dict[str, Any]:
        settings, repo = self.studio.settings(), self.studio.repo
        return {
            "ov": build_overview(settings, repo),  # the verdict `mattectl status` gives
            "queued": repo.list(status=[JobStatus.QUEUED], limit=20),
            "recent": repo.list(status=[JobStatus.DONE], limit=settings.web.recent),
            "failures": repo.list(status=[JobStatus.FAILED], limit=FAILURES_SHOWN),
        }

    def job_or_none(self, request: Request) -> Job | None:
        try:
            return self.studio.repo.get(request.path_params["job_id"])
        except JobNotFoundError:
            return None

    # -- reading -------------------------------------------------------------------------------

    def home(self, request: Request) -> Response:
        return self.render(request, "home.html", **self.live_context())

    def live(self, request: Request) -> Response:
        return self.render(request, "live.html", **self.live_context())

    def overview_json(self, request: Request) -> Response:
        return JSONResponse(build_overview(self.studio.settings(), self.studio.repo).to_dict())

    def search(self, request: Request) -> Response:
        query = views.Search.of(request.query_params)
        since, until = query.bounds()
        jobs = [] if query.empty else self.studio.repo.search(
            name=query.name or None, folder=query.folder or None, status=query.statuses,
            since=since, until=until, limit=200)
        return self.render(request, "search.html", query=query, jobs=jobs,
                           statuses=list(JobStatus))

    def job_page(self, request: Request) -> Response:
        job = self.job_or_none(request)
        if job is None:
            return self.render(request, "missing.html", status=404)
        return self.render(request, "job.html", job=job)

    def thumbnail(self, request: Request) -> Response:
        job = self.job_or_none(request)
        data = self.studio.thumbnails.read(job) if job is not None else None
        if data is None:
            return not_found("no thumbnail")
        return Response(data, media_type="image/webp",
                        headers={"cache-control": "private, max-age=86400, immutable"})

    def original(self, request: Request) -> Response:
        job = self.job_or_none(request)
        data = files.original_preview(self.studio.settings(), job) if job is not None else None
        if data is None:
            return not_found("the original is not there (moved, removed, or outside the "
                             "configured folders)")
        return Response(data, media_type="image/jpeg", headers={"cache-control": "no-store"})

    def cutout(self, request: Request) -> Response:
        job = self.job_or_none(request)
        data = files.cutout_preview(self.studio.settings(), job) if job is not None else None
        if data is None:
            return not_found("the cutout is not there (moved, removed, or outside the output "
                             "folder)")
        return Response(data, media_type="image/webp", headers={"cache-control": "no-store"})

    # -- acting --------------------------------------------------------------------------------

    async def retry(self, request: Request) -> Response:
        ok, form = await authorised(self.studio, request)
        if not ok:
            return forbidden(self.studio, "retrying needs the token")
        job_id = request.path_params["job_id"]
        try:
            ids = [self.studio.repo.retry(job_id).id]  # the service `mattectl jobs retry` uses
        except JobNotFoundError:
            return not_found(f"no job {job_id}")
        except InvalidTransitionError as exc:
            return Response(f"{exc}\n", status_code=409, media_type="text/plain")
        return self.retried(request, form, ids)

    async def retry_folder(self, request: Request) -> Response:
        ok, form = await authorised(self.studio, request)
        if not ok:
            return forbidden(self.studio, "retrying needs the token")
        name = request.path_params["folder"]
        if name not in {w.name for w in self.studio.settings().watch}:
            return not_found(f"no folder {name}")
        return self.retried(request, form, self.studio.repo.retry_failed(name))

    def retried(self, request: Request, form: dict[str, Any], ids: list[int]) -> Response:
        logger.info("re-queued from the studio page: %s", ", ".join(map(str, ids)) or "-")
        if ids:
            self.studio.wake()
        if "text/html" in request.headers.get("accept", ""):
            return RedirectResponse(back(form), status_code=303)
        return JSONResponse({"requeued": ids})

    # -- signing in and out --------------------------------------------------------------------

    def login_form(self, request: Request) -> Response:
        return self.render(request, "login.html", failed=False)

    async def login(self, request: Request) -> Response:
        form = dict(await request.form())
        token = form.get("token")
        if not same_origin(request) or not self.studio.keys.token_ok(
                token if isinstance(token, str) else None):
            return self.render(request, "login.html", status=403, failed=True)
        return signed_in_response(self.studio)

    def login_link(self, request: Request) -> Response:
        if self.studio.keys.token is None or \
                not auth.use_link_code(self.studio.web_dir, request.path_params["code"]):
            return self.render(request, "login.html", status=403, failed=True)
        return signed_in_response(self.studio)

    async def logout(self, request: Request) -> Response:
        ok, _form = await authorised(self.studio, request)
        if not ok:
            return forbidden(self.studio, "signing out needs the CSRF value")
        response = RedirectResponse("/", status_code=303)
        response.delete_cookie(auth.COOKIE, path="/")
        return response


def not_found(why: str) -> Response:
    return Response(f"{why}\n", status_code=404, media_type="text/plain")


def create_app(studio: Studio) -> ASGIApp:
    pages = Pages(studio)
    static = StaticFiles(directory=str(resources.files("mattectl.web") / "static"))
    app = Starlette(routes=[
        Route("/", pages.home),
        Route("/live", pages.live),
        Route("/api/overview", pages.overview_json),
        Route("/jobs", pages.search),
        Route("/jobs/{job_id:int}", pages.job_page),
        Route("/jobs/{job_id:int}/thumbnail.webp", pages.thumbnail),
        Route("/jobs/{job_id:int}/original.jpg", pages.original),
        Route("/jobs/{job_id:int}/cutout.webp", pages.cutout),
        Route("/jobs/{job_id:int}/retry", pages.retry, methods=["POST"]),
        Route("/folders/{folder}/retry-failed", pages.retry_folder, methods=["POST"]),
        Route("/login", pages.login_form),
        Route("/login", pages.login, methods=["POST"]),
        Route("/login/{code}", pages.login_link),
        Route("/logout", pages.logout, methods=["POST"]),
        Mount("/static", static, name="static"),
    ])
    return SecurityHeaders(app, studio.hosts)


def signed_in_response(studio: Studio) -> Response:
    """Set the session cookie and go to the page (the one-time code leaves the address bar)."""
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(auth.COOKIE, studio.keys.session or "", max_age=30 * 86400, path="/",
                        httponly=True, samesite="strict")
    return response
