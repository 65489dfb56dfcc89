"""hive behind a real nginx: the links, redirects, streams and client addresses a client
of ``https://example.org/app/`` sees.

nginx (Debian's package, installed by ``make tools``) runs ``ops/nginx.conf`` itself, its
loopback ports, certificate and hive's addresses put in, TLS ending at nginx, in front of
``hive run tests.behind_proxy:root`` over a unix socket and over TCP (one nginx for each).
The client connects from 127.0.0.5 and sends ``Host: example.org``, as if nginx were at
example.org:443; every URL hive gives back is followed through nginx (never resolved:
example.org is only a name here).  nginx reaches hive from 127.0.0.1, the one trusted
proxy; direct requests come from 127.0.0.9.  Beside the ops file's /app/: /std/ sends the
standard Forwarded header, /vm/ goes through VHostMonsterResource, and /legacy/ strips its
prefix without saying so, for a hive with --root-path.
"""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest

from tests import nginx
from tests.integration.conftest import ROOT, HiveProcess, make_certificate

pytestmark = pytest.mark.skipif(
    nginx.executable() is None, reason="nginx is not installed (make tools installs it)"
)

CLIENT = "127.0.0.5"
DIRECT = "127.0.0.9"
OPS_CONF = ROOT / "ops" / "nginx.conf"
TIMEOUT = 10.0

# Locations beside the ops file's /app/: the standard Forwarded header, and a proxy that
# strips its prefix without saying so (hive's --root-path).
EXTRA_LOCATIONS = """\
    location /std/ {
        proxy_pass http://hive/;
        proxy_http_version 1.1;
        proxy_set_header Host $host;
        proxy_set_header Forwarded "for=$remote_addr;proto=$scheme;host=\\"$http_host\\"";
        proxy_set_header X-Forwarded-Prefix /std;
        proxy_set_header X-Forwarded-For "";
        proxy_set_header X-Forwarded-Proto "";
        proxy_set_header X-Forwarded-Host "";
        proxy_set_header Connection "";
        proxy_redirect off;
    }

    location /vm/ {
        # Twisted's way: the scheme and host in the path, for VHostMonsterResource.
        proxy_pass http://hive/vhost/https/example.org:443/vm/;
        proxy_http_version 1.1;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header Connection "";
        proxy_redirect off;
    }

    location /legacy/ {
        proxy_pass http://hive_legacy/;
        proxy_http_version 1.1;
        proxy_set_header Host $http_host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_set_header Connection "";
        proxy_redirect off;
    }

"""


def substitute(text: str, old: str, new: str) -> str:
    """Replace ``old`` in the ops file, which must hold it: the test runs that file."""
    assert old in text, f"ops/nginx.conf no longer has {old!r}"
    return text.replace(old, new)


# -- the processes ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("nginx")


@pytest.fixture(scope="module")
def certificate(workdir: Path) -> tuple[Path, Path]:
    """A self-signed certificate for example.org and 127.0.0.1: (certificate, key)."""
    return make_certificate(workdir, "example.org")


@pytest.fixture(scope="module")
def files(workdir: Path) -> Path:
    tree = workdir / "files"
    (tree / "sub" / "deeper").mkdir(parents=True)
    (tree / "sub" / "a file.txt").write_text("in sub")
    (tree / "sub" / "deeper" / "b.txt").write_text("deeper down")
    return tree


@dataclass
class Hive:
    process: HiveProcess
    access_log: Path
    socket: Path

    @property
    def port(self) -> int:
        return self.process.port


def start_hive(workdir: Path, files: Path, name: str, *extra: str) -> Hive:
    sock = workdir / f"{name}.sock"
    log = workdir / f"{name}-access.log"
    process = HiveProcess(
        [
            "tests.behind_proxy:root",
            *("--bind", "127.0.0.1:0", "--bind", f"unix:{sock}"),
            *("--forwarded-allow", "127.0.0.1"),
            *("--access-log", str(log), "--log-format", "json"),
            *extra,
        ],
        env={"HIVE_TEST_FILES": str(files)},
    )
    process.wait_listening(2)
    return Hive(process, log, sock)


@pytest.fixture(scope="module")
def hive(workdir: Path, files: Path) -> Iterator[Hive]:
    server = start_hive(workdir, files, "hive")
    yield server
    server.process.stop()


@pytest.fixture(scope="module")
def legacy(workdir: Path, files: Path) -> Iterator[Hive]:
    """hive with ``root-path = "/legacy"`` from a config file."""
    config = workdir / "legacy.toml"
    config.write_text('root-path = "/legacy"\n')
    server = start_hive(workdir, files, "legacy", "--config", str(config))
    yield server
    server.process.stop()


@dataclass
class Front:
    """nginx as the client sees it: https://example.org (and http://) on loopback ports."""

    https_port: int
    http_port: int
    cafile: Path
    nginx: nginx.Nginx
    upstream: str

    def __post_init__(self) -> None:
        self.context = ssl.create_default_context(cafile=str(self.cafile))

    def connection(self, scheme: str = "https") -> http.client.HTTPConnection:
        if scheme == "https":
            return http.client.HTTPSConnection(
                "127.0.0.1",
                self.https_port,
                timeout=TIMEOUT,
                context=self.context,
                source_address=(CLIENT, 0),
            )
        return http.client.HTTPConnection(
            "127.0.0.1", self.http_port, timeout=TIMEOUT, source_address=(CLIENT, 0)
        )

    def fetch(
        self,
        url: str,
        method: str = "GET",
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        """``url`` (https://example.org..., or a path) through nginx, never elsewhere."""
        if url.startswith("/"):
            url = "https://example.org" + url
        parts = urlsplit(url)
        assert parts.hostname == "example.org", f"a link off the site: {url}"
        assert parts.scheme in ("http", "https"), url
        conn = self.connection(parts.scheme)
        try:
            target = parts.path + (f"?{parts.query}" if parts.query else "")
            conn.request(method, target, body, {"Host": parts.netloc, **(headers or {})})
            response = conn.getresponse()
            return Reply(url, response.status, response.headers, response.read())
        finally:
            conn.close()


@dataclass
class Reply:
    url: str
    status: int
    headers: Message
    body: bytes

    def json(self) -> Any:
        assert self.status == 200, (self.status, self.body[:300])
        return json.loads(self.body)

    def location(self) -> str:
        """Where the redirect leads, resolved against the URL asked for."""
        assert self.status in (301, 302, 303, 307, 308), (self.status, self.body[:300])
        return urljoin(self.url, str(self.headers["Location"]))


def nginx_http_block(
    upstream: str, hive: Hive, legacy: Hive, cert: Path, key: Path
) -> Callable[[list[int]], str]:
    """ops/nginx.conf with the test's ports, certificate and hive's addresses put in."""

    def http(ports: list[int]) -> str:
        conf = OPS_CONF.read_text()
        target = f"unix:{hive.socket}" if upstream == "unix" else f"127.0.0.1:{hive.port}"
        conf = substitute(conf, "server unix:/run/hive/hive.sock;", f"server {target};")
        listen = f"listen 127.0.0.1:{ports[0]} ssl;\n    listen 127.0.0.1:{ports[1]};"
        conf = substitute(conf, "listen 443 ssl;", listen)
        conf = substitute(conf, "/etc/ssl/example.org/fullchain.pem", str(cert))
        conf = substitute(conf, "/etc/ssl/example.org/privkey.pem", str(key))
        conf = substitute(conf, "    location /app/ {", EXTRA_LOCATIONS + "    location /app/ {")
        legacy_upstream = f"upstream hive_legacy {{\n    server 127.0.0.1:{legacy.port};\n}}\n"
        return legacy_upstream + conf

    return http


@pytest.fixture(scope="module", params=["unix", "tcp"])
def front(
    request: pytest.FixtureRequest,
    workdir: Path,
    hive: Hive,
    legacy: Hive,
    certificate: tuple[Path, Path],
) -> Iterator[Front]:
    upstream = request.param
    cert, key = certificate
    directory = workdir / f"nginx-{upstream}"
    directory.mkdir()
    server = nginx.Nginx(directory, nginx_http_block(upstream, hive, legacy, cert, key), 2)
    server.start()
    try:
        yield Front(server.ports[0], server.ports[1], cert, server, upstream)
    finally:
        server.stop()


# -- links -------------------------------------------------------------------------------


def test_every_link_is_the_clients(front: Front) -> None:
    seen = front.fetch("https://example.org/app/seen").json()
    assert seen["pre_path_url"] == "https://example.org/app/seen"
    assert seen["child"] == "https://example.org/app/seen/next"
    assert seen["sibling"] == "https://example.org/app/other"
    assert seen["hostname"] == "example.org" and seen["host"] == ["example.org", 443]
    assert seen["secure"] is True
    assert seen["client"] == [CLIENT, 0] and seen["client_ip"] == CLIENT
    assert seen["prepath"] == ["app", "seen"] and seen["sitepath"] == ["app"]
    # hive received the path without the prefix, and the access logs say so.
    assert seen["uri"] == "/seen"
    assert front.fetch(seen["child"]).json()["postpath"] == ["next"]
    # The site's root, /app/ itself.
    assert front.fetch("https://example.org/app/").json()["pre_path_url"] == (
        "https://example.org/app/"
    )


def test_links_keep_the_port_and_scheme_the_client_used(front: Front) -> None:
    seen = front.fetch("https://example.org:8443/app/seen").json()
    assert seen["pre_path_url"] == "https://example.org:8443/app/seen"
    assert seen["host"] == ["example.org", 8443]
    plain = front.fetch("http://example.org/app/seen").json()
    assert plain["pre_path_url"] == "http://example.org/app/seen" and plain["secure"] is False
    assert plain["host"] == ["example.org", 80]


def test_redirects_lead_to_the_clients_urls(front: Front) -> None:
    built = front.fetch("/app/redirect/urlpath")
    assert built.headers["Location"] == "https://example.org/app/seen"
    assert front.fetch(built.location()).json()["prepath"] == ["app", "seen"]

    relative = front.fetch("/app/redirect/relative")
    assert relative.headers["Location"] == "../seen/from-relative"
    assert relative.location() == "https://example.org/app/seen/from-relative"
    assert front.fetch(relative.location()).status == 200

    moved = front.fetch("/app/moved?x=1")  # Redirect(b"seen/from-moved")
    assert moved.headers["Location"] == "seen/from-moved"
    assert moved.location() == "https://example.org/app/seen/from-moved"
    assert front.fetch(moved.location()).status == 200

    parent = front.fetch("/app/parent/up/below?q=1")  # ParentRedirect
    assert parent.headers["Location"] == "https://example.org/app/parent/"
    assert front.fetch(parent.location()).json()["prepath"] == ["app", "parent", ""]


def test_directories_redirect_and_list_under_the_prefix(front: Front) -> None:
    moved = front.fetch("/app/files/sub?sort=name")
    assert moved.headers["Location"] == "/app/files/sub/?sort=name"
    listing = front.fetch(moved.location())
    assert listing.status == 200
    page = listing.body.decode()
    assert "Directory listing for /app/files/sub/" in page
    hrefs = re.findall(r'href="([^"]+)"', page)
    assert sorted(hrefs) == ["a%20file.txt", "deeper/"]
    assert front.fetch(urljoin(listing.url, "a%20file.txt")).body == b"in sub"
    deeper = front.fetch(urljoin(listing.url, "deeper/"))
    assert "Directory listing for /app/files/sub/deeper/" in deeper.body.decode()
    assert front.fetch(urljoin(deeper.url, "b.txt")).body == b"deeper down"


def test_wsdl_address_and_zeep_through_nginx(front: Front) -> None:
    zeep = pytest.importorskip("zeep")
    import requests.adapters
    from requests.models import PreparedRequest, Response

    wsdl = front.fetch("/app/soap?wsdl")
    address = re.search(rb'address location="([^"]+)"', wsdl.body)
    assert address is not None and address.group(1) == b"https://example.org/app/soap"

    cafile = str(front.cafile)

    Timeout = float | tuple[float | None, float | None] | None

    class ToNginx(requests.adapters.HTTPAdapter):
        """https://example.org/... goes to nginx on loopback, Host kept."""

        def send(
            self,
            request: PreparedRequest,
            stream: bool = False,
            timeout: Timeout = None,
            verify: bool | str = True,
            cert: str | tuple[str, str] | None = None,
            proxies: dict[str, str] | None = None,
        ) -> Response:
            parts = urlsplit(request.url)
            assert parts.hostname == "example.org", request.url
            request.headers["Host"] = parts.netloc
            query = f"?{parts.query}" if parts.query else ""
            request.url = f"https://127.0.0.1:{front.https_port}{parts.path}{query}"
            return super().send(request, stream, timeout, cafile, cert, proxies)

        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs, source_address=(CLIENT, 0))

    class Refuse(requests.adapters.BaseAdapter):
        def send(
            self,
            request: PreparedRequest,
            stream: bool = False,
            timeout: Timeout = None,
            verify: bool | str = True,
            cert: str | tuple[str, str] | None = None,
            proxies: dict[str, str] | None = None,
        ) -> Response:
            raise AssertionError(f"zeep went off the site: {request.url!r}")

        def close(self) -> None:
            pass

    session = requests.Session()
    session.mount("http://", Refuse())
    session.mount("https://", Refuse())
    session.mount("https://example.org/", ToNginx())
    transport = zeep.transports.Transport(session=session, timeout=10, operation_timeout=10)
    client = zeep.Client("https://example.org/app/soap?wsdl", transport=transport)
    # zeep calls the address the WSDL gives: through nginx again.
    assert client.service.greet("nginx") == "hello nginx"
    assert client.service.client() == CLIENT


def test_wsgi_environ_and_flask_urls(front: Front) -> None:
    environ = front.fetch("/app/wsgi/").json()
    assert environ["SCRIPT_NAME"] == "/app/wsgi" and environ["PATH_INFO"] == "/"
    assert environ["url_scheme"] == "https"
    assert environ["HTTP_HOST"] == "example.org" and environ["SERVER_NAME"] == "example.org"
    assert environ["SERVER_PORT"] == "443"
    assert environ["REMOTE_ADDR"] == CLIENT
    assert environ["request_uri"] == "https://example.org/app/wsgi/"
    assert environ["url_for"] == "https://example.org/app/wsgi/page"
    assert front.fetch(environ["url_for"]).body == b"flask page"
    go = front.fetch("/app/wsgi/go")
    assert go.headers["Location"] == "/app/wsgi/page"
    assert front.fetch(go.location()).body == b"flask page"


def test_asgi_root_path_and_fastapi_urls(front: Front) -> None:
    seen = front.fetch("/app/asgi/").json()
    assert seen["root_path"] == "/app/asgi" and seen["path"] == "/app/asgi/"
    assert seen["scheme"] == "https" and seen["server"] == ["example.org", 443]
    assert seen["client"] == [CLIENT]
    assert seen["url"] == "https://example.org/app/asgi/"
    assert seen["url_for"] == "https://example.org/app/asgi/page"
    assert front.fetch(seen["url_for"]).body == b'"fastapi page"'
    go = front.fetch("/app/asgi/go")
    assert go.headers["Location"] == "https://example.org/app/asgi/page"
    assert front.fetch(go.location()).body == b'"fastapi page"'


# -- the client's address ----------------------------------------------------------------------


def wait_for(check: Any, what: str, timeout: float = TIMEOUT) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"not seen in {timeout} s: {what}")


def test_the_client_in_both_access_logs(front: Front, hive: Hive) -> None:
    token = uuid.uuid4().hex
    assert front.fetch(f"/app/seen?token={token}").json()["client_ip"] == CLIENT

    def hive_record() -> dict[str, Any] | None:
        lines = hive.access_log.read_text().splitlines() if hive.access_log.exists() else []
        records = [json.loads(line) for line in lines if token in line]
        return records[0] if records else None

    record = wait_for(hive_record, "the request in hive's access log")
    assert record["client"] == CLIENT and record["uri"] == f"/seen?token={token}"
    line = wait_for(
        lambda: [line for line in front.nginx.access_lines() if token in line],
        "the request in nginx's access log",
    )[0]
    assert line.startswith(f'{CLIENT} "GET /app/seen?token={token} HTTP/1.1" 200 ')


def test_a_clients_own_forwarding_headers_are_not_believed(front: Front) -> None:
    forged = {
        "Forwarded": "for=6.6.6.6;proto=http;host=evil.example",
        "X-Forwarded-For": "6.6.6.6",
        "X-Forwarded-Proto": "http",
        "X-Forwarded-Host": "evil.example",
        "X-Forwarded-Prefix": "/evil",
    }
    seen = front.fetch("/app/seen", headers=forged).json()
    assert seen["client"] == [CLIENT, 0]
    assert seen["pre_path_url"] == "https://example.org/app/seen"


def test_the_standard_forwarded_header(front: Front) -> None:
    seen = front.fetch("/std/seen", headers={"X-Forwarded-Host": "evil.example"}).json()
    assert seen["pre_path_url"] == "https://example.org/std/seen"
    assert seen["client"] == [CLIENT, 0] and seen["secure"] is True
    assert front.fetch("http://example.org/std/seen").json()["pre_path_url"] == (
        "http://example.org/std/seen"
    )


def test_root_path_for_a_proxy_that_does_not_say_its_prefix(front: Front) -> None:
    # nginx passes the client's X-Forwarded-Prefix on here: with root-path hive ignores it.
    seen = front.fetch("/legacy/seen", headers={"X-Forwarded-Prefix": "/evil"}).json()
    assert seen["pre_path_url"] == "https://example.org/legacy/seen"
    assert seen["prepath"] == ["legacy", "seen"] and seen["client"] == [CLIENT, 0]
    moved = front.fetch("/legacy/files/sub")
    assert moved.headers["Location"] == "/legacy/files/sub/"
    assert b"Directory listing for /legacy/files/sub/" in front.fetch(moved.location()).body
    assert front.fetch("/legacy/wsgi/").json()["url_for"] == (
        "https://example.org/legacy/wsgi/page"
    )


def test_vhost_monster_behind_nginx(front: Front) -> None:
    seen = front.fetch("/vm/seen", headers={"X-Forwarded-Host": "evil.example"}).json()
    assert seen["pre_path_url"] == "https://example.org/vm/seen"
    assert seen["host"] == ["example.org", 443] and seen["secure"] is True
    assert seen["client"] == [CLIENT, 0]
    # Served from the root, as the path after the host says: sitepath is the root's.
    assert seen["prepath"] == ["vm", "seen"] and seen["sitepath"] == []
    assert seen["uri"] == "/vm/seen"
    moved = front.fetch("/vm/files/sub")
    assert moved.headers["Location"] == "/vm/files/sub/"
    assert b"Directory listing for /vm/files/sub/" in front.fetch(moved.location()).body
    parent = front.fetch("/vm/parent/up/x")
    assert parent.headers["Location"] == "https://example.org/vm/parent/"
    environ = front.fetch("/vm/wsgi/").json()
    assert environ["request_uri"] == "https://example.org/vm/wsgi/"
    assert environ["url_for"] == "https://example.org/vm/wsgi/page"


def test_a_digest_login_under_the_prefix(front: Front) -> None:
    """curl hashes the target it sent (/app/private/?x=1); hive, which received
    /private/?x=1, checks it against the prefix and that."""
    url = f"https://example.org:{front.https_port}/app/private/?x=1"
    result = subprocess.run(
        [
            *("curl", "-s", "--noproxy", "*", "--max-time", str(TIMEOUT)),
            *("--cacert", str(front.cafile), "--interface", CLIENT),
            *("--resolve", f"example.org:{front.https_port}:127.0.0.1"),
            *("--digest", "-u", "joe:blow", "-w", "\n%{http_code}", url),
        ],
        capture_output=True,
        text=True,
        timeout=TIMEOUT * 2,
    )
    body, _, status = result.stdout.rpartition("\n")
    assert (status, body) == ("200", "hello joe"), result


def direct(port: int, target: str, headers: dict[str, str], source: str = DIRECT) -> Any:
    conn = http.client.HTTPConnection(
        "127.0.0.1", port, timeout=TIMEOUT, source_address=(source, 0)
    )
    try:
        conn.request("GET", target, headers=headers)
        response = conn.getresponse()
        assert response.status == 200
        return json.loads(response.read())
    finally:
        conn.close()


def test_requests_not_from_the_proxy_get_no_prefix(hive: Hive, legacy: Hive) -> None:
    forged = {
        "Host": "hive.internal:8080",
        "X-Forwarded-For": "6.6.6.6",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "evil.example",
        "X-Forwarded-Prefix": "/evil",
        "Forwarded": "for=6.6.6.6;proto=https;host=evil.example",
    }
    for server in (hive, legacy):
        seen = direct(server.port, "/seen", forged)
        assert seen["client"][0] == DIRECT
        assert seen["pre_path_url"] == f"http://hive.internal:{server.port}/seen"
        assert seen["prepath"] == ["seen"] and seen["secure"] is False
    # From the trusted address, with no headers, the configured prefix applies.
    assert direct(legacy.port, "/seen", {}, source="127.0.0.1")["prepath"] == ["legacy", "seen"]


# -- WebSocket -------------------------------------------------------------------------------


def test_websocket_through_nginx(front: Front) -> None:
    """The handshake passes nginx (ops/nginx.conf's Upgrade and Connection headers), the
    Origin check sees the client's host, and messages go both ways."""
    websockets = pytest.importorskip("websockets")

    async def go(authority: str) -> dict[str, Any]:
        async with websockets.connect(
            f"wss://{authority}/app/ws",
            origin=f"https://{authority}",
            ssl=front.context,
            host="127.0.0.1",
            port=front.https_port,
            local_addr=(CLIENT, 0),
            proxy=None,
            open_timeout=TIMEOUT,
        ) as ws:
            seen: dict[str, Any] = json.loads(await ws.recv())
            await ws.send("héllo")
            assert await ws.recv() == "héllo"
            await ws.send(b"\x00\xff" * 5000)
            assert await ws.recv() == b"\x00\xff" * 5000
            return seen

    seen = asyncio.run(asyncio.wait_for(go("example.org"), 30))
    assert seen == {
        "client": CLIENT,
        "secure": True,
        "pre_path_url": "https://example.org/app/ws",
    }
    # The same origin on another port: X-Forwarded-Host carries it to the check.
    seen = asyncio.run(asyncio.wait_for(go("example.org:8443"), 30))
    assert seen["pre_path_url"] == "https://example.org:8443/app/ws"


# -- streams and bodies ------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/app/stream/events", "/app/events?accel=no"])
def test_a_stream_reaches_the_client_as_written(front: Front, path: str) -> None:
    """The first chunk arrives while hive still holds the response open: nginx did not
    wait for the end (buffering off in /app/stream/, or X-Accel-Buffering: no)."""
    gate = uuid.uuid4().hex
    separator = "&" if "?" in path else "?"
    conn = front.connection()
    try:
        conn.request("GET", f"{path}{separator}gate={gate}", headers={"Host": "example.org"})
        response = conn.getresponse()
        assert response.status == 200
        assert response.readline() == b"first\n"
        released = front.fetch(f"/app/stream/release?gate={gate}")
        assert released.body == b"released"
        assert response.read() == b"second\n"
    finally:
        conn.close()


def test_request_bodies(front: Front) -> None:
    form = front.fetch(
        "/app/echo",
        "POST",
        b"name=h%C3%A9&name=two&x=1",
        {"Content-Type": "application/x-www-form-urlencoded"},
    ).json()
    assert form["form"] == {"name": ["hé".encode().decode("latin-1"), "two"], "x": ["1"]}
    body = os.urandom(3 << 20)
    echoed = front.fetch("/app/echo", "POST", body, {"Content-Type": "application/octet-stream"})
    assert echoed.json() == {
        "length": len(body),
        "sha256": hashlib.sha256(body).hexdigest(),
        "form": {},
    }
    # A chunked body: nginx reads it whole and sends it on with a length.
    conn = front.connection()
    try:
        conn.request(
            "POST",
            "/app/echo",
            iter([b"abc", b"defg"]),
            {"Host": "example.org"},
            encode_chunked=True,
        )
        chunked = json.loads(conn.getresponse().read())
    finally:
        conn.close()
    assert chunked["length"] == 7 and chunked["sha256"] == hashlib.sha256(b"abcdefg").hexdigest()


def test_a_request_body_reaches_hive_as_it_arrives(front: Front) -> None:
    """Half a body sent, hive has read some of it (nginx passes it on unbuffered in
    /app/stream/); then the rest, and the digest of the whole."""
    name = uuid.uuid4().hex
    body = os.urandom(2 << 20)
    half = len(body) // 2

    def progress() -> int:
        return int(front.fetch(f"/app/stream/progress?name={name}").body)

    with (
        socket.create_connection(("127.0.0.1", front.https_port), TIMEOUT, (CLIENT, 0)) as raw,
        front.context.wrap_socket(raw, server_hostname="example.org") as tls,
    ):
        tls.sendall(
            f"POST /app/stream/upload?name={name} HTTP/1.1\r\nHost: example.org\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body[:half]
        )
        wait_for(lambda: progress() > 0, "part of the body read by hive")
        assert progress() <= half
        tls.sendall(body[half:])
        response = http.client.HTTPResponse(tls)
        response.begin()
        assert json.loads(response.read()) == {
            "length": len(body),
            "sha256": hashlib.sha256(body).hexdigest(),
        }


# -- --root-path settings -------------------------------------------------------------------


def run_hive(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hive", "run", "tests.behind_proxy:root", *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )


def test_root_path_settings_are_checked() -> None:
    alone = run_hive("--bind", "127.0.0.1:0", "--root-path", "/app")
    assert alone.returncode == 1
    assert alone.stderr.strip() == (
        "hive: error: root_path: applies to requests from the proxies in forwarded_allow;"
        " give forwarded_allow too"
    )
    bad = run_hive(
        "--bind", "127.0.0.1:0", "--forwarded-allow", "127.0.0.1", env={"HIVE_ROOT_PATH": "app?x"}
    )
    assert bad.returncode == 1
    assert bad.stderr.strip() == (
        "hive: error: root_path: must be a path prefix such as /app, got 'app?x'"
    )
