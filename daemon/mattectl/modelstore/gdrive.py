"""Google Drive's page before a download, read for the address that confirms it.

Drive answers a public file's download address with the file itself, or, for files it cannot
scan for viruses (large ones), with a small HTML page asking to confirm. Three forms of that page
have been served over the years, and each gives the address of the file:

- a form ``id="download-form"`` whose ``action`` (``https://drive.usercontent.google.com/
  download``) and hidden inputs (``id``, ``export``, ``confirm``, ``uuid``) make the address;
- a link ``/uc?export=download&confirm=TOKEN&id=ID`` ("Download anyway");
- a cookie ``download_warning_...=TOKEN`` set with the page: the same address plus
  ``confirm=TOKEN``.

Any other page (quota exceeded, file no longer shared, a sign-in page) has no such address: the
caller says so, with the page's title.
"""

from __future__ import annotations

from collections.abc import Iterable
from html.parser import HTMLParser
from http.cookiejar import Cookie
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit


class _PageParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.title = ""
        self.form_action: str | None = None
        self.form_inputs: list[tuple[str, str]] = []
        self.confirm_links: list[str] = []
        self._in_form = False
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attr = {k: v or "" for k, v in attrs}
        if tag == "title":
            self._in_title = True
        elif tag == "form" and attr.get("id") == "download-form":
            self._in_form = True
            self.form_action = attr.get("action", "")
        elif tag == "input" and self._in_form and attr.get("name"):
            self.form_inputs.append((attr["name"], attr.get("value", "")))
        elif tag == "a" and "confirm=" in attr.get("href", ""):
            self.confirm_links.append(attr["href"])

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._in_form = False
        elif tag == "title":
            self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data


def _with_confirm(url: str, token: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "confirm"]
    return urlunsplit(parts._replace(query=urlencode([*query, ("confirm", token)])))


def page_title(html: str) -> str:
    parser = _PageParser()
    parser.feed(html)
    return " ".join(parser.title.split()) or "untitled page"


def confirmation_url(html: str, page_url: str, cookies: Iterable[Cookie] = ()) -> str | None:
    """The address that confirms the download the page at ``page_url`` asks about, or None."""
    parser = _PageParser()
    parser.feed(html)
    if parser.form_action is not None:
        action = urljoin(page_url, parser.form_action or page_url)
        return f"{action}?{urlencode(parser.form_inputs)}"
    if parser.confirm_links:
        return urljoin(page_url, parser.confirm_links[0])
    for cookie in cookies:
        if cookie.name.startswith("download_warning") and cookie.value:
            return _with_confirm(page_url, cookie.value)
    return None
