# Twisted Web in 60 seconds, "Storing Objects in the Session"
# (docs/web/howto/web-in-60/session-store.rst), the complete example, ported by the README's
# mapping: twisted.web.X -> hive.X, twisted.python.components -> hive.components. The
# rpy-only cache() call is gone: a module is imported once. Run: hive run
# session_store:resource

from zope.interface import Interface, Attribute, implementer
from hive.components import registerAdapter
from hive.server import Session
from hive.resource import Resource


class ICounter(Interface):
    value = Attribute("An int value which counts up once per page view.")


@implementer(ICounter)
class Counter(object):
    def __init__(self, session):
        self.value = 0


registerAdapter(Counter, Session, ICounter)


class CounterResource(Resource):
    def render_GET(self, request):
        session = request.getSession()
        counter = ICounter(session)
        counter.value += 1
        return (
            b"<!DOCTYPE html><html><head><meta charset='utf-8'>"
            b"<title></title></head><body>"
            b"Visit #" + str(counter.value).encode("utf-8") + b" for you!"
        )


resource = CounterResource()
