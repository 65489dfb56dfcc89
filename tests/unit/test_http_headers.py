from __future__ import annotations

from typing import Any

import pytest

from hive.http_headers import Headers, _canonical_name


def test_names_are_case_insensitive() -> None:
    headers = Headers()
    headers.setRawHeaders(b"Content-Type", [b"text/html"])
    assert headers.hasHeader(b"content-type")
    assert headers.hasHeader(b"CONTENT-TYPE")
    assert headers.hasHeader("Content-type")
    assert headers.getRawHeaders(b"CoNtEnT-TyPe") == [b"text/html"]
    headers.removeHeader("CONTENT-TYPE")
    assert not headers.hasHeader(b"content-type")


def test_constructor_takes_mapping_of_bytes_and_str() -> None:
    headers = Headers({b"X-A": [b"1", b"2"], "X-B": ["three"]})  # type: ignore[arg-type]
    assert headers.getRawHeaders(b"x-a") == [b"1", b"2"]
    assert headers.getRawHeaders(b"x-b") == [b"three"]


def test_get_missing_returns_default() -> None:
    headers = Headers()
    assert headers.getRawHeaders(b"x-missing") is None
    sentinel = object()
    assert headers.getRawHeaders(b"x-missing", sentinel) is sentinel
    assert headers.getRawHeaders("x-missing", ["d"]) == ["d"]


def test_empty_value_list_counts_as_present_but_returns_default() -> None:
    headers = Headers()
    headers.setRawHeaders(b"x-empty", [])
    assert headers.hasHeader(b"x-empty")
    assert headers.getRawHeaders(b"x-empty", b"default") == b"default"


def test_str_name_returns_str_values_and_bytes_name_returns_bytes() -> None:
    headers = Headers()
    headers.setRawHeaders("X-Greeting", ["h\u00e9llo"])
    assert headers.getRawHeaders("x-greeting") == ["h\u00e9llo"]
    assert headers.getRawHeaders(b"x-greeting") == ["h\u00e9llo".encode()]


def test_str_name_with_non_utf8_value_raises_on_decode() -> None:
    headers = Headers({b"x-bin": [b"\xff"]})
    with pytest.raises(UnicodeDecodeError):
        headers.getRawHeaders("x-bin")


def test_add_raw_header_appends_in_order() -> None:
    headers = Headers()
    headers.addRawHeader(b"Set-Cookie", b"a=1")
    headers.addRawHeader("set-cookie", "b=2")
    assert headers.getRawHeaders(b"set-cookie") == [b"a=1", b"b=2"]


def test_set_raw_headers_replaces() -> None:
    headers = Headers({b"x-a": [b"1", b"2"]})
    headers.setRawHeaders(b"X-A", [b"3"])
    assert headers.getRawHeaders(b"x-a") == [b"3"]


def test_returned_lists_do_not_alias_storage() -> None:
    headers = Headers({b"x-a": [b"1"]})
    values = headers.getRawHeaders(b"x-a")
    assert values is not None
    values.append(b"evil\r\n")
    for _name, all_values in headers.getAllRawHeaders():
        all_values.append(b"evil\r\n")
    assert headers.getRawHeaders(b"x-a") == [b"1"]


def test_remove_absent_header_is_silent() -> None:
    headers = Headers()
    headers.removeHeader(b"x-nothing")
    assert not headers.hasHeader(b"x-nothing")


@pytest.mark.parametrize("bad", [b"a\rb", b"a\nb", b"a\r\nInjected: 1", b"a\x00b", "a\nb"])
def test_values_with_cr_lf_nul_are_refused(bad: bytes | str) -> None:
    headers = Headers()
    with pytest.raises(ValueError, match="x-bad"):
        headers.setRawHeaders(b"x-bad", [b"fine", bad])
    assert not headers.hasHeader(b"x-bad")
    with pytest.raises(ValueError, match="x-bad"):
        headers.addRawHeader(b"x-bad", bad)
    assert not headers.hasHeader(b"x-bad")
    with pytest.raises(ValueError, match="x-bad"):
        Headers({b"x-bad": [bad]})


def test_refused_set_leaves_previous_values() -> None:
    headers = Headers({b"x-a": [b"old"]})
    with pytest.raises(ValueError):
        headers.setRawHeaders(b"x-a", [b"new", b"bad\n"])
    assert headers.getRawHeaders(b"x-a") == [b"old"]


@pytest.mark.parametrize(
    "bad",
    [b"", b"Bad Name", b"bad:name", b"bad\r\nname", b"caf\xe9", "caf\u00e9", "\u2603", b"a(b)"],
)
def test_non_token_names_are_refused(bad: bytes | str) -> None:
    headers = Headers()
    with pytest.raises(ValueError, match="not an RFC 9110 token"):
        headers.setRawHeaders(bad, [b"v"])
    with pytest.raises(ValueError, match="not an RFC 9110 token"):
        headers.addRawHeader(bad, b"v")
    assert list(headers.getAllRawHeaders()) == []


def test_all_token_characters_are_accepted() -> None:
    name = b"!#$%&'*+-.^_`|~09azAZ"
    headers = Headers()
    headers.addRawHeader(name, b"v")
    assert headers.getRawHeaders(name.lower()) == [b"v"]


def test_wrong_types_are_refused() -> None:
    headers = Headers()
    loose: Any = headers
    with pytest.raises(TypeError):
        loose.setRawHeaders(b"x-a", b"not-a-list")
    with pytest.raises(TypeError):
        loose.setRawHeaders(b"x-a", "not-a-list")
    with pytest.raises(TypeError):
        loose.setRawHeaders(b"x-a", [1])
    with pytest.raises(TypeError):
        loose.addRawHeader(1, b"v")
    with pytest.raises(TypeError):
        loose.addRawHeader(b"x-a", None)
    assert not headers.hasHeader(b"x-a")


@pytest.mark.parametrize(
    ("lower", "canonical"),
    [
        (b"content-type", b"Content-Type"),
        (b"www-authenticate", b"WWW-Authenticate"),
        (b"etag", b"ETag"),
        (b"content-md5", b"Content-MD5"),
        (b"dnt", b"DNT"),
        (b"te", b"TE"),
        (b"p3p", b"P3P"),
        (b"x-xss-protection", b"X-XSS-Protection"),
        (b"content-security-policy", b"Content-Security-Policy"),
        (b"x-forwarded-for", b"X-Forwarded-For"),
        (b"host", b"Host"),
    ],
)
def test_canonical_names(lower: bytes, canonical: bytes) -> None:
    assert _canonical_name(lower) == canonical
    headers = Headers()
    headers.setRawHeaders(lower.upper(), [b"v"])
    assert list(headers.getAllRawHeaders()) == [(canonical, [b"v"])]


def test_get_all_raw_headers_canonicalises_mixed_case_input() -> None:
    headers = Headers({b"cOnTeNt-TyPe": [b"a"], b"ETAG": [b'"x"']})
    assert dict(headers.getAllRawHeaders()) == {b"Content-Type": [b"a"], b"ETag": [b'"x"']}


def test_wire_items_preserve_insertion_order() -> None:
    headers = Headers()
    headers.addRawHeader(b"set-cookie", b"a=1")
    headers.addRawHeader(b"content-type", b"text/plain")
    headers.addRawHeader(b"set-cookie", b"b=2")
    assert headers._wire_items() == [
        (b"Set-Cookie", b"a=1"),
        (b"Set-Cookie", b"b=2"),
        (b"Content-Type", b"text/plain"),
    ]


def test_from_pairs_groups_values_by_name() -> None:
    headers = Headers._from_pairs([(b"host", b"a"), (b"accept", b"x"), (b"accept", b"y")])
    assert headers.getRawHeaders(b"Accept") == [b"x", b"y"]
    assert headers.getRawHeaders("host") == ["a"]
    assert headers == Headers({b"Host": [b"a"], b"Accept": [b"x", b"y"]})


def test_copy_is_independent() -> None:
    original = Headers({b"x-a": [b"1"]})
    duplicate = original.copy()
    assert duplicate == original
    duplicate.addRawHeader(b"x-a", b"2")
    duplicate.addRawHeader(b"x-b", b"3")
    assert original.getRawHeaders(b"x-a") == [b"1"]
    assert not original.hasHeader(b"x-b")
    assert duplicate != original


def test_equality() -> None:
    assert Headers({b"A": [b"1"], b"B": [b"2"]}) == Headers({b"b": [b"2"], b"a": [b"1"]})
    assert Headers({b"a": [b"1", b"2"]}) != Headers({b"a": [b"2", b"1"]})
    assert Headers() != {}
    assert Headers() == Headers()


def test_repr_shows_stored_headers() -> None:
    assert repr(Headers({b"X-A": [b"1"]})) == "Headers({b'x-a': [b'1']})"
