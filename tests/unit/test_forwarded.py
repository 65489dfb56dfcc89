"""Trusted proxy headers."""

from __future__ import annotations

import pytest

from hive._forwarded import (
    Hop,
    Origin,
    TrustedProxies,
    forwarded_hops,
    split_host,
    x_forwarded_hops,
)
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


# -- RFC 7239 Forwarded, X-Forwarded-Host and -Prefix ------------------------------------------


def test_forwarded_elements_and_quoting() -> None:
    hops = forwarded_hops(
        [
            b'for=192.0.2.60;proto=http;by=203.0.113.43, for="[2001:db8:cafe::17]:4711"',
            b'For="_gazonk";Proto=HTTPS;Host="example.org:8443", for=unknown',
        ]
    )
    assert hops == [
        Hop("192.0.2.60", "http", None),
        Hop("2001:db8:cafe::17"),
        Hop(None, "https", "example.org:8443"),
        Hop(None),
    ]


@pytest.mark.parametrize(
    "value",
    [
        b"for",  # no value
        b"for=1.2.3.4;for=5.6.7.8",  # a parameter twice in one element
        b'for="1.2.3.4',  # an open quote
        b"for=1.2.3.4 x",  # junk after a value
        b"=1.2.3.4",
    ],
)
def test_a_malformed_element_is_a_hop_that_says_nothing(value: bytes) -> None:
    assert forwarded_hops([value]) == [Hop(None)]


def test_hosts_and_prefixes_are_checked() -> None:
    hops = x_forwarded_hops([b"203.0.113.9"], [b"https"], [b"bad host"], [b"/app/"])
    assert hops == [Hop("203.0.113.9", "https", None, "/app")]
    assert x_forwarded_hops([b"1.2.3.4"], None, [b"example.org:99999"], [b"app"])[0] == Hop(
        "1.2.3.4"
    )
    assert split_host("[2001:db8::1]:8443") == ("2001:db8::1", 8443)
    assert split_host("example.org") == ("example.org", None)


def test_the_walk_stops_at_the_first_untrusted_address_and_takes_its_hops_word() -> None:
    proxies = TrustedProxies(["10.0.0.0/8"])
    hops = forwarded_hops(
        [
            b"for=6.6.6.6;proto=http;host=evil.example, for=203.0.113.9;proto=https;host=a.example",
            b"for=10.0.0.2;proto=http;host=inner",
        ]
    )
    origin = proxies.origin("10.0.0.1", hops)
    assert origin == Origin("203.0.113.9", "https", "a.example")
    # From an untrusted peer nothing is believed.
    assert proxies.origin("192.0.2.1", hops) == Origin("192.0.2.1")
    # An unknown hop ends the walk at the proxy that wrote it.
    unknown = forwarded_hops([b"for=unknown;proto=https, for=10.0.0.2"])
    assert proxies.origin("10.0.0.1", unknown) == Origin("10.0.0.2", "https")


def test_the_last_x_forwarded_proto_counts() -> None:
    # A proxy that appends leaves the client's own value first: it is not believed.
    hops = x_forwarded_hops([b"203.0.113.9"], [b"https, http"], None, None)
    assert TrustedProxies(["10.0.0.0/8"]).origin("10.0.0.1", hops).scheme == "http"


class Links(Resource):
    isLeaf = True

    def render_GET(self, request: Request) -> bytes:
        return b" ".join(
            [
                request.getClientIP().encode(),  # type: ignore[union-attr]
                b"%d" % request.isSecure(),
                request.getRequestHostname(),
                b"%d" % request.getHost().port,  # type: ignore[union-attr]
                request.prePathURL(),
                request.URLPath().child(b"next").__str__().encode(),
            ]
        )


def proxied(headers: dict[str, str], trusted: str = "192.0.2.0/24") -> bytes:
    root = Resource()
    root.putChild(b"page", Links())
    site = Site(root)
    site.trusted_proxies = TrustedProxies([trusted])
    return Harness(site).get("/page", headers).body


def test_forwarded_header_feeds_every_link() -> None:
    body = proxied({"Forwarded": 'for=203.0.113.9;proto=https;host="example.org"'})
    assert body == (
        b"203.0.113.9 1 example.org 443 https://example.org/page https://example.org/page/next"
    )


def test_x_forwarded_host_and_prefix_put_the_site_under_the_proxys_path() -> None:
    headers = {
        "X-Forwarded-For": "203.0.113.9",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "example.org:8443",
        "X-Forwarded-Prefix": "/app",
    }
    assert proxied(headers) == (
        b"203.0.113.9 1 example.org 8443 https://example.org:8443/app/page"
        b" https://example.org:8443/app/page/next"
    )


def test_forwarded_wins_over_x_forwarded() -> None:
    headers = {"Forwarded": "for=203.0.113.9", "X-Forwarded-For": "198.51.100.1"}
    assert proxied(headers).startswith(b"203.0.113.9 0 example.com 8080 ")


def test_untrusted_forwarded_host_is_ignored() -> None:
    body = proxied({"Forwarded": "for=1.2.3.4;host=evil.example"}, trusted="10.0.0.0/8")
    assert body.startswith(b"192.0.2.7 0 example.com 8080 http://example.com:8080/page")


def test_x_forwarded_proto_alone_is_believed_from_a_trusted_peer() -> None:
    hops = x_forwarded_hops(None, [b"https"], None, None)
    assert TrustedProxies(["10.0.0.0/8"]).origin("10.0.0.1", hops) == Origin("10.0.0.1", "https")
    assert x_forwarded_hops(None, None, None, None) == []
