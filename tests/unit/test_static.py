"""hive.static: File, Data, DirectoryLister, ranges, validators and the root's walls."""

from __future__ import annotations

import asyncio
import email
import gzip
import io
import os
import stat
from pathlib import Path

import pytest

from hive import http
from hive.resource import Resource
from hive.server import Request
from hive.static import Data, File, _add_slash, getTypeAndEncoding, loadMimeTypes, parse_ranges
from tests.unit.harness import Harness, Response, settle

SECRET = b"TOP-SECRET-OUTSIDE-THE-ROOT"
BIG = 300 * 1024  # above the one-write limit: streamed


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """root/ with files, a subdirectory, links in and out; outside/ with a secret."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(SECRET)
    root = tmp_path / "root"
    root.mkdir()
    (root / "hello.txt").write_bytes(b"hello, world\n")
    (root / "style.css").write_bytes(b"body { color: red }\n" * 100)
    (root / "style.css.gz").write_bytes(gzip.compress((root / "style.css").read_bytes()))
    (root / "app.js").write_bytes(b"console.log(1)\n")
    (root / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (root / "archive.tar.gz").write_bytes(gzip.compress(b"tar"))
    (root / "unknown.zzz").write_bytes(b"???")
    (root / "script.rpy").write_bytes(b"resource = None  # source code\n")
    (root / "big.bin").write_bytes(bytes(range(256)) * (BIG // 256))
    (root / "empty.txt").write_bytes(b"")
    sub = root / "sub"
    sub.mkdir()
    (sub / "index.html").write_bytes(b"<h1>sub index</h1>")
    (sub / "page.html").write_bytes(b"<p>page</p>")
    (root / "list").mkdir()
    (root / "list" / "<script>alert(1).txt").write_bytes(b"x")
    (root / "list" / "<img src=x onerror=alert(2)>.txt").write_bytes(b"w")
    (root / "list" / 'a "quoted" & <b>.txt').write_bytes(b"y")
    (root / "list" / "space and ?#%.txt").write_bytes(b"z")
    (root / "list" / "dir<i>").mkdir()
    (root / "only-rpy").mkdir()
    (root / "only-rpy" / "index.rpy").write_bytes(b"resource = None\n")
    os.symlink(outside / "secret.txt", root / "link-out.txt")
    os.symlink(outside, root / "dir-out")
    os.symlink(root / "hello.txt", root / "link-in.txt")
    os.symlink("../outside/secret.txt", root / "relative-out.txt")
    return root


def site(root: Path, **options: object) -> Resource:
    top = Resource()
    top.putChild(b"files", File(str(root), **options))  # type: ignore[arg-type]
    return top


def get(
    resource: Resource, target: str, headers: dict[str, str] | None = None, method: str = "GET"
) -> Response:
    """One request; streamed bodies are given the loop until they are done."""

    async def go() -> Response:
        harness = Harness(resource)
        lines = [f"{method} {target} HTTP/1.1", "Host: example.com"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        harness.send(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        for _ in range(200):
            if harness.connection.idle or harness.transport.closed:
                break
            await settle()
        return harness.response(method)

    return asyncio.run(go())


# -- plain files --------------------------------------------------------------------------


def test_serves_a_file_with_validators(tree: Path) -> None:
    response = get(site(tree), "/files/hello.txt")
    assert response.status == 200
    assert response.body == b"hello, world\n"
    assert response.header("Content-Type") == "text/plain; charset=utf-8"
    assert response.header("Content-Length") == "13"
    assert response.header("Accept-Ranges") == "bytes"
    assert response.header("X-Content-Type-Options") == "nosniff"
    info = os.stat(tree / "hello.txt")
    etag = '"%x-%x-%x"' % (info.st_ino, info.st_size, info.st_mtime_ns)
    assert response.header("ETag") == etag
    assert (
        response.header("Last-Modified") == http.datetimeToString(-(-info.st_mtime // 1)).decode()
    )
    assert response.header("Cache-Control") is None


@pytest.mark.parametrize(
    ("name", "content_type", "encoding"),
    [
        ("style.css", "text/css; charset=utf-8", None),
        ("app.js", "text/javascript; charset=utf-8", None),
        ("image.png", "image/png", None),
        ("archive.tar.gz", "application/x-tar", "gzip"),
        ("unknown.zzz", "text/html; charset=utf-8", None),
    ],
)
def test_media_types(tree: Path, name: str, content_type: str, encoding: str | None) -> None:
    response = get(site(tree), f"/files/{name}")
    assert response.status == 200
    assert response.header("Content-Type") == content_type
    assert response.header("Content-Encoding") == encoding


def test_default_type_and_charset_are_settable(tree: Path) -> None:
    resource = File(str(tree), defaultType="application/x-thing")
    resource.charset = None
    top = Resource()
    top.putChild(b"f", resource)
    assert get(top, "/f/unknown.zzz").header("Content-Type") == "application/x-thing"
    assert get(top, "/f/hello.txt").header("Content-Type") == "text/plain"


def test_mime_table() -> None:
    types = loadMimeTypes()
    assert types[".html"] == "text/html" and types[".woff2"] == "font/woff2"
    assert getTypeAndEncoding("x.TXT.GZ", types, File.contentEncodings, "d") == (
        "text/plain",
        "gzip",
    )
    assert getTypeAndEncoding("noext", types, {}, "d/d") == ("d/d", None)


def test_mime_files_given_win(tmp_path: Path) -> None:
    table = tmp_path / "mime.types"
    table.write_text("application/x-custom  css zzz\n")
    types = loadMimeTypes([str(table)])
    assert types[".zzz"] == "application/x-custom" and types[".css"] == "application/x-custom"


def test_file_mounted_on_a_single_file(tree: Path) -> None:
    top = Resource()
    top.putChild(b"hello", File(tree / "hello.txt"))
    assert get(top, "/hello").body == b"hello, world\n"
    assert get(top, "/hello/more").status == 404


def test_missing_file_and_missing_root(tree: Path, tmp_path: Path) -> None:
    assert get(site(tree), "/files/nope.txt").status == 404
    assert get(site(tmp_path / "no-such-dir"), "/files/").status == 404
    assert get(site(tmp_path / "no-such-dir"), "/files/x").status == 404


def test_file_gone_between_lookup_and_render(tree: Path) -> None:
    gone = File(str(tree / "was-here.txt"))
    top = Resource()
    top.putChild(b"gone", gone)
    assert get(top, "/gone").status == 404


def test_fifo_is_refused_without_blocking(tree: Path) -> None:
    os.mkfifo(tree / "pipe")
    assert get(site(tree), "/files/pipe").status == 403


def test_head_has_length_and_no_body(tree: Path) -> None:
    small = get(site(tree), "/files/hello.txt", method="HEAD")
    assert small.status == 200 and small.body == b""
    assert small.header("Content-Length") == "13"
    big = get(site(tree), "/files/big.bin", method="HEAD")
    assert big.status == 200 and big.body == b""
    assert big.header("Content-Length") == str(BIG)


def test_large_file_streams_byte_exact(tree: Path) -> None:
    response = get(site(tree), "/files/big.bin")
    assert response.status == 200
    assert response.header("Content-Length") == str(BIG)
    assert response.body == (tree / "big.bin").read_bytes()


def test_empty_file(tree: Path) -> None:
    response = get(site(tree), "/files/empty.txt")
    assert response.status == 200 and response.body == b""
    assert response.header("Content-Length") == "0"


def test_post_is_not_allowed(tree: Path) -> None:
    response = get(site(tree), "/files/hello.txt", method="POST")
    assert response.status == 405
    assert "GET" in (response.header("Allow") or "")


def test_cache_control_option_reaches_children(tree: Path) -> None:
    top = site(tree, cacheControl=b"public, max-age=3600")
    assert get(top, "/files/hello.txt").header("Cache-Control") == "public, max-age=3600"
    assert get(top, "/files/sub/page.html").header("Cache-Control") == "public, max-age=3600"


def test_ignored_extensions(tree: Path) -> None:
    top = Resource()
    top.putChild(b"html", File(str(tree / "sub"), ignoredExts=(".html",)))
    top.putChild(b"any", File(str(tree / "sub"), ignoredExts=("*",)))
    assert get(top, "/html/page").body == b"<p>page</p>"
    assert get(top, "/any/page").body == b"<p>page</p>"
    assert get(top, "/html/nothing").status == 404


def test_processors_are_honoured(tree: Path) -> None:
    calls: list[tuple[str, object]] = []

    def shout(path: str, registry: object) -> Resource:
        calls.append((path, registry))
        return Data(Path(path).read_bytes().upper(), "text/plain")

    resource = File(str(tree), registry="reg")
    resource.processors = {".txt": shout}
    top = Resource()
    top.putChild(b"f", resource)
    assert get(top, "/f/hello.txt").body == b"HELLO, WORLD\n"
    assert calls == [(str(tree / "hello.txt"), "reg")]


# -- directories --------------------------------------------------------------------------


def test_directory_index(tree: Path) -> None:
    response = get(site(tree), "/files/sub/")
    assert response.status == 200 and response.body == b"<h1>sub index</h1>"


def test_directory_without_slash_redirects(tree: Path) -> None:
    response = get(site(tree), "/files/sub?x=1")
    assert response.status == 302
    assert response.header("Location") == "/files/sub/?x=1"


def test_behind_a_proxys_prefix_the_redirect_and_listing_name_the_clients_path(
    tree: Path,
) -> None:
    from hive._forwarded import TrustedProxies
    from hive.server import Site

    proxied = Site(site(tree))
    proxied.trusted_proxies = TrustedProxies(["192.0.2.7"])
    prefix = {"X-Forwarded-Prefix": "/my%20app"}
    assert Harness(proxied).get("/files/sub?x=1", prefix).header("Location") == (
        "/my%20app/files/sub/?x=1"
    )
    listing = Harness(proxied).get("/files/list/", prefix).body.decode()
    assert "<h1>Directory listing for /my app/files/list/</h1>" in listing
    # The links are relative: right under any prefix.
    assert 'href="dir%3Ci%3E/"' in listing
    # Not from the proxy: no prefix.
    proxied.trusted_proxies = TrustedProxies(["10.0.0.0/8"])
    assert Harness(proxied).get("/files/sub", prefix).header("Location") == "/files/sub/"


def test_redirect_is_never_scheme_relative() -> None:
    class Fake:
        uri = b"//evil.example/dir?q=1"
        path = b"//evil.example/dir"
        sitepath: tuple[bytes, ...] = ()

    assert _add_slash(Fake()) == b"/evil.example/dir/?q=1"  # type: ignore[arg-type]


def test_rpy_is_never_served(tree: Path) -> None:
    assert get(site(tree), "/files/script.rpy").status == 404
    # index.rpy is not an index: the directory is listed instead.
    listing = get(site(tree), "/files/only-rpy/")
    assert listing.status == 200 and b"Directory listing" in listing.body
    assert b"resource = None" not in listing.body


def test_listing_escapes_every_name(tree: Path) -> None:
    response = get(site(tree), "/files/list/")
    assert response.status == 200
    assert response.header("Content-Type") == "text/html; charset=utf-8"
    body = response.body.decode()
    assert "<script>" not in body and "<img" not in body
    assert "&lt;script&gt;alert(1).txt" in body
    assert 'href="%3Cscript%3Ealert%281%29.txt"' in body
    assert "&lt;img src=x onerror=alert(2)&gt;.txt" in body
    assert "a &quot;quoted&quot; &amp; &lt;b&gt;.txt" in body
    assert 'href="a%20%22quoted%22%20%26%20%3Cb%3E.txt"' in body
    assert 'href="space%20and%20%3F%23%25.txt"' in body
    assert 'href="dir%3Ci%3E/"' in body and "dir&lt;i&gt;/" in body
    assert "<i>" not in body and "<b>" not in body


def test_listing_links_work(tree: Path) -> None:
    top = site(tree)
    assert get(top, "/files/list/space%20and%20%3F%23%25.txt").body == b"z"
    assert get(top, "/files/list/%3Cscript%3Ealert%281%29.txt").body == b"x"


def test_listing_title_is_escaped(tree: Path) -> None:
    (tree / "<t>").mkdir()
    body = get(site(tree), "/files/%3Ct%3E/").body.decode()
    assert "Directory listing for /files/&lt;t&gt;/" in body


# -- the root's walls ---------------------------------------------------------------------

HOSTILE = [
    "/files/../outside/secret.txt",
    "/files/%2e%2e/outside/secret.txt",
    "/files/%2E%2E/outside/secret.txt",
    "/files/.%2e/outside/secret.txt",
    "/files/%2e./outside/secret.txt",
    "/files/..%2foutside%2fsecret.txt",
    "/files/%2e%2e%2foutside%2fsecret.txt",
    "/files/..%5coutside%5csecret.txt",
    "/files/%2e%2e%5coutside%5csecret.txt",
    "/files/..\\outside\\secret.txt",
    "/files/sub/../../outside/secret.txt",
    "/files/sub/%2e%2e/%2e%2e/outside/secret.txt",
    "/files/%252e%252e/outside/secret.txt",
    "/files/%c0%ae%c0%ae/outside/secret.txt",
    "/files/%c0%af../outside/secret.txt",
    "/files/%ef%bc%8e%ef%bc%8e/outside/secret.txt",
    "/files/..%00/outside/secret.txt",
    "/files/hello.txt%00.png",
    "/files/%00",
    "/files/%2fetc%2fpasswd",
    "/files/%2f..%2f..%2foutside%2fsecret.txt",
    "/files//etc/passwd",
    "/files/./../outside/secret.txt",
    "/files/%2e/%2e%2e/outside/secret.txt",
    "/files/link-out.txt",
    "/files/relative-out.txt",
    "/files/dir-out/secret.txt",
    "/files/dir-out/",
    "/files/dir-out",
    "/files/%ff%fe/secret.txt",
    "/files/sub/..%2f..%2foutside/secret.txt",
    "/files/" + "a" * 5000,
]


@pytest.mark.parametrize("target", HOSTILE)
def test_hostile_paths_never_leave_the_root(tree: Path, target: str) -> None:
    response = get(site(tree), target)
    assert response.status in (400, 403, 404), (target, response)
    assert SECRET not in response.body
    assert b"root:" not in response.body


def test_symlinks_inside_the_root_are_followed(tree: Path) -> None:
    assert get(site(tree), "/files/link-in.txt").body == b"hello, world\n"


def test_symlinks_out_are_allowed_on_request(tree: Path) -> None:
    top = site(tree, allowSymlinksOut=True)
    assert get(top, "/files/link-out.txt").body == SECRET
    assert get(top, "/files/dir-out/secret.txt").body == SECRET


def test_link_swapped_in_after_the_check_is_refused(tree: Path) -> None:
    """The check is made again on the opened file: a name turned into a link in between
    (a race an attacker with write access to the directory could try) gets 403."""
    top = File(str(tree))
    request_file = top.createSimilarFile(str(tree / "swapped.txt"))
    os.symlink(tree.parent / "outside" / "secret.txt", tree / "swapped.txt")
    holder = Resource()
    holder.putChild(b"swapped", request_file)
    response = get(holder, "/swapped")
    assert response.status == 403 and SECRET not in response.body


# -- conditional requests -----------------------------------------------------------------


def test_if_none_match_gives_304(tree: Path) -> None:
    first = get(site(tree), "/files/hello.txt")
    etag = first.header("ETag")
    assert etag
    again = get(site(tree), "/files/hello.txt", {"If-None-Match": etag})
    assert again.status == 304 and again.body == b""
    assert again.header("ETag") == etag
    weak = get(site(tree), "/files/hello.txt", {"If-None-Match": f'"x", W/{etag}'})
    assert weak.status == 304
    other = get(site(tree), "/files/hello.txt", {"If-None-Match": '"other"'})
    assert other.status == 200 and other.body == b"hello, world\n"


def test_if_modified_since(tree: Path) -> None:
    last = get(site(tree), "/files/hello.txt").header("Last-Modified")
    assert last
    assert get(site(tree), "/files/hello.txt", {"If-Modified-Since": last}).status == 304
    old = "Mon, 01 Jan 2001 00:00:00 GMT"
    assert get(site(tree), "/files/hello.txt", {"If-Modified-Since": old}).status == 200
    # If-None-Match wins over If-Modified-Since (RFC 9110 section 13.2.2).
    both = {"If-Modified-Since": last, "If-None-Match": '"other"'}
    assert get(site(tree), "/files/hello.txt", both).status == 200


def test_weak_etags(tree: Path) -> None:
    top = Resource()
    resource = File(str(tree))
    resource.weakETags = True
    top.putChild(b"f", resource)
    response = get(top, "/f/hello.txt")
    etag = response.header("ETag") or ""
    assert etag.startswith('W/"')
    assert get(top, "/f/hello.txt", {"If-None-Match": etag}).status == 304
    # A weak validator cannot make a range response.
    ranged = get(top, "/f/hello.txt", {"Range": "bytes=0-1", "If-Range": etag})
    assert ranged.status == 200


# -- ranges ---------------------------------------------------------------------------------


def parts_of(response: Response) -> list[tuple[str, bytes]]:
    """(Content-Range, body) of each part of a multipart/byteranges response."""
    content_type = response.header("Content-Type") or ""
    message = email.message_from_bytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + response.body
    )
    assert message.is_multipart()
    parts: list[email.message.Message] = message.get_payload()  # type: ignore[assignment]
    return [(part["Content-Range"], part.get_payload(decode=True)) for part in parts]  # type: ignore[misc]


@pytest.mark.parametrize(
    ("spec", "start", "stop"),
    [
        ("bytes=0-4", 0, 5),
        ("bytes=7-", 7, 13),
        ("bytes=-5", 8, 13),
        ("bytes=-100", 0, 13),
        ("bytes=3-1000", 3, 13),
        ("BYTES = 2-3", 2, 4),
        ("bytes=12-12", 12, 13),
    ],
)
def test_single_range(tree: Path, spec: str, start: int, stop: int) -> None:
    response = get(site(tree), "/files/hello.txt", {"Range": spec})
    assert response.status == 206, response
    assert response.body == b"hello, world\n"[start:stop]
    assert response.header("Content-Range") == f"bytes {start}-{stop - 1}/13"
    assert response.header("Content-Length") == str(stop - start)


def test_multiple_ranges(tree: Path) -> None:
    response = get(site(tree), "/files/hello.txt", {"Range": "bytes=0-1,7-11,-1"})
    assert response.status == 206
    assert (response.header("Content-Type") or "").startswith("multipart/byteranges; boundary=")
    assert int(response.header("Content-Length") or 0) == len(response.body)
    assert parts_of(response) == [
        ("bytes 0-1/13", b"he"),
        ("bytes 7-11/13", b"world"),
        ("bytes 12-12/13", b"\n"),
    ]


def test_multiple_ranges_of_a_large_file_stream(tree: Path) -> None:
    data = (tree / "big.bin").read_bytes()
    spec = f"bytes=0-99,100000-199999,{BIG - 10}-"
    response = get(site(tree), "/files/big.bin", {"Range": spec})
    assert response.status == 206
    assert int(response.header("Content-Length") or 0) == len(response.body)
    assert parts_of(response) == [
        (f"bytes 0-99/{BIG}", data[:100]),
        (f"bytes 100000-199999/{BIG}", data[100000:200000]),
        (f"bytes {BIG - 10}-{BIG - 1}/{BIG}", data[-10:]),
    ]


def test_overlapping_ranges_are_merged(tree: Path) -> None:
    response = get(site(tree), "/files/hello.txt", {"Range": "bytes=0-3,2-5,9-"})
    assert parts_of(response) == [("bytes 0-5/13", b"hello,"), ("bytes 9-12/13", b"rld\n")]
    single = get(site(tree), "/files/hello.txt", {"Range": "bytes=0-3,1-2"})
    assert single.status == 206 and single.body == b"hell"


@pytest.mark.parametrize("spec", ["bytes=13-", "bytes=100-200", "bytes=-0", "bytes=20-,30-40"])
def test_unsatisfiable_range_is_416(tree: Path, spec: str) -> None:
    response = get(site(tree), "/files/hello.txt", {"Range": spec})
    assert response.status == 416
    assert response.header("Content-Range") == "bytes */13"


def test_any_range_of_an_empty_file_is_416(tree: Path) -> None:
    response = get(site(tree), "/files/empty.txt", {"Range": "bytes=0-"})
    assert response.status == 416 and response.header("Content-Range") == "bytes */0"


@pytest.mark.parametrize(
    "spec",
    ["bytes=5-1", "items=0-1", "bytes=a-b", "bytes=", "bytes=-", "bytes=1-2-3", "0-1"],
)
def test_invalid_range_is_ignored(tree: Path, spec: str) -> None:
    response = get(site(tree), "/files/hello.txt", {"Range": spec})
    assert response.status == 200 and response.body == b"hello, world\n"


def test_too_many_ranges_are_ignored(tree: Path) -> None:
    spec = "bytes=" + ",".join(f"{i}-{i}" for i in range(0, 13)) * 6
    response = get(site(tree), "/files/hello.txt", {"Range": spec})
    assert response.status == 200


def test_range_is_for_get_only(tree: Path) -> None:
    response = get(site(tree), "/files/hello.txt", {"Range": "bytes=0-1"}, method="HEAD")
    assert response.status == 200 and response.header("Content-Length") == "13"


def test_if_range(tree: Path) -> None:
    first = get(site(tree), "/files/hello.txt")
    etag, last = first.header("ETag") or "", first.header("Last-Modified") or ""
    for validator, status in [
        (etag, 206),
        ('"stale"', 200),
        (f"W/{etag}", 200),
        (last, 206),
        ("Mon, 01 Jan 2001 00:00:00 GMT", 200),
        ("garbage", 200),
    ]:
        response = get(
            site(tree), "/files/hello.txt", {"Range": "bytes=0-4", "If-Range": validator}
        )
        assert response.status == status, validator
        assert response.body == (b"hello" if status == 206 else b"hello, world\n")


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        (b"bytes=0-0", 10, [(0, 1)]),
        (b"bytes=0-0,-1", 10, [(0, 1), (9, 10)]),
        (b"bytes=-1,0-0", 10, [(9, 10), (0, 1)]),
        (b"bytes=5-,0-9", 10, [(0, 10)]),
        (b"bytes= 1-2 , , 4-5", 10, [(1, 3), (4, 6)]),
        (b"bytes=10-", 10, []),
        (b"bytes=-5", 0, []),
        (b"bytes=1-0", 10, None),
        (b"bytes=x-", 10, None),
        (b"bytes=+1-2", 10, None),
        (b"bytes=1", 10, None),
        (b"none", 10, None),
    ],
)
def test_parse_ranges(header: bytes, size: int, expected: object) -> None:
    assert parse_ranges(header, size) == expected


# -- precompressed siblings ---------------------------------------------------------------


def test_precompressed_sibling_for_gzip_clients(tree: Path) -> None:
    response = get(site(tree), "/files/style.css", {"Accept-Encoding": "br, gzip"})
    assert response.status == 200
    assert response.header("Content-Encoding") == "gzip"
    assert response.header("Content-Type") == "text/css; charset=utf-8"
    assert response.header("Vary") == "Accept-Encoding"
    assert gzip.decompress(response.body) == (tree / "style.css").read_bytes()
    assert response.header("Content-Length") == str((tree / "style.css.gz").stat().st_size)


@pytest.mark.parametrize("accept", [None, "gzip;q=0", "identity", "br", "*;q=0"])
def test_identity_for_other_clients(tree: Path, accept: str | None) -> None:
    headers = {"Accept-Encoding": accept} if accept else {}
    response = get(site(tree), "/files/style.css", headers)
    assert response.header("Content-Encoding") is None
    assert response.body == (tree / "style.css").read_bytes()
    assert response.header("Vary") == "Accept-Encoding"


def test_precompressed_can_be_turned_off(tree: Path) -> None:
    resource = File(str(tree))
    resource.precompressed = False
    top = Resource()
    top.putChild(b"f", resource)
    response = get(top, "/f/style.css", {"Accept-Encoding": "gzip"})
    assert response.header("Content-Encoding") is None and response.header("Vary") is None


def test_precompressed_etags_differ(tree: Path) -> None:
    plain = get(site(tree), "/files/style.css").header("ETag")
    packed = get(site(tree), "/files/style.css", {"Accept-Encoding": "gzip"}).header("ETag")
    assert plain and packed and plain != packed


def test_precompressed_link_out_is_refused(tree: Path) -> None:
    (tree / "hello.txt.gz").symlink_to(tree.parent / "outside" / "secret.txt")
    newer = (tree / "hello.txt").stat().st_mtime + 10
    os.utime(tree / "hello.txt.gz", (newer, newer))  # not stale: it would be chosen
    response = get(site(tree), "/files/hello.txt", {"Accept-Encoding": "gzip"})
    assert response.status == 403 and SECRET not in response.body


# -- Data -----------------------------------------------------------------------------------


def test_data_resource() -> None:
    top = Resource()
    top.putChild(b"d", Data(b"some data", "text/plain"))
    response = get(top, "/d")
    assert response.status == 200 and response.body == b"some data"
    assert response.header("Content-Type") == "text/plain"
    etag = response.header("ETag")
    assert etag
    assert get(top, "/d", {"If-None-Match": etag}).status == 304
    head = get(top, "/d", method="HEAD")
    assert head.body == b"" and head.header("Content-Length") == "9"


def test_data_etag_follows_the_data() -> None:
    data = Data(b"one", b"text/plain")
    top = Resource()
    top.putChild(b"d", data)
    first = get(top, "/d").header("ETag")
    data.data = b"two"
    second = get(top, "/d")
    assert second.body == b"two" and second.header("ETag") != first


# -- Request.sendfile and the connection's part -----------------------------------------


class SendsFile(Resource):
    isLeaf = True

    def __init__(self, data: bytes, length: bool = True) -> None:
        super().__init__()
        self.data = data
        self.length = length

    def render_GET(self, request: Request) -> object:
        if self.length:
            request.setHeader(b"content-length", b"%d" % 10)

        async def go() -> None:
            await request.sendfile(io.BytesIO(self.data), 5, 10)
            request.finish()

        asyncio.get_running_loop().create_task(go())
        from hive.server import NOT_DONE_YET

        return NOT_DONE_YET


@pytest.mark.parametrize("length", [True, False])
def test_sendfile_without_a_socket_copies(length: bool) -> None:
    response = get(SendsFile(bytes(range(100)), length), "/")
    assert response.body == bytes(range(5, 15))
    if not length:
        assert response.header("Transfer-Encoding") == "chunked"


def test_sendfile_of_a_short_file_closes_the_connection() -> None:
    async def go() -> Harness:
        harness = Harness(SendsFile(b"0123456"))
        harness.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await settle(20)
        return harness

    harness = asyncio.run(go())
    assert harness.transport.closed  # 2 bytes of 10: the client must not wait for more


def test_connection_sendfile_accounting() -> None:
    held: list[Request] = []

    class Hold(Resource):
        isLeaf = True

        def render_GET(self, request: Request) -> object:
            held.append(request)
            from hive.server import NOT_DONE_YET

            return NOT_DONE_YET

    harness = Harness(Hold())
    harness.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    (request,) = held
    connection = harness.connection
    assert not connection.can_sendfile()  # no head yet
    request.setHeader(b"content-length", b"4")
    request.write(b"")
    assert connection.can_sendfile() and connection.body_remaining == 4
    connection.body_sent_elsewhere(3)
    assert connection.body_remaining == 1 and connection.can_sendfile()
    request.write(b"x")
    assert not connection.can_sendfile()
    request.finish()
    assert not harness.transport.closed  # the length added up: the connection is kept


def test_no_sendfile_over_tls_or_chunked() -> None:
    held: list[Request] = []

    class Hold(Resource):
        isLeaf = True

        def render_GET(self, request: Request) -> object:
            held.append(request)
            from hive.server import NOT_DONE_YET

            return NOT_DONE_YET

    harness = Harness(Hold())
    harness.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    held[0].write(b"")  # no length: chunked
    assert not harness.connection.can_sendfile()
    secure = Harness(Hold())
    secure.connection.secure = True
    secure.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    held[1].setHeader(b"content-length", b"4")
    held[1].write(b"")
    assert not secure.connection.can_sendfile()


def test_permission_denied_is_403(tree: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads every file")
    (tree / "hello.txt").chmod(0)
    try:
        assert get(site(tree), "/files/hello.txt").status == 403
    finally:
        (tree / "hello.txt").chmod(stat.S_IRUSR | stat.S_IWUSR)


def test_stale_precompressed_sibling_is_not_served(tree: Path) -> None:
    packed = tree / "style.css.gz"
    os.utime(packed, (1_000_000_000, 1_000_000_000))  # older than style.css
    response = get(site(tree), "/files/style.css", {"Accept-Encoding": "gzip"})
    assert response.header("Content-Encoding") is None
    assert response.body == (tree / "style.css").read_bytes()


def test_config_path_must_be_a_directory(tree: Path) -> None:
    from hive._config import Config, ConfigError

    assert Config(path=str(tree), workers=1).path == str(tree)
    with pytest.raises(ConfigError, match="path: not a directory"):
        Config(path=str(tree / "hello.txt"), workers=1)


def test_mime_files_given_keep_the_additions(tmp_path: Path) -> None:
    table = tmp_path / "mime.types"
    table.write_text("text/x-thing  thing\n")
    types = loadMimeTypes([str(table), str(tmp_path / "missing.types")])
    assert types[".thing"] == "text/x-thing" and types[".js"] == "text/javascript"
