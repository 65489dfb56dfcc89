"""hive.util (redirects) and hive.vhost (NameVirtualHost)."""

from __future__ import annotations

import pytest

from hive.resource import Resource
from hive.server import Request
from hive.util import ParentRedirect, Redirect, redirectTo
from hive.vhost import NameVirtualHost, VHostMonsterResource, host_of
from tests.unit.harness import Harness, Held, Response


class Text(Resource):
    isLeaf = True

    def __init__(self, text: bytes) -> None:
        super().__init__()
        self.text = text

    def render_GET(self, request: Request) -> bytes:
        return self.text + b" " + b"/".join(request.postpath)


class Branch(Resource):
    """A non-leaf with children, to check traversal through a virtual host."""

    def __init__(self, name: bytes) -> None:
        super().__init__()
        self.putChild(b"page", Text(name + b" page"))
        self.putChild(b"", Text(b"branch root"))


def get(resource: Resource, target: str, host: str | None = "example.com") -> Response:
    harness = Harness(resource)
    lines = [f"GET {target} HTTP/1.0"]  # HTTP/1.0: the Host header may be left out
    if host is not None:
        lines.append(f"Host: {host}")
    harness.send(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    return harness.response()


# -- redirects ----------------------------------------------------------------------------


def test_redirect_to() -> None:
    held = Held()
    harness = Harness(held)
    harness.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    (request,) = held.requests
    body = redirectTo(b"/elsewhere?a=1&b=2", request)
    assert request.code == 302
    assert request.responseHeaders.getRawHeaders(b"location") == [b"/elsewhere?a=1&b=2"]
    assert request.responseHeaders.getRawHeaders(b"content-type") == [b"text/html; charset=utf-8"]
    assert b'content="0;URL=/elsewhere?a=1&amp;b=2"' in body
    assert b'href="/elsewhere?a=1&amp;b=2"' in body


@pytest.mark.parametrize(
    "url",
    [
        b'/x"><script>alert(1)</script>',
        b"/x'><img src=x onerror=alert(1)>",
        b'javascript:alert(1)//"<b>',
    ],
)
def test_redirect_to_escapes_the_url(url: bytes) -> None:
    held = Held()
    harness = Harness(held)
    harness.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    body = redirectTo(url, held.requests[0])
    plain = redirectTo(b"/plain", held.requests[0])
    assert b"<script>" not in body and b"<img" not in body and b"<b>" not in body
    # Every attribute value stays one attribute value: no quote of the URL survives.
    assert body.count(b'"') == plain.count(b'"') and b"'" not in body


def test_redirect_to_refuses_str_and_header_injection() -> None:
    held = Held()
    harness = Harness(held)
    harness.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    with pytest.raises(TypeError):
        redirectTo("/str", held.requests[0])  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        redirectTo(b"/x\r\nSet-Cookie: a=b", held.requests[0])


def test_redirect_resource_answers_every_path_and_method() -> None:
    root = Resource()
    root.putChild(b"old", Redirect(b"/new"))
    for method, target in [("GET", "/old"), ("GET", "/old/deeper/still"), ("POST", "/old")]:
        response = Harness(root).get(target, method=method)
        assert response.status == 302, (method, target)
        assert response.header("Location") == "/new"
        assert b'href="/new"' in response.body


def test_parent_redirect() -> None:
    response = Harness(ParentRedirect()).get("/foo/bar?baz")
    assert response.status == 302
    assert response.header("Location") == "http://example.com:8080/"
    root = Resource()
    root.putChild(b"foo", ParentRedirect())
    nested = Harness(root).get("/foo/bar?baz")
    assert nested.header("Location") == "http://example.com:8080/"


# -- virtual hosts ------------------------------------------------------------------------


def vhosts() -> NameVirtualHost:
    hosts = NameVirtualHost()
    hosts.addHost(b"one.example", Text(b"one"))
    hosts.addHost(b"Two.Example", Branch(b"two"))
    return hosts


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("one.example", b"one"),
        ("ONE.EXAMPLE", b"one"),
        ("one.example:8080", b"one"),
        ("one.example.", b"one"),
        ("One.Example.:80", b"one"),
    ],
)
def test_host_matching(host: str, expected: bytes) -> None:
    response = get(vhosts(), "/a/b", host)
    assert response.status == 200
    assert response.body == expected + b" a/b"  # a leaf sees the whole path


def test_non_leaf_host_is_traversed() -> None:
    assert get(vhosts(), "/page", "two.example").body == b"two page "
    assert get(vhosts(), "/", "TWO.example").body == b"branch root "
    assert get(vhosts(), "/nothing", "two.example").status == 404


def test_unknown_host_is_404_with_the_name_escaped() -> None:
    response = get(vhosts(), "/", "a&b'c.example")
    assert response.status == 404
    assert b"a&amp;b&#x27;c.example" in response.body
    assert b"a&b'c" not in response.body


def test_missing_host_and_default() -> None:
    hosts = vhosts()
    assert get(hosts, "/", None).status == 404
    hosts.default = Text(b"default")
    assert get(hosts, "/x", None).body == b"default x"
    assert get(hosts, "/x", "three.example").body == b"default x"
    assert get(hosts, "/x", "one.example").body == b"one x"


def test_remove_host() -> None:
    hosts = vhosts()
    hosts.removeHost(b"ONE.example")
    assert get(hosts, "/", "one.example").status == 404
    with pytest.raises(KeyError):
        hosts.removeHost(b"one.example")


def test_ipv6_literal_host() -> None:
    hosts = NameVirtualHost()
    hosts.addHost(b"[::1]", Text(b"six"))
    assert get(hosts, "/", "[::1]:8080").body == b"six "
    assert get(hosts, "/", "[::1]").body == b"six "


@pytest.mark.parametrize(
    ("header", "host"),
    [
        (b"Example.com", b"example.com"),
        (b"example.com:443", b"example.com"),
        (b"example.com.", b"example.com"),
        (b"[2001:db8::1]:80", b"[2001:db8::1]"),
        (b" spaced ", b"spaced"),
    ],
)
def test_host_of(header: bytes, host: bytes) -> None:
    assert host_of(header) == host


def test_a_vhost_in_a_tree() -> None:
    root = Resource()
    root.putChild(b"site", vhosts())
    assert get(root, "/site/page", "two.example").body == b"two page "


# -- VHostMonsterResource ---------------------------------------------------------------------


class Where(Resource):
    """Shows what the request says of itself, at any path."""

    isLeaf = True

    def render_GET(self, request: Request) -> bytes:
        host = request.getHost()
        return b" ".join(
            [
                request.prePathURL(),
                request.uri,
                request.path,
                request.getHeader(b"host") or b"-",
                b"%d" % getattr(host, "port", 0),
                b"secure" if request.isSecure() else b"plain",
            ]
        )


def monster_site() -> Resource:
    root = Resource()
    root.putChild(b"vhost", VHostMonsterResource())
    root.putChild(b"app", Where())
    return root


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (
            "/vhost/https/example.org:8443/app/x?q=1",
            b"https://example.org:8443/app /app/x?q=1 /app/x example.org:8443 8443 secure",
        ),
        (
            "/vhost/http/example.org/app",
            b"http://example.org/app /app /app example.org 80 plain",
        ),
        (
            "/vhost/https/example.org/app",
            b"https://example.org/app /app /app example.org 443 secure",
        ),
        (
            "/vhost/http/%5B::1%5D:8080/app",
            b"http://[::1]:8080/app /app /app [::1]:8080 8080 plain",
        ),
    ],
)
def test_vhost_monster_serves_from_the_root_as_the_proxy_says(target: str, expected: bytes) -> None:
    assert Harness(monster_site()).get(target).body == expected


def test_vhost_monster_refuses_what_it_cannot_read() -> None:
    harness = Harness(monster_site())
    assert harness.get("/vhost/gopher/example.org/app").status == 404
    assert harness.get("/vhost/http/example.org:http/app").status == 400
    assert harness.get("/vhost/http/example.org:99999/app").status == 400
    assert harness.get("/vhost/http/:80/app").status == 400
