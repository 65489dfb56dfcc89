# Twisted Web in 60 seconds: "Access Logging" (access-logging.rst).
# Run: hive run access_logging:factory --bind 127.0.0.1:8888
from hive.http import proxiedLogFormatter
from hive.server import Site
from hive.static import File

resource = File('/tmp')
factory = Site(resource, logPath=b"/tmp/access-logging-demo.log", logFormatter=proxiedLogFormatter)
