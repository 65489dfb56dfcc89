"""hive: a multi-core HTTP application server with Twisted Web's resource model.

The API is the modules without a leading underscore; most carry the name of the Twisted
module they replace, so a Twisted Web program ports by changing its imports:

- `hive.resource`, `hive.server`, `hive.iweb`: Resource, Site, Request, NOT_DONE_YET and
  the interfaces (zope.interface) resources and requests provide.
- `hive.http`, `hive.http_headers`, `hive.error`, `hive.urlpath`, `hive.address`: status
  codes and dates, Headers, errors, URLPath, addresses.
- `hive.static`, `hive.util`, `hive.vhost`, `hive.proxy`, `hive.xmlrpc`, `hive.guard`,
  `hive.session`, `hive.wsgi`, `hive.asgi`, `hive.pages`, `hive.script`, `hive.twcgi`: the
  standard resources, sessions, the WSGI and ASGI containers, error pages, .rpy scripts
  and CGI.
- `hive.cred` (`portal`, `checkers`, `credentials`, `error`) and `hive.components`:
  Twisted Cred and ``twisted.python.components``.
- `hive.pubsub`, `hive.sse`: the bus between workers and hosts, and Server-Sent Events.
- `hive.template`, `hive.websocket`, `hive.live`: templates, WebSockets, and live
  elements (pages whose parts the server pushes and the page calls).
- `hive.cli`: the ``hive`` command; `hive.listen` (hive.embed): serve a Site on the
  running asyncio loop of a program of one's own.

The rest is the server's own machinery, free to change between releases: the modules whose
names start with ``_`` (settings, access log, IPC messages, forms parsing...) and three
packages: `hive.engine` (the HTTP/1.1 parsers behind one sans-IO seam), `hive.worker`
(a worker process: connections and the asyncio driver) and `hive.supervisor` (the process
that binds the sockets and keeps the workers). docs/architecture.md maps them.
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hive.embed import ListeningPort, listen

__all__ = ["ListeningPort", "listen"]


def __getattr__(name: str) -> Any:
    # Imported when first asked for: ``import hive.iweb`` stays as light as it was.
    if name in __all__:
        from hive import embed

        return getattr(embed, name)
    raise AttributeError(f"module 'hive' has no attribute {name!r}")
