# Twisted Web in 60 seconds, "Session Endings" (docs/web/howto/web-in-60/session-endings.rst),
# the complete example, ported by the README's mapping: twisted.web.X -> hive.X, and the
# endpoint and reactor.run() lines become the command: hive run session_endings:factory
# --bind 127.0.0.1:8080.
#
# On Twisted itself the session is never refreshed by its cookie (the first lookup in a
# request does not touch it), so "keep visiting it to keep your session active" does not
# hold there; hive extends a session at every use.

from hive.server import Site, Session
from hive.resource import Resource


class ShortSession(Session):
    sessionTimeout = 5


class ExpirationLogger(Resource):
    sessions = set()

    def render_GET(self, request):
        session = request.getSession()
        if session.uid not in self.sessions:
            self.sessions.add(session.uid)
            session.notifyOnExpire(lambda: self._expired(session.uid))
        return ""

    def _expired(self, uid):
        print("Session", uid, "has expired.")
        self.sessions.remove(uid)


rootResource = Resource()
rootResource.putChild(b"logme", ExpirationLogger())
factory = Site(rootResource)
factory.sessionFactory = ShortSession
