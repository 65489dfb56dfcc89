"""Twisted's ``twisted.web.template`` for hive: a program ports by changing the import.

    from hive.template import Element, XMLString, renderer, renderElement, tags

An Element has a template (a loader: XMLString, XMLFile, HTMLString, HTMLFile or
TagLoader) whose ``t:render`` directives name its ``@renderer`` methods; renderers fill
``t:slot`` markers (``tag.fillSlots``), add children and attributes (``tag(...)``),
repeat parts (return a list or a generator of ``tag.clone()``), or return awaitables
(``async def`` renderers, futures, Deferreds under Twisted's asyncio reactor).
``flatten`` and ``flattenString`` are awaitable; ``renderElement(request, element)``
writes a page and returns NOT_DONE_YET.

Where hive goes past Twisted:

- HTMLString / HTMLFile read HTML5 templates (void elements, ``<script>`` and
  ``<style>`` text as written, entities like ``&nbsp;``, no XHTML needed).
- The walk is iterative: no RecursionError for deep trees or for thousands of finished
  futures; templates are compiled once into pre-escaped runs, so a page costs its
  dynamic parts (see hive.template._compile).
- Output is written in 64 KiB chunks, each followed by ``await request.drain()``: a
  large page streams to a slow client in bounded memory; rendering stops, and what it
  waits for is cancelled, when the client goes away.
- ``concurrent=True`` (flatten, flattenString, renderElement): when the walk has to
  wait, the renderers and awaitables that follow it in the same templates and lists
  are started first, so their waits overlap; output order is unchanged.
- Escaping is always on: text and attribute values are escaped (``&<>``, and ``"`` in
  attributes) whatever their source; there is no raw-markup escape hatch.  URLs are not
  checked: a ``javascript:`` href from user data is the application's to refuse.
- Errors: a failure before anything was sent is hive's 500 page; after, the connection
  is cut and the traceback logged; no traceback is written into a page.
"""

from hive.error import FlattenerError
from hive.template._element import Element, Expose, renderer
from hive.template._flatten import CHUNK_SIZE, Flattening, flatten, flattenString
from hive.template._loaders import (
    TEMPLATE_NAMESPACE,
    HTMLFile,
    HTMLString,
    TagLoader,
    TemplateSyntaxError,
    XMLFile,
    XMLString,
)
from hive.template._render import renderElement
from hive.template._tags import (
    CDATA,
    VALID_HTML_TAG_NAMES,
    CharRef,
    Comment,
    Flattenable,
    Tag,
    slot,
    tags,
)

__all__ = [
    "CDATA",
    "CHUNK_SIZE",
    "TEMPLATE_NAMESPACE",
    "VALID_HTML_TAG_NAMES",
    "CharRef",
    "Comment",
    "Element",
    "Expose",
    "Flattenable",
    "FlattenerError",
    "Flattening",
    "HTMLFile",
    "HTMLString",
    "Tag",
    "TagLoader",
    "TemplateSyntaxError",
    "XMLFile",
    "XMLString",
    "flatten",
    "flattenString",
    "renderElement",
    "renderer",
    "slot",
    "tags",
]
