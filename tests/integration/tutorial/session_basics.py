# Twisted Web in 60 seconds, "Session Basics" (docs/web/howto/web-in-60/session-basics.rst),
# ported by the README's mapping (twisted.web.X -> hive.X). Run: hive run
# session_basics:resource

from hive.resource import Resource


class ShowSession(Resource):
    def render_GET(self, request):
        return b"Your session id is: " + request.getSession().uid


class ExpireSession(Resource):
    def render_GET(self, request):
        request.getSession().expire()
        return b"Your session has been expired."


resource = ShowSession()
resource.putChild(b"expire", ExpireSession())
