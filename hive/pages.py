"""Error pages as resources, with the names of ``twisted.web.pages``.

``errorPage(code, brief, detail)``, ``notFound()`` and ``forbidden()`` answer every request
below them with their status and a small HTML page; ``brief`` and ``detail`` are escaped.
They draw `hive.resource.ErrorPage`'s page; unlike it they are not leaves, as in Twisted:
a child put with ``putChild`` still answers for its own path.
"""

from __future__ import annotations

from hive import http
from hive.resource import ErrorPage

__all__ = ["errorPage", "forbidden", "notFound"]


class _ErrorPage(ErrorPage):
    """Answers every path below it (``getChild`` gives itself) but its ``putChild``
    children."""

    isLeaf = False


def errorPage(code: int, brief: str, detail: str) -> ErrorPage:
    """A resource answering every request with ``code``, ``brief`` as the page's title and
    heading and ``detail`` as its text."""
    return _ErrorPage(code, brief, detail)


def notFound(
    brief: str = "No Such Resource", message: str = "Sorry. No luck finding that resource."
) -> ErrorPage:
    """404 Not Found."""
    return _ErrorPage(http.NOT_FOUND, brief, message)


def forbidden(
    brief: str = "Forbidden Resource", message: str = "Sorry, resource is forbidden."
) -> ErrorPage:
    """403 Forbidden."""
    return _ErrorPage(http.FORBIDDEN, brief, message)
