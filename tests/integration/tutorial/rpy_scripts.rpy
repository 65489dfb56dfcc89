# Twisted Web in 60 seconds: "rpy scripts" (rpy-scripts.rst), saved as example.rpy.
# Run: hive run --path DIR --scripts   (twistd -n web --path DIR)
import time

from hive.resource import Resource

class ClockPage(Resource):
    isLeaf = True
    def render_GET(self, request):
        return (b"<!DOCTYPE html><html><head><meta charset='utf-8'>"
                b"<title></title></head><body>" + time.ctime().encode('utf-8'))

resource = ClockPage()
