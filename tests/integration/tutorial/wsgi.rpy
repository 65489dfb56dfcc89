# Twisted Web in 60 seconds: "WSGI" (wsgi.rst).
# Run: hive run --path DIR --scripts
from hive.wsgi import WSGIResource
from twisted.internet import reactor

def application(environ, start_response):
    start_response('200 OK', [('Content-type', 'text/plain')])
    return [b'Hello, world!']

resource = WSGIResource(reactor, reactor.getThreadPool(), application)
