"""A templated page: an Element with slots, and renderers that await.

Mounted at /team in the example site; alone::

    hive run examples.team:root

Written as a ``twisted.web.template`` program would be, with ``hive.template`` for the
import.  The template is HTML5 (HTMLString): no XHTML needed.  The page starts going out
before the team and the forecast are in (they stand in for a database and a remote
service), and with ``concurrent=True`` the two waits overlap: the page takes the longer
of them, not their sum.  The visitor's name comes from ``?name=`` and is escaped like
all data (try ``?name=<script>alert(1)</script>``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

from hive.iweb import IRequest
from hive.resource import Resource
from hive.template import Element, HTMLString, Tag, renderElement, renderer

TEMPLATE = HTMLString("""\
<html lang="en" t:render="page">
<head><meta charset="utf-8"><title><t:slot name="title"></title>
<link rel="stylesheet" href="/static/style.css">
</head>
<body>
<h1><t:slot name="title"></h1>
<p>Hello, <b><t:slot name="visitor"></b>.</p>
<table>
<thead><tr><th>name</th><th>role</th><th>since</th></tr></thead>
<tbody><tr t:render="members"><td><t:slot name="name"></td><td><t:slot name="role"></td>
<td><t:slot name="since"></td></tr></tbody>
</table>
<p t:render="forecast">Tomorrow: <t:slot name="forecast">.</p>
<p><a href="/">home</a></p>
</body>
</html>
""")

#: What the page's "database" holds.
TEAM = [
    ("Ada", "engines", "1843"),
    ("Grace", "compilers", "1952"),
    ("Margaret", "flight software", "1965"),
]


async def load_team() -> list[tuple[str, str, str]]:
    """Stands in for a database query."""
    await asyncio.sleep(0.05)
    return TEAM


async def load_forecast() -> str:
    """Stands in for a call to another service."""
    await asyncio.sleep(0.05)
    return "sunny, 21 \u00b0C"


class TeamPage(Element):
    """The page: its title and visitor in slots, the team and the forecast awaited."""

    loader = TEMPLATE

    def __init__(self, visitor: str) -> None:
        super().__init__()
        self.visitor = visitor

    @renderer
    def page(self, request: IRequest, tag: Tag) -> Tag:
        return tag.fillSlots(title="The team", visitor=self.visitor)

    @renderer
    async def members(self, request: IRequest, tag: Tag) -> Iterator[Tag]:
        team = await load_team()
        return (tag.clone().fillSlots(name=n, role=r, since=s) for n, r, s in team)

    @renderer
    async def forecast(self, request: IRequest, tag: Tag) -> Tag:
        return tag.fillSlots(forecast=await load_forecast())


class Team(Resource):
    """GET /team?name=...: the templated page."""

    isLeaf = True

    def render_GET(self, request: IRequest) -> Any:
        visitor = request.args.get(b"name", [b"visitor"])[0].decode("utf-8", "replace")
        return renderElement(request, TeamPage(visitor[:100]), concurrent=True)


root = Team()
