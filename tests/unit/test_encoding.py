"""EncodingResourceWrapper and GzipEncoderFactory: negotiation, framing, what is left alone."""

from __future__ import annotations

import asyncio
import gzip
import zlib
from pathlib import Path
from typing import Any

import pytest

from hive._encoding import accepts_encoding
from hive.http_headers import Headers
from hive.resource import EncodingResourceWrapper, Resource
from hive.server import NOT_DONE_YET, GzipEncoderFactory, Request
from hive.static import File
from tests.unit.harness import Harness, Held, Response, settle

TEXT = b"All work and no play makes Jack a dull boy.\n" * 100  # 4400 bytes


class Page(Resource):
    """Returns ``body`` with ``headers``."""

    isLeaf = True

    def __init__(self, body: bytes = TEXT, **headers: str) -> None:
        super().__init__()
        self.body = body
        self.headers = headers

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"content-type", b"text/plain")
        for name, value in self.headers.items():
            request.setHeader(name.replace("_", "-"), value)
        return self.body


class Streamed(Resource):
    """Writes ``pieces`` one at a time, then finishes."""

    isLeaf = True

    def __init__(self, pieces: list[bytes], length: int | None = None) -> None:
        super().__init__()
        self.pieces = pieces
        self.length = length

    def render_GET(self, request: Request) -> Any:
        request.setHeader(b"content-type", b"text/plain")
        if self.length is not None:
            request.setHeader(b"content-length", b"%d" % self.length)
        for piece in self.pieces:
            request.write(piece)
        request.finish()
        return NOT_DONE_YET


def wrap(resource: Any, **options: Any) -> EncodingResourceWrapper:
    return EncodingResourceWrapper(resource, [GzipEncoderFactory(**options)])


def get(resource: Any, headers: dict[str, str] | None = None, method: str = "GET") -> Response:
    async def go() -> Response:
        response = Harness(resource).get("/", headers, method=method)
        await settle()
        return response

    return asyncio.run(go())


GZIP = {"Accept-Encoding": "gzip, deflate"}


def test_the_names_are_twisteds() -> None:
    import hive._encoding
    import hive.resource
    import hive.server

    assert hive.server.GzipEncoderFactory is hive._encoding.GzipEncoderFactory
    assert "EncodingResourceWrapper" in hive.resource.__all__
    assert "GzipEncoderFactory" in hive.server.__all__


def test_whole_body_is_compressed_with_its_length() -> None:
    response = get(wrap(Page()), GZIP)
    assert response.status == 200
    assert response.header("Content-Encoding") == "gzip"
    assert response.header("Vary") == "Accept-Encoding"
    assert response.header("Content-Length") == str(len(response.body))
    assert response.header("Transfer-Encoding") is None
    assert gzip.decompress(response.body) == TEXT
    assert len(response.body) < len(TEXT) // 10


def test_head_gets_the_compressed_length() -> None:
    full = get(wrap(Page()), GZIP)
    head = get(wrap(Page()), GZIP, method="HEAD")
    assert head.body == b"" and head.header("Content-Encoding") == "gzip"
    assert head.header("Content-Length") == full.header("Content-Length")


def test_streamed_body_is_chunked_and_each_write_is_flushed() -> None:
    async def go() -> None:
        held = Held()
        harness = Harness(wrap(held))
        harness.send(b"GET / HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n")
        (request,) = held.requests
        request.setHeader(b"content-length", b"999999")  # wrong once compressed: dropped
        request.write(b"first line\n")
        head, _, body = bytes(harness.transport.data).partition(b"\r\n\r\n")
        assert b"Transfer-Encoding: chunked" in head and b"Content-Length" not in head
        assert b"Content-Encoding: gzip" in head
        # The first write can be decoded on its own: a stream is not held in zlib's buffer.
        size, _, rest = body.partition(b"\r\n")
        chunk = rest[: int(size, 16)]
        decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
        assert decoder.decompress(chunk) == b"first line\n"
        request.write(b"second line\n")
        request.finish()
        response = harness.response()
        assert gzip.decompress(response.body) == b"first line\nsecond line\n"
        await settle()

    asyncio.run(go())


def test_streamed_small_body_with_known_length_is_left_alone() -> None:
    response = get(wrap(Streamed([b"tiny"], length=4)), GZIP)
    assert response.header("Content-Encoding") is None
    assert response.body == b"tiny" and response.header("Content-Length") == "4"
    assert response.header("Vary") == "Accept-Encoding"


def test_streamed_body_of_unknown_length_is_compressed() -> None:
    response = get(wrap(Streamed([b"a" * 10, b"b" * 10])), GZIP)
    assert response.header("Content-Encoding") == "gzip"
    assert gzip.decompress(response.body) == b"a" * 10 + b"b" * 10


def test_small_bodies_are_left_alone() -> None:
    response = get(wrap(Page(b"short")), GZIP)
    assert response.header("Content-Encoding") is None and response.body == b"short"
    assert response.header("Vary") == "Accept-Encoding"
    tiny = get(wrap(Page(b"short"), minimumSize=0), GZIP)
    assert gzip.decompress(tiny.body) == b"short"


@pytest.mark.parametrize(
    "accept",
    [None, "", "identity", "gzip;q=0", "deflate, br", "*;q=0", "gzip;q=0, *", "gzip;q=x"],
)
def test_clients_that_do_not_accept_gzip(accept: str | None) -> None:
    headers = {"Accept-Encoding": accept} if accept is not None else {}
    response = get(wrap(Page()), headers)
    assert response.header("Content-Encoding") is None
    assert response.body == TEXT
    # The response still varies: a cache must not give it to a client that accepts gzip.
    assert response.header("Vary") == "Accept-Encoding"


@pytest.mark.parametrize(
    "accept", ["gzip", "GZIP", "x-gzip", "*", "br;q=1, gzip;q=0.5", "gzip;q=0.001", "*, br"]
)
def test_clients_that_accept_gzip(accept: str) -> None:
    response = get(wrap(Page()), {"Accept-Encoding": accept})
    assert response.header("Content-Encoding") == "gzip"


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([b"gzip"], True),
        ([b"deflate", b"gzip;q=0.5"], True),
        ([b"gzip;q=0", b"*"], False),
        ([b"*;q=0.1"], True),
        ([b"gzip; q=1.5"], False),
        ([b"gzip ; Q=0.8"], True),
        ([], False),
    ],
)
def test_accepts_encoding(values: list[bytes], expected: bool) -> None:
    class Fake:
        requestHeaders = Headers({b"accept-encoding": values} if values else {})

    assert accepts_encoding(Fake(), b"gzip") is expected


@pytest.mark.parametrize(
    "content_type",
    ["image/png", "image/jpeg", "video/mp4", "audio/ogg", "application/zip", "font/woff2"],
)
def test_compressed_media_are_left_alone(content_type: str) -> None:
    response = get(wrap(Page(content_type=content_type)), GZIP)
    assert response.header("Content-Encoding") is None and response.body == TEXT
    assert response.header("Vary") is None


@pytest.mark.parametrize("content_type", ["image/svg+xml", "application/json", "text/css"])
def test_text_like_media_are_compressed(content_type: str) -> None:
    response = get(wrap(Page(content_type=content_type)), GZIP)
    assert response.header("Content-Encoding") == "gzip"


def test_already_encoded_responses_are_left_alone() -> None:
    packed = gzip.compress(TEXT)
    response = get(wrap(Page(packed, content_encoding="gzip")), GZIP)
    assert response.header("Content-Encoding") == "gzip"
    assert response.body == packed  # not gzip inside gzip


def test_no_transform_is_respected() -> None:
    response = get(wrap(Page(cache_control="private, no-transform")), GZIP)
    assert response.header("Content-Encoding") is None


def test_existing_vary_is_kept() -> None:
    response = get(wrap(Page(vary="Cookie")), GZIP)
    assert response.header("Vary") == "Cookie, Accept-Encoding"
    star = get(wrap(Page(vary="*")), GZIP)
    assert star.header("Vary") == "*"


def test_strong_etag_becomes_weak_when_compressed() -> None:
    class Tagged(Page):
        def render_GET(self, request: Request) -> bytes:
            if request.setETag(b'"v1"') is not None:
                return b""
            return super().render_GET(request)

    response = get(wrap(Tagged()), GZIP)
    assert response.header("ETag") == 'W/"v1"'
    assert get(wrap(Tagged()), {}).header("ETag") == '"v1"'
    cached = get(wrap(Tagged()), {**GZIP, "If-None-Match": 'W/"v1"'})
    assert cached.status == 304 and cached.body == b""


def test_error_pages_and_405_pass_through() -> None:
    response = get(wrap(Page()), GZIP, method="POST")
    assert response.status == 405
    assert "GET" in (response.header("Allow") or "")


def test_children_are_not_wrapped_as_in_twisted() -> None:
    root = Resource()
    root.putChild(b"page", Page())
    wrapped = wrap(root)
    assert not wrapped.isLeaf
    response = Harness(wrapped).get("/page", GZIP)
    assert response.header("Content-Encoding") is None


def test_putchild_reaches_the_original() -> None:
    root = Resource()
    wrapped = wrap(root)
    wrapped.putChild(b"x", Page())
    assert b"x" in root.children


def test_a_twisted_style_encoder_always_encodes() -> None:
    class Upper:
        def encode(self, data: bytes) -> bytes:
            return data.upper()

        def finish(self) -> bytes:
            return b"!"

    class Factory:
        def encoderForRequest(self, request: Request) -> Upper:
            return Upper()

    response = get(EncodingResourceWrapper(Page(b"quiet"), [Factory()]), {})
    assert response.body == b"QUIET!"
    streamed = get(EncodingResourceWrapper(Streamed([b"a", b"b"]), [Factory()]), {})
    assert streamed.body == b"AB!"


def test_first_factory_that_answers_wins() -> None:
    class Never:
        def encoderForRequest(self, request: Request) -> None:
            return None

    wrapped = EncodingResourceWrapper(Page(), [Never(), GzipEncoderFactory()])
    assert get(wrapped, GZIP).header("Content-Encoding") == "gzip"


def test_factory_options() -> None:
    assert GzipEncoderFactory().compressLevel == 9
    assert GzipEncoderFactory(compressLevel=1).compressLevel == 1
    with pytest.raises(ValueError):
        GzipEncoderFactory(compressLevel=10)
    with pytest.raises(ValueError):
        GzipEncoderFactory(minimumSize=-1)


def test_wrapped_static_file(tmp_path: Path) -> None:
    data = b"line of text\n" * 30000  # 390 KB: streamed
    (tmp_path / "big.txt").write_bytes(data)
    (tmp_path / "small.txt").write_bytes(TEXT)
    top = Resource()
    top.putChild(b"f", EncodingResourceWrapper(File(str(tmp_path)), [GzipEncoderFactory()]))
    # The wrapper's children are not wrapped (as in Twisted): wrap the File at its leaf.
    leaf = EncodingResourceWrapper(File(str(tmp_path / "big.txt")), [GzipEncoderFactory()])
    top.putChild(b"big", leaf)

    async def go(target: str, headers: dict[str, str]) -> Response:
        harness = Harness(top)
        lines = [f"GET {target} HTTP/1.1", "Host: x"] + [f"{k}: {v}" for k, v in headers.items()]
        harness.send(("\r\n".join(lines) + "\r\n\r\n").encode())
        for _ in range(100):
            if harness.connection.idle:
                break
            await settle()
        return harness.response()

    response = asyncio.run(go("/big", GZIP))
    assert response.header("Content-Encoding") == "gzip"
    assert response.header("Transfer-Encoding") == "chunked"
    assert gzip.decompress(response.body) == data
    ranged = asyncio.run(go("/big", {**GZIP, "Range": "bytes=0-3"}))
    assert ranged.status == 206 and ranged.body == b"line"
    assert ranged.header("Content-Encoding") is None
