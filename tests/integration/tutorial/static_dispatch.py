# Twisted Web in 60 seconds: "Static URL Dispatch" (static-dispatch.rst).
# Run: hive run static_dispatch:factory --bind 127.0.0.1:8880
from hive.server import Site
from hive.resource import Resource
from hive.static import File

root = Resource()
root.putChild(b"foo", File("/tmp"))
root.putChild(b"bar", File("/lost+found"))
root.putChild(b"baz", File("/opt"))
factory = Site(root)
