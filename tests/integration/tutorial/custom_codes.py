# Twisted Web in 60 seconds: "Custom Response Codes" (custom-codes.rst).
# Run: hive run custom_codes:factory --bind 127.0.0.1:8880
from hive.server import Site
from hive.resource import Resource

class PaymentRequired(Resource):
    def render_GET(self, request):
        request.setResponseCode(402)
        return b"<html><body>Please swipe your credit card.</body></html>"

root = Resource()
root.putChild(b"buy", PaymentRequired())
factory = Site(root)
