# docs/web/examples/reverse-proxy.py, ported: twisted.web -> hive; the reactor lines removed.
# Run: hive run reverse_proxy:site --bind 127.0.0.1:8080
# (the tests put a local peer in place of example.com:80)
# Copyright (c) Twisted Matrix Laboratories.
# See LICENSE for details.

"""
This example demonstrates how to run a reverse proxy.

Run this example with:
    $ python reverse-proxy.py

Then visit http://localhost:8080/ in your web browser.
"""

from hive import proxy, server

site = server.Site(proxy.ReverseProxyResource("example.com", 80, b""))