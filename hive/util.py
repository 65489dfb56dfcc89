"""Redirects, with the names of ``twisted.web.util``: ``redirectTo``, ``Redirect``,
``ParentRedirect``.

Unlike Twisted (ticket 9839), the URL is HTML-escaped in the page body, so a URL built
from user input cannot inject markup or break out of the ``href`` attribute.
"""

from __future__ import annotations

import html
from typing import Any

from hive.iweb import IRequest
from hive.resource import Resource
from hive.urlpath import URLPath

__all__ = ["ParentRedirect", "Redirect", "redirectTo"]

_PAGE = """<html>
    <head>
        <meta http-equiv="refresh" content="0;URL=%(url)s">
    </head>
    <body bgcolor="#FFFFFF" text="#000000">
    <a href="%(url)s">click here</a>
    </body>
</html>
"""


def redirectTo(URL: bytes, request: IRequest) -> bytes:
    """Answer 302 Found with ``URL`` as the Location; return a page that links to it.

    Meant to be returned from a render method.  Raises TypeError if ``URL`` is not bytes,
    and ValueError if it contains CR, LF or NUL (it would split the header).
    """
    if not isinstance(URL, bytes):
        raise TypeError("URL must be bytes")
    request.setHeader(b"Content-Type", b"text/html; charset=utf-8")
    request.redirect(URL)
    url = html.escape(URL.decode("utf-8", "replace"), quote=True)
    return (_PAGE % {"url": url}).encode("utf-8")


class Redirect(Resource):
    """Redirects every request, whatever the method and the path below it, to ``url``."""

    isLeaf = True

    def __init__(self, url: bytes) -> None:
        super().__init__()
        self.url = url

    def render(self, request: IRequest) -> bytes:
        return redirectTo(self.url, request)

    def getChild(self, name: bytes, request: IRequest) -> Any:
        return self


class ParentRedirect(Resource):
    """Redirects to the nearest directory, dropping the query: /foo/bar?x -> /foo/.

    The Location is an absolute URL, as in Twisted.
    """

    isLeaf = True

    def render(self, request: IRequest) -> bytes:
        here = str(URLPath.fromRequest(request).here()).encode("ascii")
        return redirectTo(here, request)
