"""A live page's record in the session store: what any worker needs to take the page on.

The record is kept under ``hive.live.<page id>`` in the Site's `SessionStore` (the SQLite
file every worker of ``hive run`` opens, Redis across hosts, memory when embedded),
beside the sessions and expiring with the session it belongs to. A session cookie can
never name it: session ids have no ``.`` (hive.session checks their shape first).

It holds the page's token, the SHA-256 of the session id it was rendered for (the
binding: the id itself is a credential and stays out of it), the connection that holds
the page (``owner``), the next element id, and each element's class, state and channels.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
from dataclasses import dataclass, field
from typing import Any, Final

from hive.session import SessionStore

__all__ = [
    "KEY_PREFIX",
    "MAX_RECORD",
    "ElementRecord",
    "PageRecord",
    "load",
    "new_token",
    "save",
    "session_hash",
    "token_matches",
]

log = logging.getLogger("hive.live")

KEY_PREFIX: Final = "hive.live."
#: The largest record, in bytes of JSON: element state is a few values, not a database.
MAX_RECORD: Final = 256 * 1024


def new_token() -> str:
    return secrets.token_urlsafe(24)


def session_hash(uid: bytes | str) -> str:
    raw = uid.encode("ascii") if isinstance(uid, str) else uid
    return hashlib.sha256(raw).hexdigest()


def token_matches(expected: str, given: str) -> bool:
    """Constant-time comparison of a page's token with the one a client gave."""
    return hmac.compare_digest(expected.encode("ascii"), given.encode("ascii", "replace"))


@dataclass(slots=True)
class ElementRecord:
    #: The element's class, as `hive.live` registered it ("module.QualName").
    cls: str
    state: dict[str, Any]
    #: channel -> the name of the element's method that handles its messages ("" for refresh).
    channels: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class PageRecord:
    token: str
    session: str
    owner: str = ""
    next_id: int = 1
    elements: dict[str, ElementRecord] = field(default_factory=dict)

    def matches(self, session_uid: bytes | str, token: str) -> bool:
        """Whether ``token`` is this page's and the session is the one it was rendered for."""
        same_session = hmac.compare_digest(self.session, session_hash(session_uid))
        return token_matches(self.token, token) and same_session

    def dumps(self) -> str:
        return json.dumps(
            {
                "v": 1,
                "t": self.token,
                "s": self.session,
                "o": self.owner,
                "n": self.next_id,
                "e": {
                    key: {"c": e.cls, "s": e.state, "ch": e.channels}
                    for key, e in self.elements.items()
                },
            },
            separators=(",", ":"),
            allow_nan=False,
        )

    @classmethod
    def loads(cls, text: str) -> PageRecord | None:
        try:
            data = json.loads(text)
            elements = {
                str(key): ElementRecord(str(e["c"]), dict(e["s"]), dict(e.get("ch", {})))
                for key, e in data["e"].items()
            }
            return cls(
                str(data["t"]), str(data["s"]), str(data.get("o", "")), int(data["n"]), elements
            )
        except (ValueError, KeyError, TypeError, AttributeError):
            log.warning("dropped a live page record that does not read back")
            return None


def key_of(page_id: str) -> str:
    return KEY_PREFIX + page_id


def load(store: SessionStore, page_id: str, now: float) -> PageRecord | None:
    """The page's record, or None if it is unknown or expired."""
    found = store.get(key_of(page_id))
    if found is None or found.expires_at <= now:
        return None
    return PageRecord.loads(found.data)


def save(
    store: SessionStore, page_id: str, record: PageRecord, expires_at: float, create: bool
) -> bool:
    """Write the record (a new one with ``create``); False if it is too large or gone."""
    text = record.dumps()
    if len(text) > MAX_RECORD:
        log.error(
            "live page state of %d bytes is over %d: not saved, the page cannot move workers",
            len(text),
            MAX_RECORD,
        )
        return False
    done = store.save(key_of(page_id), text, expires_at, create=create)
    if not done and create:
        return store.save(key_of(page_id), text, expires_at)
    return done
