# Copyright (c) Twisted Matrix Laboratories.
# See LICENSE for details.

# docs/web/examples/webguard.py, ported by the README's mapping: twisted.web.X -> hive.X,
# twisted.cred.X -> hive.cred.X; main() returns the Site that it gave reactor.listenTCP
# (hive logs by itself: log.startLogging goes). Run: hive run webguard:main
# --bind 127.0.0.1:8889

"""
This example shows how to make simple web authentication.

To run the example:
    $ hive run webguard:main --bind 127.0.0.1:8889

When you visit http://127.0.0.1:8889/, the page will ask for an username &
password. See the code in main() to get the correct username & password!
"""

from zope.interface import implementer

from hive.cred.checkers import InMemoryUsernamePasswordDatabaseDontUse
from hive.cred.portal import IRealm, Portal
from hive import guard, resource, server


class GuardedResource(resource.Resource):
    """
    A resource which is protected by guard and requires authentication in order
    to access.
    """

    def getChild(self, path, request):
        return self

    def render(self, request):
        return b"Authorized!"


@implementer(IRealm)
class SimpleRealm:
    """
    A realm which gives out L{GuardedResource} instances for authenticated
    users.
    """

    def requestAvatar(self, avatarId, mind, *interfaces):
        if resource.IResource in interfaces:
            return resource.IResource, GuardedResource(), lambda: None
        raise NotImplementedError()


def main():
    checkers = [InMemoryUsernamePasswordDatabaseDontUse(joe=b"blow")]
    wrapper = guard.HTTPAuthSessionWrapper(
        Portal(SimpleRealm(), checkers),
        [guard.DigestCredentialFactory("md5", b"example.com")],
    )
    return server.Site(resource=wrapper)
