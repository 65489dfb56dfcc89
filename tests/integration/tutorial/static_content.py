# Twisted Web in 60 seconds: "Serving Static Content From a Directory" (static-content.rst).
# Mechanical mapping: twisted.web imports -> hive; the endpoint/reactor lines removed.
# Run: hive run static_content:factory --bind 127.0.0.1:8080
from hive.server import Site
from hive.static import File

resource = File('/tmp')
factory = Site(resource)
