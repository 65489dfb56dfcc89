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
    # The Host the proxy passed on (example.com) names the site, on the scheme's port: the
    # port hive listens on (8080) is the proxy's business, not the client's.
    assert body == b"203.0.113.9 1 https://example.com/"


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
    assert proxied(headers).startswith(b"203.0.113.9 0 example.com 80 ")


def test_untrusted_forwarded_host_is_ignored() -> None:
    body = proxied({"Forwarded": "for=1.2.3.4;host=evil.example"}, trusted="10.0.0.0/8")
    assert body.startswith(b"192.0.2.7 0 example.com 8080 http://example.com:8080/page")


def test_x_forwarded_proto_alone_is_believed_from_a_trusted_peer() -> None:
    hops = x_forwarded_hops(None, [b"https"], None, None)
    assert TrustedProxies(["10.0.0.0/8"]).origin("10.0.0.1", hops) == Origin("10.0.0.1", "https")
    assert x_forwarded_hops(None, None, None, None) == []


# -- the Host a trusted proxy passes on, the client's port, --root-path, setHost --------------


def test_a_trusted_proxys_host_names_the_site_on_the_schemes_port() -> None:
    # nginx's usual lines: Host $host and X-Forwarded-Proto, no X-Forwarded-Host.
    body = proxied({"X-Forwarded-Proto": "https"})
    assert (
        body
        == b"192.0.2.7 1 example.com 443 https://example.com/page https://example.com/page/next"
    )
    site = Site(Links())
    site.trusted_proxies = TrustedProxies(["192.0.2.0/24"])
    harness = Harness(site)
    harness.send(b"GET / HTTP/1.1\r\nHost: example.com:8443\r\nX-Forwarded-Proto: https\r\n\r\n")
    assert b" 8443 https://example.com:8443/ " in harness.response().body


def test_the_clients_port_is_not_the_proxys() -> None:
    class Port(Resource):
        isLeaf = True

        def render_GET(self, request: Request) -> bytes:
            return b"%d" % request.getClientAddress().port  # type: ignore[union-attr]

    site = Site(Port())
    site.trusted_proxies = TrustedProxies(["192.0.2.0/24"])
    assert Harness(site).get("/", {"X-Forwarded-For": "203.0.113.9"}).body == b"0"
    assert Harness(site).get("/").body == b"5555"  # the peer's own, when it is the client


def test_x_forwarded_prefix_goes_with_the_forwarded_header() -> None:
    headers = {
        "Forwarded": 'for=203.0.113.9;proto=https;host="example.org"',
        "X-Forwarded-Prefix": "/app",
    }
    assert proxied(headers).endswith(
        b" https://example.org/app/page https://example.org/app/page/next"
    )
    assert forwarded_hops([b"for=1.2.3.4"], [b"/a, /b/"]) == [Hop("1.2.3.4", prefix="/b")]


def rooted(headers: dict[str, str], root_path: str | None, trusted: str = "192.0.2.0/24") -> bytes:
    root = Resource()
    root.putChild(b"page", Links())
    site = Site(root)
    site.trusted_proxies = TrustedProxies([trusted])
    site.root_path = root_path
    return Harness(site).get("/page", headers).body


def test_root_path_is_the_prefix_of_requests_from_trusted_proxies() -> None:
    assert rooted({}, "/app/").endswith(
        b" http://example.com/app/page http://example.com/app/page/next"
    )
    # A claimed prefix is not the proxy's when the prefix is configured.
    assert b" http://example.com/app/page " in rooted({"X-Forwarded-Prefix": "/evil"}, "/app")
    assert b" http://example.com/evil/page " in rooted({"X-Forwarded-Prefix": "/evil"}, None)
    # Anyone else reached the site at its root.
    untrusted = rooted({"X-Forwarded-Prefix": "/evil"}, "/app", trusted="10.0.0.0/8")
    assert untrusted.endswith(b" http://example.com:8080/page http://example.com:8080/page/next")


def test_root_path_values() -> None:
    site = Site(Resource())
    site.root_path = "/my%20app/v1/"
    assert site._root_prepath == [b"my app", b"v1"] and site.root_path == "/my%20app/v1"
    for none in (None, "", "/"):
        site.root_path = none
        assert site.root_path is None
    for bad in ("app", "/a?b", "/a#b", "/a b"):
        with pytest.raises(ValueError, match="root_path"):
            site.root_path = bad


def test_root_path_setting() -> None:
    from hive._config import Config, ConfigError
    from hive.worker.main import load_site

    with pytest.raises(ConfigError, match="give forwarded_allow too"):
        Config(root_path="/app")
    with pytest.raises(ConfigError, match="must be a path prefix such as /app, got 'app'"):
        Config(root_path="app", forwarded_allow=("127.0.0.1",))
    site = load_site(
        Config(app="tests.services:root", root_path="/app/", forwarded_allow=("127.0.0.1",)),
        None,
    )
    assert site.root_path == "/app"


class Origin_(Resource):
    isLeaf = True

    def render_GET(self, request: Request) -> bytes:
        host = request.getHost()
        return b" ".join(
            [
                request.getHeader(b"host"),
                type(host).__name__.encode(),
                host.host.encode(),  # type: ignore[union-attr]
                b"%d" % host.port,  # type: ignore[union-attr]
                b"%d" % request.isSecure(),
                request.prePathURL(),
            ]
        )


@pytest.mark.parametrize(
    ("host", "port", "ssl", "seen"),
    [
        (
            b"example.org",
            443,
            True,
            b"example.org IPv4Address example.org 443 1 https://example.org/",
        ),
        # The scheme's own port is left out, not every well-known one (as Twisted).
        (
            b"example.org",
            443,
            False,
            b"example.org:443 IPv4Address example.org 443 0 http://example.org:443/",
        ),
        (
            b"example.org",
            8080,
            False,
            b"example.org:8080 IPv4Address example.org 8080 0 http://example.org:8080/",
        ),
        (
            b"[2001:db8::1]",
            8443,
            True,
            b"[2001:db8::1]:8443 IPv6Address 2001:db8::1 8443 1 https://[2001:db8::1]:8443/",
        ),
    ],
)
def test_set_host_and_forwarded_host_say_the_same(
    host: bytes, port: int, ssl: bool, seen: bytes
) -> None:
    class SetHost(Resource):
        def getChild(self, path: bytes, request: Request) -> Resource:  # type: ignore[override]
            request.setHost(host, port, ssl)
            return Origin_()

    assert Harness(SetHost()).get("/").body == seen
    # The same origin, said by a trusted proxy.
    site = Site(Origin_())
    site.trusted_proxies = TrustedProxies(["192.0.2.0/24"])
    authority = host.decode() + ("" if port == (443 if ssl else 80) else f":{port}")
    forwarded = f'for=203.0.113.9;proto={"https" if ssl else "http"};host="{authority}"'
    assert Harness(site).get("/", {"Forwarded": forwarded}).body == seen


def test_trust_verdicts_are_remembered_within_bounds() -> None:
    proxies = TrustedProxies(["10.0.0.0/8"])
    for n in range(3000):
        host = f"10.0.{n // 256}.{n % 256}" if n % 2 else f"192.0.2.{n % 256}"
        assert proxies.trusts(host) is bool(n % 2)
        assert proxies.trusts(host) is bool(n % 2)  # the remembered verdict
    assert 0 < len(proxies._verdicts) <= 1024
    assert proxies.trusts("not an address") is False
