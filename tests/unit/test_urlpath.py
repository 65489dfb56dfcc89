from __future__ import annotations

from typing import Any

import pytest

from hive.urlpath import URLPath

BASE = "http://example.com/foo/bar?yes=no&no=yes#footer"


@pytest.fixture
def path() -> URLPath:
    return URLPath.fromString(BASE)


def test_parts_are_bytes_and_str_is_the_url(path: URLPath) -> None:
    assert path.scheme == b"http"
    assert path.netloc == b"example.com"
    assert path.path == b"/foo/bar"
    assert path.query == b"yes=no&no=yes"
    assert path.fragment == b"footer"
    assert str(path) == BASE


def test_from_bytes_matches_from_string(path: URLPath) -> None:
    assert str(URLPath.fromBytes(BASE.encode())) == str(path)


def test_non_ascii_input_is_percent_encoded() -> None:
    assert str(URLPath.fromBytes(b"http://example.com/caf\xe9")) == "http://example.com/caf%E9"
    assert str(URLPath.fromString("http://example.com/caf\u00e9")) == (
        "http://example.com/caf%C3%A9"
    )


def test_wrong_input_types_raise_value_error() -> None:
    loose: Any = URLPath
    with pytest.raises(ValueError):
        loose.fromString(b"http://example.com/")
    with pytest.raises(ValueError):
        loose.fromBytes("http://example.com/")


def test_defaults() -> None:
    assert str(URLPath()) == "http://localhost/"
    assert URLPath.fromString("http://example.com").path == b"/"


def test_from_request_uses_pre_path_url() -> None:
    class FakeRequest:
        def prePathURL(self) -> bytes:
            return b"https://example.com:8443/app/page"

    url = URLPath.fromRequest(FakeRequest())
    assert url.scheme == b"https"
    assert url.netloc == b"example.com:8443"
    assert str(url.child(b"x")) == "https://example.com:8443/app/page/x"


def test_sibling(path: URLPath) -> None:
    assert str(path.sibling(b"baz")) == "http://example.com/foo/baz"
    assert str(path.sibling(b"baz", keepQuery=True)) == "http://example.com/foo/baz?yes=no&no=yes"
    assert str(URLPath.fromString("http://example.com/foo/").sibling(b"x")) == (
        "http://example.com/foo/x"
    )


def test_child(path: URLPath) -> None:
    assert str(path.child(b"hello")) == "http://example.com/foo/bar/hello"
    assert str(path.child(b"hello", keepQuery=True)) == (
        "http://example.com/foo/bar/hello?yes=no&no=yes"
    )
    assert str(URLPath.fromString("http://example.com/foo/").child(b"x")) == (
        "http://example.com/foo/x"
    )
    assert str(URLPath.fromString("http://example.com/").child(b"x")) == "http://example.com/x"


def test_child_segment_cannot_escape_its_segment(path: URLPath) -> None:
    assert str(path.child(b"a/b?c#d e")) == "http://example.com/foo/bar/a%2Fb%3Fc%23d%20e"
    assert str(path.child(b"a%20b")) == "http://example.com/foo/bar/a%20b"


def test_parent(path: URLPath) -> None:
    assert str(path.parent()) == "http://example.com/"
    assert str(path.parent(keepQuery=True)) == "http://example.com/?yes=no&no=yes"
    assert str(URLPath.fromString("http://example.com/a/b/c").parent()) == "http://example.com/a/"
    assert str(URLPath.fromString("http://example.com/a/b/").parent()) == "http://example.com/a/"
    assert str(URLPath.fromString("http://example.com/").parent()) == "http://example.com/"


def test_here(path: URLPath) -> None:
    assert str(path.here()) == "http://example.com/foo/"
    assert str(path.here(keepQuery=True)) == "http://example.com/foo/?yes=no&no=yes"
    assert str(URLPath.fromString("http://example.com/a/b/").here()) == "http://example.com/a/b/"


@pytest.mark.parametrize(
    ("href", "expected"),
    [
        (b"hello", "http://example.com/foo/hello"),
        (b"/hello", "http://example.com/hello"),
        (b"../hello", "http://example.com/hello"),
        (b"./", "http://example.com/foo/"),
        (b"?a=1", "http://example.com/foo/bar?a=1"),
        (b"#top", "http://example.com/foo/bar?yes=no&no=yes#top"),
        (b"https://other.example/x", "https://other.example/x"),
        (b"//other.example/x", "http://other.example/x"),
        (b"", BASE),
    ],
)
def test_click(path: URLPath, href: bytes, expected: str) -> None:
    assert str(path.click(href)) == expected


def test_operations_do_not_mutate(path: URLPath) -> None:
    path.child(b"x")
    path.parent()
    path.click(b"/y")
    assert str(path) == BASE


def test_path_list(path: URLPath) -> None:
    assert path.pathList() == [b"", b"foo", b"bar"]
    encoded = URLPath.fromString("http://example.com/a%20b/c")
    assert encoded.pathList() == [b"", b"a%20b", b"c"]
    assert encoded.pathList(unquote=True) == [b"", b"a b", b"c"]


def test_repr(path: URLPath) -> None:
    assert repr(path) == (
        "URLPath(scheme=b'http', netloc=b'example.com', path=b'/foo/bar', "
        "query=b'yes=no&no=yes', fragment=b'footer')"
    )
