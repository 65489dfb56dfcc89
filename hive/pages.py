"""Error pages as resources, with the names of ``twisted.web.pages``.

``errorPage(code, brief, detail)``, ``notFound()`` and ``forbidden()`` answer every request
below them with their status and a small HTML page; ``brief`` and ``detail`` are escaped.
They are `hive.resource.ErrorPage` (Twisted's ``resource.ErrorPage`` and ``pages`` drew the
same page): a child put with ``putChild`` still answers for its own path.
"""

from __future__ import annotations

from hive import http
from hive.resource import ErrorPage

__all__ = ["errorPage", "forbidden", "notFound"]


def errorPage(code: int, brief: str, detail: str) -> ErrorPage:
    """A resource answering every request with ``code``, ``brief`` as the page's title and
    heading and ``detail`` as its text."""
    return ErrorPage(code, brief, detail)


def notFound(
    brief: str = "No Such Resource", message: str = "Sorry. No luck finding that resource."
) -> ErrorPage:
    """404 Not Found."""
    return ErrorPage(http.NOT_FOUND, brief, message)


def forbidden(
    brief: str = "Forbidden Resource", message: str = "Sorry, resource is forbidden."
) -> ErrorPage:
    """403 Forbidden."""
    return ErrorPage(http.FORBIDDEN, brief, message)
