"""Who may act on the studio page: the token, one-time sign-in links, the session cookie, CSRF.

Reading the page needs nothing. An action (Retry) needs the token: sent as
``Authorization: Bearer <token>``, or through the session cookie that signing in sets (by pasting
the token, or by a one-time link from ``mattectl web --token``). A request that rides on the
cookie must also carry the CSRF value (a form field or the ``X-CSRF-Token`` header) and, when
the browser says where it comes from, come from the page's own origin: another site can make a
browser send the cookie, but can read neither value.

The token lives in ``<state_dir>/web/token`` (0600, in a 0700 folder); the cookie and the CSRF
value are derived from it, so replacing the file signs everybody out.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from mattectl.errors import MattectlError

COOKIE = "mattectl_session"
LINK_TTL_S = 900.0  # a one-time sign-in link works for 15 minutes


def _private_dir(path: Path) -> Path:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def load_token(web_dir: Path, *, create: bool = True) -> str | None:
    """The page's token, made (0600) when there is none and ``create``; None otherwise."""
    path = web_dir / "token"
    try:
        return path.read_text().strip() or None
    except FileNotFoundError:
        if not create:
            return None
    try:
        fd = os.open(_private_dir(web_dir) / "token", os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                     0o600)
    except FileExistsError:  # made meanwhile by the daemon, or by `mattectl web --token`
        return path.read_text().strip() or None
    except OSError as exc:
        raise MattectlError(f"cannot make the web token {path}: {exc.strerror}") from None
    token = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")
    return token


def _link_path(web_dir: Path, code: str) -> Path:
    return web_dir / "links" / hashlib.sha256(code.encode()).hexdigest()


def make_link_code(web_dir: Path) -> str:
    """A code for a one-time sign-in link (``/login/<code>``); only its hash is stored."""
    code = secrets.token_urlsafe(24)
    _private_dir(_private_dir(web_dir) / "links")
    path = _link_path(web_dir, code)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    return code


def use_link_code(web_dir: Path, code: str, now: float | None = None) -> bool:
    """Whether ``code`` is a live one-time code; it is used up either way (removed first, so
    that two requests with one code cannot both pass)."""
    if not code or len(code) > 100:
        return False
    path = _link_path(web_dir, code)
    try:
        made = path.stat().st_mtime
        path.unlink()
    except OSError:
        return False
    return (time.time() if now is None else now) - made <= LINK_TTL_S


def prune_link_codes(web_dir: Path, now: float | None = None) -> None:
    """Remove one-time codes older than their lifetime."""
    folder = web_dir / "links"
    now = time.time() if now is None else now
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(folder):
            with contextlib.suppress(OSError):
                if now - entry.stat().st_mtime > LINK_TTL_S:
                    os.unlink(entry.path)


@dataclass(frozen=True)
class Keys:
    """What the token opens; ``token`` None: the page is read-only (``web.token = false``)."""

    token: str | None

    def _derive(self, purpose: str) -> str:
        assert self.token is not None
        return hmac.new(self.token.encode(), purpose.encode(), hashlib.sha256).hexdigest()

    @property
    def session(self) -> str | None:
        return None if self.token is None else self._derive("session")

    @property
    def csrf(self) -> str | None:
        return None if self.token is None else self._derive("csrf")

    def bearer_ok(self, header: str | None) -> bool:
        if self.token is None or not header or not header.startswith("Bearer "):
            return False
        return hmac.compare_digest(header[7:].strip().encode(), self.token.encode())

    def token_ok(self, given: str | None) -> bool:
        return self.token is not None and given is not None and \
            hmac.compare_digest(given.strip().encode(), self.token.encode())

    def cookie_ok(self, cookie: str | None) -> bool:
        session = self.session
        return session is not None and cookie is not None and \
            hmac.compare_digest(cookie.encode(), session.encode())

    def csrf_ok(self, given: str | None) -> bool:
        csrf = self.csrf
        return csrf is not None and given is not None and \
            hmac.compare_digest(given.encode(), csrf.encode())
