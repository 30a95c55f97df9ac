"""The studio page's token, one-time links and derived keys, on the real state directory."""

from __future__ import annotations

import os
import time
from pathlib import Path

from mattectl.web import auth


def test_the_token_is_made_once_private_and_kept(tmp_path: Path) -> None:
    web = tmp_path / "state" / "web"
    assert auth.load_token(web, create=False) is None
    token = auth.load_token(web)
    assert token is not None and len(token) >= 40
    assert (web / "token").stat().st_mode & 0o777 == 0o600
    assert web.stat().st_mode & 0o777 == 0o700
    assert auth.load_token(web) == token == auth.load_token(web, create=False)


def test_a_link_code_works_once_and_only_while_fresh(tmp_path: Path) -> None:
    web = tmp_path / "web"
    code = auth.make_link_code(web)
    assert code not in "".join(os.listdir(web / "links"))  # only its hash is stored
    assert auth.use_link_code(web, code)
    assert not auth.use_link_code(web, code)
    old = auth.make_link_code(web)
    assert not auth.use_link_code(web, old, now=time.time() + auth.LINK_TTL_S + 5)
    stale = auth.make_link_code(web)
    auth.prune_link_codes(web, now=time.time() + auth.LINK_TTL_S + 5)
    assert os.listdir(web / "links") == [] and not auth.use_link_code(web, stale)
    assert not auth.use_link_code(web, "") and not auth.use_link_code(web, "x" * 500)


def test_keys_derived_from_the_token(tmp_path: Path) -> None:
    keys = auth.Keys("tok")
    assert keys.bearer_ok("Bearer tok") and not keys.bearer_ok("Bearer tok2")
    assert not keys.bearer_ok("tok") and not keys.bearer_ok(None)
    assert keys.session not in (None, "tok") and keys.csrf not in (None, keys.session)
    assert keys.cookie_ok(keys.session) and not keys.cookie_ok(keys.csrf)
    assert keys.csrf_ok(keys.csrf) and not keys.csrf_ok(keys.session)
    assert keys.session != auth.Keys("other").session  # a new token signs everybody out
    none = auth.Keys(None)
    assert not (none.bearer_ok("Bearer ") or none.cookie_ok("") or none.csrf_ok("")
                or none.token_ok(""))
