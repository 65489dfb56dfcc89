"""The live protocol: JSON text messages over one WebSocket per page (pure functions).

A page hive rendered (a `hive.live.LivePage`) opens a WebSocket to the `LiveResource`
offering two subprotocols: `PROTOCOL` and ``hive-page.<page id>.<token>``, its
credentials (kept out of URLs, so out of access logs). The server answers with
`PROTOCOL` only after checking the Origin, the session cookie the page was rendered for
and the token (else 403, and no application code runs). Then every message is a JSON
object whose ``"t"`` says what it is:

client -> server
  ``{"t": "hello", "els": [[id, parent id or null], ...]}``
      first, on every connection: the live elements the page has (its DOM is the truth).
  ``{"t": "call", "id": n, "el": id, "m": name, "a": [...], "k": {...}}``
      call the exposed method ``name`` of element ``id``; ``a`` and ``k`` are optional.
  ``{"t": "result", "id": n, "v": value}`` / ``{"t": "error", "id": n, "e": {...}}``
      the answer to the server's call ``n``.
  ``{"t": "gone", "els": [id, ...]}``
      elements that left the page (a push replaced them).

server -> client
  ``{"t": "ready"}``
      the page is attached (or was rebuilt from the session); calls may go.
  ``{"t": "html", "el": id, "part": name or null, "html": "..."}``
      new HTML for an element (its root tag) or for its part ``name``.
  ``{"t": "call", "id": n, "el": id, "m": name, "a": [...]}``
      call the page's function ``name`` of element ``id``'s widget.
  ``{"t": "result", "id": n, "v": value}`` / ``{"t": "error", "id": n, "e": {...}}``
      the answer to the page's call ``n``; ``e`` is ``{"name": ..., "message": ...}``.
  ``{"t": "reload", "reason": "..."}``
      the page cannot be restored here: load it again.

The server may send several messages at once as one JSON array of them (the pushes of
one turn of the loop: one frame, one write). A message that is no JSON object of a known
kind closes the WebSocket with 1008; a call
to an unknown element or method, or with arguments that do not fit, gets an error
answer. Close codes of hive's own: `CLOSE_SESSION_ENDED` (the session ended: the page
reloads, which asks for a login again) and `CLOSE_MOVED` (another connection took the page).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "CLOSE_MOVED",
    "CLOSE_SESSION_ENDED",
    "CREDENTIALS_PREFIX",
    "PROTOCOL",
    "Call",
    "Failure",
    "Gone",
    "Hello",
    "ProtocolError",
    "Result",
    "call",
    "credentials_from",
    "dumps",
    "error",
    "html",
    "parse",
    "ready",
    "reload",
    "result",
]

#: The subprotocol the client offers and the server chooses.
PROTOCOL: Final = "hive-live.1"
#: The other subprotocol the client offers: ``hive-page.<page id>.<token>``.
CREDENTIALS_PREFIX: Final = "hive-page."
CLOSE_SESSION_ENDED: Final = 4401
CLOSE_MOVED: Final = 4409

#: The longest element id, method name or part name a client may send.
MAX_NAME: Final = 128


class ProtocolError(ValueError):
    """A message that is not the live protocol; the connection closes with 1008."""


@dataclass(frozen=True, slots=True)
class Hello:
    #: (element id, parent element id or None), in the page's document order.
    elements: tuple[tuple[str, str | None], ...]


@dataclass(frozen=True, slots=True)
class Call:
    id: int
    element: str
    method: str
    args: list[Any]
    kwargs: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Result:
    id: int
    value: Any


@dataclass(frozen=True, slots=True)
class Failure:
    id: int
    name: str
    message: str


@dataclass(frozen=True, slots=True)
class Gone:
    elements: tuple[str, ...]


ClientMessage = Hello | Call | Result | Failure | Gone


def _no_constant(name: str) -> Any:
    raise ProtocolError(f"{name} is not JSON")


def parse(text: str) -> ClientMessage:
    """A client's message; ProtocolError if it is not one."""
    try:
        data = json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ProtocolError("a message is a JSON object")
    kind = data.get("t")
    if kind == "call":
        args = data.get("a", [])
        kwargs = data.get("k", {})
        if not isinstance(args, list) or not isinstance(kwargs, dict):
            raise ProtocolError("a call's a is a list and its k an object")
        return Call(_id(data), _name(data, "el"), _name(data, "m"), args, kwargs)
    if kind == "result":
        return Result(_id(data), data.get("v"))
    if kind == "error":
        info = data.get("e")
        if not isinstance(info, dict):
            raise ProtocolError("an error's e is an object")
        return Failure(_id(data), str(info.get("name", "Error")), str(info.get("message", "")))
    if kind == "hello":
        return Hello(tuple(_pair(item) for item in _list(data, "els")))
    if kind == "gone":
        return Gone(tuple(_element_id(item) for item in _list(data, "els")))
    raise ProtocolError(f"unknown message kind {kind!r}")


def _id(data: dict[str, Any]) -> int:
    value = data.get("id")
    if type(value) is not int or not 0 <= value < 2**53:
        raise ProtocolError("a message id is a non-negative integer")
    return value


def _name(data: dict[str, Any], key: str) -> str:
    return _element_id(data.get(key), key)


def _element_id(value: Any, key: str = "els") -> str:
    if not isinstance(value, str) or not 0 < len(value) <= MAX_NAME:
        raise ProtocolError(f"{key}: a name of 1 to {MAX_NAME} characters")
    return value


def _list(data: dict[str, Any], key: str) -> list[Any]:
    value = data.get(key)
    if not isinstance(value, list):
        raise ProtocolError(f"{key} is a list")
    return value


def _pair(item: Any) -> tuple[str, str | None]:
    if not isinstance(item, list) or len(item) != 2:
        raise ProtocolError("els: [id, parent] pairs")
    element, parent = item
    return _element_id(element), None if parent is None else _element_id(parent)


def credentials_from(offered: list[str]) -> tuple[str, str] | None:
    """(page id, token) from the subprotocols a client offered, or None."""
    for name in offered:
        if name.startswith(CREDENTIALS_PREFIX):
            page, dot, token = name[len(CREDENTIALS_PREFIX) :].partition(".")
            if dot and page and token:
                return page, token
    return None


# -- what the server sends ------------------------------------------------------------------


def dumps(message: dict[str, Any]) -> str:
    """JSON text for a message; TypeError or ValueError if a value is not JSON."""
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def ready() -> str:
    return '{"t":"ready"}'


def html(element: str, part: str | None, markup: str) -> str:
    return dumps({"t": "html", "el": element, "part": part, "html": markup})


def call(id: int, element: str, method: str, args: list[Any]) -> str:
    return dumps({"t": "call", "id": id, "el": element, "m": method, "a": args})


def result(id: int, value: Any) -> str:
    return dumps({"t": "result", "id": id, "v": value})


def error(id: int, name: str, message: str) -> str:
    return dumps({"t": "error", "id": id, "e": {"name": name, "message": message}})


def reload(reason: str) -> str:
    return dumps({"t": "reload", "reason": reason})


def is_json_number(value: Any) -> bool:
    return type(value) in (int, float) and (type(value) is int or math.isfinite(value))
