# docs/web/examples/web.py, ported: twisted.web -> hive; the reactor lines removed.
# Run: hive run web:site --bind 127.0.0.1:1999
# Copyright (c) Twisted Matrix Laboratories.
# See LICENSE for details.

"""
This demonstrates a web server which can run behind a name-based virtual hosting
reverse proxy.  It decodes modified URLs like:

    host:port/vhost/http/external-host:port/

and dispatches the request as if it had been received on the given protocol,
external host, and port.

Usage:
    python web.py
"""

from hive import script, server, static, twcgi, vhost

root = static.File("static")
root.processors = {
    ".cgi": twcgi.CGIScript,
    ".epy": script.PythonScript,
    ".rpy": script.ResourceScript,
}
root.putChild(b"vhost", vhost.VHostMonsterResource())
site = server.Site(root)
