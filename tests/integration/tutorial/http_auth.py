# Twisted Web in 60 seconds, "HTTP Authentication" (docs/web/howto/web-in-60/http-auth.rst),
# the complete example, ported by the README's mapping: twisted.web.X -> hive.X,
# twisted.cred.X -> hive.cred.X. The rpy-only cache() call is gone: a module is imported
# once. Run: hive run http_auth:resource (FilePasswordDB reads ./httpd.password).
#
# On Twisted itself the str realm "localhost:8080" breaks every login (a TypeError where the
# realm is hashed); hive takes it as UTF-8.

from zope.interface import implementer

from hive.cred.portal import IRealm, Portal
from hive.cred.checkers import FilePasswordDB
from hive.static import File
from hive.resource import IResource
from hive.guard import HTTPAuthSessionWrapper, DigestCredentialFactory


@implementer(IRealm)
class PublicHTMLRealm(object):
    def requestAvatar(self, avatarId, mind, *interfaces):
        if IResource in interfaces:
            return (IResource, File("/home/%s/public_html" % (avatarId,)), lambda: None)
        raise NotImplementedError()


portal = Portal(PublicHTMLRealm(), [FilePasswordDB("httpd.password")])

credentialFactory = DigestCredentialFactory("md5", "localhost:8080")
resource = HTTPAuthSessionWrapper(portal, [credentialFactory])
