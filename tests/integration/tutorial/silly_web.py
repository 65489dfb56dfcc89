# docs/web/examples/silly-web.py, ported: twisted.web -> hive; the Site's reactor lines removed.
# hive has no distrib (see the README): this fails at its import.
# Copyright (c) Twisted Matrix Laboratories.
# See LICENSE for details.

"""
This shows an example of a bare-bones distributed web set up.  The "master" and
"slave" parts will usually be in different files -- they are here together only
for brevity of illustration.  In normal usage they would each run in a separate
process.

Usage:
    $ python silly-web.py

Then visit http://localhost:19988/.
"""

from twisted.internet import reactor
from twisted.spread import pb
from hive import distrib, server, static

# The "master" server
site = server.Site(distrib.ResourceSubscription("unix", ".rp"))

# The "slave" server
fact = pb.PBServerFactory(distrib.ResourcePublisher(server.Site(static.File("static"))))

reactor.listenUNIX("./.rp", fact)
