# Twisted Web in 60 seconds: "Dynamic URL Dispatch" (dynamic-dispatch.rst).
# Run: hive run dynamic_dispatch:factory --bind 127.0.0.1:8880
from hive.server import Site
from hive.resource import Resource

from calendar import calendar

class YearPage(Resource):
    def __init__(self, year):
        Resource.__init__(self)
        self.year = year

    def render_GET(self, request):
        cal = calendar(self.year)
        return (b"<!DOCTYPE html><html><head><meta charset='utf-8'>"
                b"<title></title></head><body><pre>" + cal.encode('utf-8') + b"</pre>")

class Calendar(Resource):
  def getChild(self, name, request):
      return YearPage(int(name))

root = Calendar()
factory = Site(root)
