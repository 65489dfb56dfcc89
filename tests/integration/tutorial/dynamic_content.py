# Twisted Web in 60 seconds: "Generating a Page Dynamically" (dynamic-content.rst).
# Run: hive run dynamic_content:factory --bind 127.0.0.1:8880
from hive.server import Site
from hive.resource import Resource
import time

class ClockPage(Resource):
    isLeaf = True
    def render_GET(self, request):
        return (b"<!DOCTYPE html><html><head><meta charset='utf-8'>"
                b"<title></title></head><body>" + time.ctime().encode('utf-8'))

resource = ClockPage()
factory = Site(resource)
