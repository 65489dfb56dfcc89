# Twisted Web in 60 seconds: "Asynchronous Responses (via Deferred)" (asynchronous-deferred.rst).
# Run: hive run --path DIR --scripts
from twisted.internet.task import deferLater
from hive.resource import Resource
from hive.server import NOT_DONE_YET
from twisted.internet import reactor

class DelayedResource(Resource):
    def _delayedRender(self, request):
        request.write(b"<html><body>Sorry to keep you waiting.</body></html>")
        request.finish()

    def render_GET(self, request):
        d = deferLater(reactor, 5, lambda: request)
        d.addCallback(self._delayedRender)
        return NOT_DONE_YET

resource = DelayedResource()
