# Twisted Web in 60 seconds: "WSGI" (wsgi.rst), its closing form: the application alone
# in foo.py, served by `twistd -n web --wsgi foo.application`.
# Run: hive run --wsgi wsgi_foo:application
def application(environ, start_response):
    start_response('200 OK', [('Content-type', 'text/plain')])
    return [b'Hello, world!']
