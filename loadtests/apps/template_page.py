"""The template benchmark's page: a 1,000-row table, three cells a row, one slot each.

Written once against a template module (``hive.template`` or ``twisted.web.template``:
only the module differs, as in a port) and once as the Jinja2 template a user would
write instead; all three give the same bytes.  Two forms of the table:

- ``iteration``: the how-to's idiom, a renderer that yields ``tag.clone().fillSlots(...)``
  for each row;
- ``subview``: a renderer per row, the how-to's sub-views (an Element per row, whose
  renderer fills the row's slots).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

NS = 'xmlns:t="http://twistedmatrix.com/ns/twisted.web.template/0.1"'

HEAD = (
    f"<html {NS}><head><title>Table</title></head>\n"
    "<body><h1>Table</h1><table><thead><tr><th>id</th><th>name</th><th>price</th></tr>"
    "</thead>\n<tbody>"
)
FOOT = "</tbody>\n</table></body></html>"
CELLS = '<td><t:slot name="id"/></td><td><t:slot name="name"/></td><td><t:slot name="price"/></td>'

ITERATION = HEAD + f'<tr t:render="rows">{CELLS}</tr>' + FOOT
SUBVIEW = (
    HEAD + f'<tr t:render="rows"><t:transparent t:render="row">{CELLS}</t:transparent></tr>' + FOOT
)

JINJA = (
    HEAD.replace(f" {NS}", "")
    + "{% for id, name, price in rows %}<tr><td>{{ id }}</td><td>{{ name }}</td>"
    "<td>{{ price }}</td></tr>{% endfor %}" + FOOT
)


def table_rows(count: int = 1000) -> list[tuple[str, str, str]]:
    """The data: an id, a name that needs escaping, a price."""
    return [(str(n), f"item <{n}>", f"{n * 1.5:.2f}") for n in range(count)]


def pages(t: Any) -> dict[str, type]:
    """The Element classes of each form, made with template module ``t``; each takes the
    rows."""

    class Iteration(t.Element):
        loader = t.XMLString(ITERATION)

        def __init__(self, rows: list[tuple[str, str, str]]) -> None:
            super().__init__()
            self.data = rows

        @t.renderer
        def rows(self, request: Any, tag: Any) -> Iterator[Any]:
            for id_, name, price in self.data:
                yield tag.clone().fillSlots(id=id_, name=name, price=price)

    class Row(t.Element):
        def __init__(self, loader: Any, row: tuple[str, str, str]) -> None:
            super().__init__(loader)
            self.data = row

        @t.renderer
        def row(self, request: Any, tag: Any) -> Any:
            id_, name, price = self.data
            return tag.fillSlots(id=id_, name=name, price=price)

    class Subview(t.Element):
        loader = t.XMLString(SUBVIEW)

        def __init__(self, rows: list[tuple[str, str, str]]) -> None:
            super().__init__()
            self.data = rows

        @t.renderer
        def rows(self, request: Any, tag: Any) -> Iterator[Any]:
            for row in self.data:
                yield Row(t.TagLoader(tag), row)

    return {"iteration": Iteration, "subview": Subview}
