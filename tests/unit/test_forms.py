"""Tests for hive._forms: query, form body, cookie and Basic auth parsing."""

from __future__ import annotations

import base64
import io
import tempfile
from urllib.parse import parse_qs

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from hive._forms import (
    FormError,
    FormPart,
    format_set_cookie,
    parse_basic_auth,
    parse_content_type,
    parse_cookies,
    parse_form,
    parse_multipart,
    parse_query,
)

BOUNDARY = b"----hiveBoundary7MA4YWxkTrZu0gW"
MULTIPART = b"multipart/form-data; boundary=" + BOUNDARY
ALL_BYTES = bytes(range(256))


class TrickleIO(io.BytesIO):
    """Returns at most ``step`` bytes per read, to split delimiters across reads."""

    def __init__(self, data: bytes, step: int) -> None:
        super().__init__(data)
        self.step = step

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0 or size > self.step:
            size = self.step
        return super().read(size)


def part(name: bytes, value: bytes, *headers: bytes, filename: bytes | None = None) -> bytes:
    disposition = b'Content-Disposition: form-data; name="' + name + b'"'
    if filename is not None:
        disposition += b'; filename="' + filename + b'"'
    lines = [b"--" + BOUNDARY, disposition, *headers, b"", value]
    return b"\r\n".join(lines) + b"\r\n"


def multipart(*parts: bytes, boundary: bytes = BOUNDARY) -> bytes:
    return b"".join(parts) + b"--" + boundary + b"--\r\n"


def form(content_type: bytes | None, body: bytes, **limits: int) -> dict[bytes, list[bytes]]:
    return parse_form(content_type, io.BytesIO(body), **limits)


# --- parse_query ---------------------------------------------------------------------


def test_query_empty_returns_fresh_dict() -> None:
    first = parse_query(b"")
    first[b"x"] = [b"y"]
    assert parse_query(b"") == {}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (b"a=1", {b"a": [b"1"]}),
        (b"a=1&a=2&b=3&a=4", {b"a": [b"1", b"2", b"4"], b"b": [b"3"]}),
        (b"a=&b", {b"a": [b""], b"b": [b""]}),
        (b"=v", {b"": [b"v"]}),
        (b"&&a=1&&", {b"a": [b"1"]}),
        (b"a=b=c", {b"a": [b"b=c"]}),
        (b"q=hello+world&x=%2B+%20", {b"q": [b"hello world"], b"x": [b"+  "]}),
        (b"n%61me=%E2%82%AC", {b"name": ["\u20ac".encode()]}),
        (b"raw=%ff%00", {b"raw": [b"\xff\x00"]}),
        (b"bad=%zz%4&pct=%&t=%4g", {b"bad": [b"%zz%4"], b"pct": [b"%"], b"t": [b"%4g"]}),
        (b"a=1;b=2", {b"a": [b"1;b=2"]}),
        (b"x=\xe9t\xe9", {b"x": [b"\xe9t\xe9"]}),
    ],
)
def test_query_cases(query: bytes, expected: dict[bytes, list[bytes]]) -> None:
    assert parse_query(query) == expected


def _oracle(query: bytes) -> dict[bytes, list[bytes]]:
    # latin-1 maps bytes to code points one to one, so parse_qs becomes a bytes parser.
    text = parse_qs(query.decode("latin-1"), keep_blank_values=True, encoding="latin-1")
    return {k.encode("latin-1"): [v.encode("latin-1") for v in vs] for k, vs in text.items()}


@given(st.lists(st.sampled_from([b"a", b"b", b"=", b"&", b"+", b"%", b"4", b"1", b"\xff"])))
def test_query_matches_parse_qs(pieces: list[bytes]) -> None:
    query = b"".join(pieces)
    assert parse_query(query) == _oracle(query)


@given(st.binary(max_size=60))
def test_query_matches_parse_qs_on_any_bytes(query: bytes) -> None:
    assert parse_query(query) == _oracle(query)


# --- parse_content_type --------------------------------------------------------------


def test_content_type_params() -> None:
    kind, params = parse_content_type(
        b'Multipart/Form-Data ; Boundary="a;b \\"c\\" \\d" ; charset=UTF-8 ;junk; x = y '
    )
    assert kind == b"multipart/form-data"
    assert params == {b"boundary": b'a;b "c" \\d', b"charset": b"UTF-8", b"x": b"y"}


def test_content_type_first_parameter_wins() -> None:
    assert parse_content_type(b"text/plain; a=1; A=2") == (b"text/plain", {b"a": b"1"})
    assert parse_content_type(b" TEXT/Plain ") == (b"text/plain", {})


# --- parse_form: urlencoded ----------------------------------------------------------


def test_urlencoded_body() -> None:
    body = b"name=J%C3%BCrgen+M&tags=a&tags=b&empty="
    assert form(b"application/x-www-form-urlencoded", body) == {
        b"name": ["J\u00fcrgen M".encode()],
        b"tags": [b"a", b"b"],
        b"empty": [b""],
    }


def test_urlencoded_content_type_case_and_charset() -> None:
    ctype = b"Application/X-WWW-Form-URLEncoded; charset=UTF-8"
    assert form(ctype, b"a=1") == {b"a": [b"1"]}


def test_urlencoded_limits() -> None:
    assert form(b"application/x-www-form-urlencoded", b"a=1&b=2", max_fields=2) == {
        b"a": [b"1"],
        b"b": [b"2"],
    }
    with pytest.raises(FormError, match="more than 2 fields"):
        form(b"application/x-www-form-urlencoded", b"a=1&b=2&c=3", max_fields=2)
    with pytest.raises(FormError, match="larger than 5 bytes"):
        form(b"application/x-www-form-urlencoded", b"a=12345", max_memory=5)


@pytest.mark.parametrize(
    "ctype", [None, b"", b"text/plain", b"application/json", b"multipart/mixed; boundary=x"]
)
def test_other_content_types_ignored(ctype: bytes | None) -> None:
    assert form(ctype, b"a=1") == {}


def test_body_left_at_zero() -> None:
    body = io.BytesIO(b"a=1")
    parse_form(b"application/x-www-form-urlencoded", body)
    assert body.tell() == 0
    bad = io.BytesIO(b"--x\r\nnot a header\r\n\r\n--x--\r\n")
    with pytest.raises(FormError):
        parse_form(b"multipart/form-data; boundary=x", bad)
    assert bad.tell() == 0


# --- parse_form / parse_multipart ----------------------------------------------------


def test_multipart_fields_and_binary_file() -> None:
    tricky = (
        ALL_BYTES
        + b"\r\n--"
        + BOUNDARY[:-1]
        + b"\r\n--"
        + BOUNDARY
        + b"X\r\n"
        + b"not at line start --"
        + BOUNDARY
        + b"\r\n"
        + b"\r\n--"
        + BOUNDARY
        + b"-\r\n\r\r\n"
        + ALL_BYTES[::-1]
    )
    body = multipart(
        part(b"title", b"hello"),
        part(b"upload", tricky, b"Content-Type: application/octet-stream", filename=b"d.bin"),
        part(b"title", b"again"),
        part(b"empty", b""),
    )
    assert form(MULTIPART, body) == {
        b"title": [b"hello", b"again"],
        b"upload": [tricky],
        b"empty": [b""],
    }
    parts = parse_multipart(io.BytesIO(body), BOUNDARY)
    assert [p.name for p in parts] == [b"title", b"upload", b"title", b"empty"]
    upload = parts[1]
    assert upload.filename == b"d.bin"
    assert upload.content_type == b"application/octet-stream"
    assert upload.headers == [
        (b"content-disposition", b'form-data; name="upload"; filename="d.bin"'),
        (b"content-type", b"application/octet-stream"),
    ]
    assert upload.value == tricky
    assert parts[0].filename is None
    assert parts[0].content_type is None


@pytest.mark.parametrize("step", [1, 2, 3, 7, 64])
def test_multipart_split_across_reads(step: int) -> None:
    value = b"x\r\n-" + b"\r" * 5 + b"\r\n--" + BOUNDARY[:10] + ALL_BYTES
    body = multipart(part(b"a", value), part(b"b", b"\r\n"))
    parts = parse_multipart(TrickleIO(body, step), BOUNDARY)
    assert [(p.name, p.value) for p in parts] == [(b"a", value), (b"b", b"\r\n")]


def test_multipart_large_part_spans_chunks() -> None:
    value = ALL_BYTES * 1000 + b"\r\n--" + BOUNDARY[:-1]
    body = multipart(part(b"big", value), part(b"after", b"ok"))
    with tempfile.SpooledTemporaryFile(max_size=1024) as spooled:
        spooled.write(body)
        spooled.seek(0)
        assert parse_form(MULTIPART, spooled) == {b"big": [value], b"after": [b"ok"]}  # type: ignore[arg-type]
        assert spooled.tell() == 0


def test_multipart_preamble_epilogue_padding_and_quoted_boundary() -> None:
    body = (
        b"This is the preamble.\r\n--not-it\r\n"
        b"--b:o'u=n(d)  \t\r\n"
        b"content-disposition: FORM-DATA; NAME=field\r\n"
        b"\r\n"
        b"value\r\n"
        b"--b:o'u=n(d)-- \r\n"
        b"epilogue --b:o'u=n(d)\r\n garbage"
    )
    ctype = b'Multipart/Form-Data; charset=utf-8; boundary="b:o\'u=n(d)"'
    assert form(ctype, body) == {b"field": [b"value"]}


def test_multipart_lf_line_endings_and_transfer_encodings() -> None:
    body = (
        b"--AaB03x\n"
        b"Content-Type: text/plain\n"
        b'Content-Disposition: form-data; name="text"\n'
        b"Content-Transfer-Encoding: quoted-printable\n"
        b"\n"
        b"caf=C3=A9\n"
        b"--AaB03x\n"
        b'Content-Disposition: form-data; name="b64"\n'
        b"Content-Transfer-Encoding: BASE64\n"
        b"\n"
        b"AAEC/w==\n"
        b"--AaB03x--"
    )
    assert form(b"multipart/form-data; boundary=AaB03x", body) == {
        b"text": ["caf\u00e9".encode()],
        b"b64": [b"\x00\x01\x02\xff"],
    }


def test_multipart_part_charset_and_header_details() -> None:
    body = multipart(
        b"--" + BOUNDARY + b"\r\n"
        b'Content-Disposition: form-data; name="a;b"; filename="C:\\dir\\f \\"x\\".txt"\r\n'
        b"Content-Type: text/plain; charset=iso-8859-1\r\n"
        b"X-Folded: one\r\n"
        b"\t two\r\n"
        b"\r\n"
        b"\xe9t\xe9\r\n"
    )
    (only,) = parse_multipart(io.BytesIO(body), BOUNDARY)
    assert only.name == b"a;b"
    assert only.filename == b'C:\\dir\\f "x".txt'
    assert only.content_type == b"text/plain; charset=iso-8859-1"
    assert only.headers[-1] == (b"x-folded", b"one two")
    assert only.value == b"\xe9t\xe9"


def test_multipart_nameless_parts_skipped_by_parse_form() -> None:
    body = multipart(
        b"--" + BOUNDARY + b"\r\nContent-Type: text/plain\r\n\r\nno disposition\r\n",
        b"--" + BOUNDARY + b"\r\nContent-Disposition: attachment; name=x\r\n\r\nnot form\r\n",
        part(b"", b"empty name"),
        part(b"kept", b"yes"),
    )
    assert form(MULTIPART, body) == {b"kept": [b"yes"]}
    names = [p.name for p in parse_multipart(io.BytesIO(body), BOUNDARY)]
    assert names == [b"", b"", b"", b"kept"]


def test_multipart_no_parts_and_empty_body() -> None:
    assert form(MULTIPART, b"--" + BOUNDARY + b"--") == {}
    assert form(MULTIPART, b"") == {}
    assert form(b"multipart/form-data", b"") == {}


def test_multipart_returns_formparts() -> None:
    parts = parse_multipart(io.BytesIO(multipart(part(b"n", b"v"))), BOUNDARY)
    assert parts == [
        FormPart(
            name=b"n",
            filename=None,
            content_type=None,
            headers=[(b"content-disposition", b'form-data; name="n"')],
            value=b"v",
        )
    ]


@pytest.mark.parametrize(
    ("ctype", "body", "message"),
    [
        (b"multipart/form-data", b"--x\r\n", "without a boundary"),
        (b'multipart/form-data; boundary=""', b"--x\r\n", "without a boundary"),
        (MULTIPART, b"just some bytes", "no closing boundary"),
        (MULTIPART, part(b"a", b"1"), "no closing boundary"),
        (MULTIPART, part(b"a", b"1") + b"--" + BOUNDARY + b"--x", "no closing boundary"),
        (MULTIPART, b"--" + BOUNDARY + b"\r\nContent-Disposition: form-data", "inside part"),
        (
            MULTIPART,
            multipart(b"--" + BOUNDARY + b"\r\nno colon here\r\n\r\nv\r\n"),
            "malformed multipart part header",
        ),
        (
            MULTIPART,
            multipart(b"--" + BOUNDARY + b"\r\nBad Name: v\r\n\r\nv\r\n"),
            "malformed multipart part header",
        ),
        (
            MULTIPART,
            multipart(part(b"a", b"abc", b"Content-Transfer-Encoding: base64")),
            "invalid base64",
        ),
    ],
)
def test_multipart_malformed(ctype: bytes, body: bytes, message: str) -> None:
    with pytest.raises(FormError, match=message):
        form(ctype, body)


def test_multipart_empty_boundary_argument() -> None:
    with pytest.raises(FormError, match="empty"):
        parse_multipart(io.BytesIO(b"--\r\n"), b"")


def test_multipart_max_fields() -> None:
    body = multipart(*(part(b"f%d" % i, b"v") for i in range(3)))
    assert len(form(MULTIPART, body, max_fields=3)) == 3
    with pytest.raises(FormError, match="more than 2 parts"):
        form(MULTIPART, body, max_fields=2)


def test_multipart_max_memory() -> None:
    body = multipart(part(b"a", b"x" * 60), part(b"b", b"y" * 40))
    assert form(MULTIPART, body, max_memory=100) == {b"a": [b"x" * 60], b"b": [b"y" * 40]}
    with pytest.raises(FormError, match="exceed 99 bytes"):
        form(MULTIPART, body, max_memory=99)
    preamble = b"p" * 500 + b"\r\n"
    assert form(MULTIPART, preamble + body, max_memory=100)[b"a"] == [b"x" * 60]


def test_multipart_max_header_bytes() -> None:
    header = b"X-Long: " + b"h" * 200
    body = multipart(part(b"a", b"v", header))
    assert form(MULTIPART, body, max_header_bytes=300) == {b"a": [b"v"]}
    with pytest.raises(FormError, match="headers exceed 100 bytes"):
        form(MULTIPART, body, max_header_bytes=100)
    endless = b"--" + BOUNDARY + b"\r\n" + b"h" * 10_000
    with pytest.raises(FormError, match="headers exceed 100 bytes"):
        parse_multipart(TrickleIO(endless, 7), BOUNDARY, max_header_bytes=100)
    padded = b"--" + BOUNDARY + b" " * 200 + b"\r\n"
    with pytest.raises(FormError, match="boundary line is too long"):
        parse_multipart(io.BytesIO(padded), BOUNDARY, max_header_bytes=100)


_names = st.binary(min_size=1, max_size=12).filter(
    lambda b: not any(c in b for c in b'"\\\r\n') and b == b.strip(b" \t")
)


@given(
    st.lists(st.tuples(_names, st.binary(max_size=300)), max_size=8),
    st.sampled_from([b"b", b"--", b"x" * 70, b"0aB'()+_,-./:=?"]),
    st.integers(min_value=1, max_value=97),
)
def test_multipart_round_trip(
    fields: list[tuple[bytes, bytes]], boundary: bytes, step: int
) -> None:
    for _, value in fields:
        assume(b"\n--" + boundary not in b"\n" + value + b"\r\n")
    body = b"".join(
        b"--"
        + boundary
        + b'\r\nContent-Disposition: form-data; name="'
        + name
        + b'"\r\n\r\n'
        + value
        + b"\r\n"
        for name, value in fields
    )
    body += b"--" + boundary + b"--\r\n"
    parts = parse_multipart(TrickleIO(body, step), boundary)
    assert [(p.name, p.value) for p in parts] == fields


# --- cookies -------------------------------------------------------------------------


def test_parse_cookies() -> None:
    headers = [
        b'a=1; b="quoted"; c=x=y; malformed; ;  d = 2 ',
        b"a=override;e=;=anon",
        b"",
    ]
    assert parse_cookies(headers) == {
        b"a": b"override",
        b"b": b'"quoted"',
        b"c": b"x=y",
        b"d ": b" 2",
        b"e": b"",
        b"": b"anon",
    }
    assert parse_cookies([]) == {}


def test_set_cookie_minimal_and_str() -> None:
    assert format_set_cookie(b"k", b"v") == b"k=v"
    assert format_set_cookie("sess", "") == b"sess="
    assert format_set_cookie("sess", "\u00e9") == "sess=\u00e9".encode()


def test_set_cookie_every_option() -> None:
    cookie = format_set_cookie(
        "session",
        b'"abc=="',
        expires="Wed, 21 Oct 2015 07:28:00 GMT",
        domain=b"example.com",
        path="/app",
        max_age=3600,
        comment="why",
        secure=True,
        httpOnly=True,
        sameSite="Strict",
    )
    assert cookie == (
        b'session="abc=="; Expires=Wed, 21 Oct 2015 07:28:00 GMT; Domain=example.com; '
        b"Path=/app; Max-Age=3600; Comment=why; Secure; HttpOnly; SameSite=strict"
    )


def test_set_cookie_option_variants() -> None:
    assert format_set_cookie("k", "v", max_age="0", secure=False) == b"k=v; Max-Age=0"
    assert format_set_cookie("k", "v", sameSite=b"NONE", secure=True) == (
        b"k=v; Secure; SameSite=none"
    )
    assert format_set_cookie("k", "v", sameSite="lax") == b"k=v; SameSite=lax"
    assert format_set_cookie("k", "v", sameSite=None, httpOnly=False) == b"k=v"


@pytest.mark.parametrize("name", [b"", b"a b", b"a;b", b"a=b", b"a\r\nb", b"a\x00", "\u00e9"])
def test_set_cookie_refuses_bad_names(name: bytes | str) -> None:
    with pytest.raises(ValueError, match="cookie name"):
        format_set_cookie(name, b"v")


@pytest.mark.parametrize(
    "value", [b"a;b", b"a b", b"a,b", b"a\r\nSet-Cookie: x=y", b"a\x00", b"a\tb", b"\x7f"]
)
def test_set_cookie_refuses_bad_values(value: bytes) -> None:
    with pytest.raises(ValueError, match=r"'sid'.*invalid value"):
        format_set_cookie(b"sid", value)


@pytest.mark.parametrize("option", ["expires", "domain", "path", "max_age", "comment"])
@pytest.mark.parametrize("bad", ["x; HttpOnly", "x\r\nInjected: 1", "x\nY", "x\rY", "x\x00"])
def test_set_cookie_refuses_attribute_injection(option: str, bad: str) -> None:
    with pytest.raises(ValueError, match="'sid'"):
        format_set_cookie(b"sid", b"v", **{option: bad})  # type: ignore[arg-type]


@pytest.mark.parametrize("same_site", ["lox", "strict;", b"None ", "1"])
def test_set_cookie_refuses_bad_samesite(same_site: bytes | str) -> None:
    with pytest.raises(ValueError, match="SameSite"):
        format_set_cookie("k", "v", sameSite=same_site)


# --- basic auth ----------------------------------------------------------------------


def _basic(credentials: bytes, scheme: bytes = b"Basic") -> bytes:
    return scheme + b" " + base64.b64encode(credentials)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (_basic(b"user:secret"), (b"user", b"secret")),
        (_basic(b"user:pa:ss:"), (b"user", b"pa:ss:")),
        (_basic(b":"), (b"", b"")),
        (_basic(b"\xffu:\x00p"), (b"\xffu", b"\x00p")),
        (_basic(b"u:p", b"bAsIc"), (b"u", b"p")),
        (b"  Basic   " + base64.b64encode(b"u:p") + b"  ", (b"u", b"p")),
        (None, None),
        (b"", None),
        (b"Basic", None),
        (_basic(b"nocolon"), None),
        (_basic(b"u:p", b"Bearer"), None),
        (b"Basic dXNlcjpw!!", None),
        (b"Basic dXNlcjpwYXN", None),
        (b"Basic dXNl=cjpw", None),
        (b"Basic dXNlc jpw", None),
        (b"Basic dXNlcjpw YQ==", None),
    ],
)
def test_parse_basic_auth(header: bytes | None, expected: tuple[bytes, bytes] | None) -> None:
    assert parse_basic_auth(header) == expected
