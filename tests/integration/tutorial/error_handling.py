# Twisted Web in 60 seconds: "Error Handling" (error-handling.rst).
# Run: hive run error_handling:factory --bind 127.0.0.1:8880
from hive.server import Site
from hive.resource import Resource
from hive.pages import notFound

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
        try:
            year = int(name)
        except ValueError:
            return notFound()
        else:
            return YearPage(year)

root = Calendar()
factory = Site(root)
