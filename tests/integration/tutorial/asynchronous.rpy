# Twisted Web in 60 seconds: "Asynchronous Responses" (asynchronous.rst).
# Run: hive run --path DIR --scripts
from hive.resource import Resource
from hive.server import NOT_DONE_YET
from twisted.internet import reactor

class DelayedResource(Resource):
    def _delayedRender(self, request):
        request.write(b"<html><body>Sorry to keep you waiting.</body></html>")
        request.finish()

    def render_GET(self, request):
        reactor.callLater(5, self._delayedRender, request)
        return NOT_DONE_YET

resource = DelayedResource()
