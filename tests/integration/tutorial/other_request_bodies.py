# Twisted Web in 60 seconds: "Other Request Bodies" (other-request-bodies.rst).
# Run: hive run other_request_bodies:factory --bind 127.0.0.1:8880
from hive.server import Site
from hive.resource import Resource

import html

class FormPage(Resource):
    def render_GET(self, request):
        return (b"<!DOCTYPE html><html><head><meta charset='utf-8'>"
                b"<title></title></head><body>"
                b"<form method='POST'><input name='the-field'></form>")

    def render_POST(self, request):
        content = request.content.read().decode("utf-8")
        escapedContent = html.escape(content)
        return (b"<!DOCTYPE html><html><head><meta charset='utf-8'>"
                b"<title></title></head><body>"
                b"You submitted: " +
                escapedContent.encode("utf-8"))

root = Resource()
root.putChild(b"form", FormPage())
factory = Site(root)
