"""Trusted proxy headers."""

from __future__ import annotations

import pytest

from hive._forwarded import TrustedProxies
from hive.resource import Resource
from hive.server import Request, Site
from tests.unit.harness import Harness


def test_untrusted_peer_is_the_client() -> None:
    proxies = TrustedProxies(["10.0.0.0/8"])
    assert proxies.client("192.0.2.7", [b"203.0.113.9"]) == "192.0.2.7"
    assert proxies.scheme("192.0.2.7", [b"https"]) is None


def test_rightmost_untrusted_hop_is_the_client() -> None:
    proxies = TrustedProxies(["10.0.0.0/8", "::1"])
    # A client may send its own X-Forwarded-For; only what trusted proxies added counts.
    chain = [b"6.6.6.6, 203.0.113.9", b"10.1.2.3"]
    assert proxies.client("10.0.0.1", chain) == "203.0.113.9"
    assert proxies.client("::1", [b"[2001:db8::5]:4711"]) == "2001:db8::5"
    assert proxies.client("10.0.0.1", [b"10.0.0.2"]) == "10.0.0.2"
    assert proxies.client("10.0.0.1", [b"unknown"]) == "10.0.0.1"


def test_any_and_bad_entries() -> None:
    assert TrustedProxies(["*"]).client("192.0.2.1", [b"198.51.100.1:80"]) == "198.51.100.1"
    assert not TrustedProxies([])
    with pytest.raises(ValueError, match="nope"):
        TrustedProxies(["nope"])


class Where(Resource):
    isLeaf = True

    def render_GET(self, request: Request) -> bytes:
        return b"%s %d %s" % (
            request.getClientIP().encode(),  # type: ignore[union-attr]
            request.isSecure(),
            request.prePathURL(),
        )


def test_request_uses_trusted_headers() -> None:
    site = Site(Where())
    site.trusted_proxies = TrustedProxies(["192.0.2.0/24"])
    headers = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
    body = Harness(site).get("/", headers).body
    assert body == b"203.0.113.9 1 https://example.com:8080/"


def test_request_ignores_headers_from_untrusted_peers() -> None:
    site = Site(Where())
    site.trusted_proxies = TrustedProxies(["10.0.0.0/8"])
    headers = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
    assert Harness(site).get("/", headers).body == b"192.0.2.7 0 http://example.com:8080/"
