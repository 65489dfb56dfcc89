"""Twisted's own teaching programs, ported by the README's mechanical mapping and run for real.

Every program of "Twisted Web in 60 seconds" (docs/web/howto/web-in-60) and of
docs/web/examples in Twisted's repository is a file in tests/integration/tutorial/, changed
only as the README's porting guide says (twisted.web imports to hive, the lines that start
the reactor serving removed, ``hive run`` naming what they served).  Each is served by a
real ``hive run`` (``hive run --path DIR --scripts`` for .rpy files) and checked with real
clients (http.client, xmlrpc.client, curl, Twisted's own clients) for what its lesson says
it does.  Programs that call the internet get a local peer on 127.0.0.1
(tests/integration/tutorial_peers.py, served by hive) in place of the remote host.

The lessons of HTTP authentication and sessions (http-auth, session-basics,
session-store, session-endings, examples/webguard.py) are tested with hive.cred.

| program | status | what is checked |
| --- | --- | --- |
| static-content | runs | a file under /tmp and the directory listing |
| static-content, ``twistd web --path /tmp`` | runs (``hive run --path /tmp``) | the same file |
| dynamic-content | runs | the clock page, text/html by default |
| static-dispatch | runs | /foo lists and serves /tmp; /baz lists /opt; /bar (/lost+found) |
| dynamic-dispatch | runs | /2009 is 2009's calendar; /foo is a 500 (int() fails), as in Twisted |
| error-handling | runs | /2009; /foo is hive.pages.notFound's 404 page |
| custom-codes | runs | /buy is 402 with its page |
| handling-posts | runs | the form; a POSTed field comes back escaped |
| other-request-bodies | runs | the raw POST body comes back escaped |
| rpy-scripts | runs (``--path --scripts``) | example.rpy's clock page |
| asynchronous | runs | reactor.callLater: 5 s per request, two requests in parallel |
| asynchronous-deferred | runs | deferLater: as above |
| interrupted | runs | notifyFinish().addErrback: a client that leaves early; the worker goes on |
| logging-errors | runs | the errback's twisted.python.log.err message reaches hive's error log |
| access-logging | runs | Site(logPath, proxiedLogFormatter): X-Forwarded-For's client |
| access-logging, ``twistd web --logfile`` | runs (``--access-log``) | the line in the file |
| wsgi | runs | WSGIResource(reactor, reactor.getThreadPool(), app) in an .rpy |
| wsgi, ``twistd web --wsgi foo.application`` | runs (``--wsgi``) | Hello, world! |
| examples/advogato.py | runs | Twisted's xmlrpc.Proxy logs in and posts a diary to a local peer |
| examples/dlpage.py | fails on Twisted 26.10 too | ImportError: downloadPage is gone |
| examples/fortune.rpy | runs | getProcessOutput: /usr/games/fortune's output in the page |
| examples/getpage.py | fails on Twisted 26.10 too | ImportError: getPage is gone |
| examples/hello.rpy | runs | static.Data with a str media type |
| examples/httpclient.py | runs | Twisted's Agent reads a page hive serves |
| examples/logging-proxy.py | runs | curl -x; its log line (Twisted: KeyError, a str key) |
| examples/proxy.py | runs | curl -x through hive to a local upstream |
| examples/report.rpy | runs | path, host, port, security and URI of the request |
| examples/reverse-proxy.py | runs | ReverseProxyResource to a local peer, not example.com |
| examples/rootscript.py | runs | a str addHost (no match on Twisted); VHostMonster |
| examples/simple.rtl | runs (Quixote) | ResourceTemplate renders it (tests/unit/test_script.py) |
| examples/silly-web.py | fails: no hive.distrib | hive run exits with the ImportError |
| examples/users.rpy | fails: no hive.distrib | 500, the ImportError in the log |
| examples/web.py | runs | .cgi, .epy and .rpy processors; VHostMonster's https URLs |
| examples/xmlrpc-debug.py | runs | QueryFactory.parseResponse prints a local peer's raw answer |
| examples/xmlrpcclient.py | runs | test.sumprod and test.capitalize on a local peer |
| examples/xmlrpcserver.py | runs | every method through xmlrpc.client, the Deferred ones included |
"""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
import xmlrpc.client
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import ROOT, HiveProcess

TUTORIAL = Path(__file__).parent / "tutorial"
RPY = [
    "rpy_scripts.rpy",
    "asynchronous.rpy",
    "asynchronous_deferred.rpy",
    "interrupted.rpy",
    "logging_errors.rpy",
    "wsgi.rpy",
    "fortune.rpy",
    "hello.rpy",
    "report.rpy",
    "users.rpy",
]
FORTUNE = "/usr/games/fortune"


def serve(*args: str, cwd: Path = TUTORIAL, workers: int = 1) -> HiveProcess:
    process = HiveProcess([*args, "--bind", "127.0.0.1:0", "--workers", str(workers)], cwd=cwd)
    process.wait_listening()
    return process


@pytest.fixture
def hive() -> Iterator[list[HiveProcess]]:
    """Processes started in a test; stopped after it."""
    started: list[HiveProcess] = []
    yield started
    for process in started:
        process.stop()


def start(started: list[HiveProcess], *args: str, cwd: Path = TUTORIAL) -> HiveProcess:
    process = serve(*args, cwd=cwd)
    started.append(process)
    return process


def fetch(
    port: int,
    path: str,
    method: str = "GET",
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 20.0,
) -> tuple[int, http.client.HTTPMessage, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


def run_program(path: Path, *args: str, stdin: str = "", timeout: float = 30.0) -> str:
    """Run a Twisted client program as a user would (python program.py ...)."""
    done = subprocess.run(
        [sys.executable, str(path), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=path.parent,
        start_new_session=True,  # no controlling terminal: getpass reads stdin
    )
    return done.stdout + done.stderr


def with_peer(tmp_path: Path, name: str, remote: str, local: str) -> Path:
    """``name`` from the corpus with its internet URL replaced by a local peer's."""
    text = (TUTORIAL / name).read_text()
    assert remote in text, remote
    program = tmp_path / name
    program.write_text(text.replace(remote, local))
    return program


@pytest.fixture
def tmp_file() -> Iterator[Path]:
    """A file in /tmp, which several lessons serve."""
    path = Path("/tmp") / f"hive-tutorial-{uuid.uuid4().hex}.txt"
    path.write_bytes(b"served from /tmp\n")
    yield path
    path.unlink(missing_ok=True)


# -- the lessons --------------------------------------------------------------------------------


def test_static_content(hive: list[HiveProcess], tmp_file: Path) -> None:
    server = start(hive, "static_content:factory")
    status, _, body = fetch(server.port, "/" + tmp_file.name)
    assert (status, body) == (200, b"served from /tmp\n")
    status, _headers, listing = fetch(server.port, "/")
    assert status == 200 and tmp_file.name.encode() in listing
    # The lesson's bonus: twistd -n web --path /tmp
    bonus = start(hive, "--path", "/tmp")
    assert fetch(bonus.port, "/" + tmp_file.name)[2] == b"served from /tmp\n"


def test_dynamic_content(hive: list[HiveProcess]) -> None:
    server = start(hive, "dynamic_content:factory")
    status, headers, body = fetch(server.port, "/")
    assert status == 200
    assert headers["Content-Type"] == "text/html"  # Request.defaultContentType
    assert time.strftime("%Y").encode() in body and b"<body>" in body


def test_static_dispatch(hive: list[HiveProcess], tmp_file: Path) -> None:
    server = start(hive, "static_dispatch:factory")
    assert fetch(server.port, "/foo/" + tmp_file.name)[2] == b"served from /tmp\n"
    status, _, listing = fetch(server.port, "/foo/")
    assert status == 200 and tmp_file.name.encode() in listing
    if os.path.isdir("/opt"):
        assert fetch(server.port, "/baz/")[0] == 200
    expected = 200 if os.path.isdir("/lost+found") else 404
    assert fetch(server.port, "/bar/")[0] in (expected, 403)


def test_dynamic_dispatch(hive: list[HiveProcess]) -> None:
    server = start(hive, "dynamic_dispatch:factory")
    status, _, body = fetch(server.port, "/2009")
    assert status == 200 and b"2009" in body and b"January" in body
    # "punts on error handling": int("foo") raises, a 500 as on Twisted.
    assert fetch(server.port, "/foo")[0] == 500


def test_error_handling(hive: list[HiveProcess]) -> None:
    server = start(hive, "error_handling:factory")
    assert b"2009" in fetch(server.port, "/2009")[2]
    status, _, body = fetch(server.port, "/foo")
    assert status == 404 and b"No Such Resource" in body


def test_custom_codes(hive: list[HiveProcess]) -> None:
    server = start(hive, "custom_codes:factory")
    status, _, body = fetch(server.port, "/buy")
    assert status == 402 and body == b"<html><body>Please swipe your credit card.</body></html>"


def test_handling_posts_and_other_bodies(hive: list[HiveProcess]) -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    posts = start(hive, "handling_posts:factory")
    assert b"<form method='POST'>" in fetch(posts.port, "/form")[2]
    body = fetch(posts.port, "/form", "POST", b"the-field=%3Cb%3Ehi%3C%2Fb%3E", form)[2]
    assert body.endswith(b"You submitted: &lt;b&gt;hi&lt;/b&gt;")
    raw = start(hive, "other_request_bodies:factory")
    body = fetch(raw.port, "/form", "POST", b'{"a": "<b>"}', {"Content-Type": "text/json"})[2]
    assert body.endswith(b"You submitted: {&quot;a&quot;: &quot;&lt;b&gt;&quot;}")


@pytest.fixture(scope="module")
def scripts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HiveProcess]:
    """The .rpy lessons and examples in one directory: twistd -n web --path DIR."""
    directory = tmp_path_factory.mktemp("rpy")
    for name in RPY:
        shutil.copy(TUTORIAL / name, directory / name)
    shutil.copy(TUTORIAL / "rpy_scripts.rpy", directory / "example.rpy")
    server = serve("--path", str(directory), "--scripts", cwd=directory)
    yield server
    server.stop()


def test_rpy_script(scripts: HiveProcess) -> None:
    status, headers, body = fetch(scripts.port, "/example.rpy")
    assert status == 200 and time.strftime("%Y").encode() in body
    assert headers["Content-Type"] == "text/html"


@pytest.mark.parametrize("name", ["asynchronous.rpy", "asynchronous_deferred.rpy"])
def test_asynchronous_lessons_wait_five_seconds_each_in_parallel(
    scripts: HiveProcess, name: str
) -> None:
    results: list[tuple[int, bytes, float]] = []

    def one() -> None:
        began = time.monotonic()
        status, _, body = fetch(scripts.port, "/" + name)
        results.append((status, body, time.monotonic() - began))

    threads = [threading.Thread(target=one) for _ in range(2)]
    began = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    total = time.monotonic() - began
    assert len(results) == 2
    for status, body, took in results:
        assert status == 200 and body == b"<html><body>Sorry to keep you waiting.</body></html>"
        assert took >= 4.9
    assert total < 9.5  # the second request did not wait for the first


def interrupt(port: int, path: str, after: float = 1.0) -> None:
    """A client that asks for ``path`` and goes away before the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        time.sleep(after)


def test_interrupted_and_logging_errors(scripts: HiveProcess) -> None:
    interrupt(scripts.port, "/interrupted.rpy")
    interrupt(scripts.port, "/logging_errors.rpy")
    # logging-errors: the errback ran, with the Failure of the lost connection.
    line = scripts.wait_for_output("Async response demo interrupted response")
    assert "twisted" in line
    scripts.wait_for_output("ConnectionLost")
    # Both still answer a patient client.
    assert fetch(scripts.port, "/interrupted.rpy")[2].startswith(b"<html><body>Sorry")


def test_access_logging(hive: list[HiveProcess], tmp_file: Path) -> None:
    log = Path("/tmp/access-logging-demo.log")
    before = log.stat().st_size if log.exists() else 0
    server = start(hive, "access_logging:factory")
    marker = uuid.uuid4().hex
    headers = {"X-Forwarded-For": "203.0.113.9, 10.0.0.1", "User-Agent": marker}
    assert fetch(server.port, "/" + tmp_file.name, headers=headers)[0] == 200
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        text = log.read_bytes()[before:].decode() if log.exists() else ""
        lines = [line for line in text.splitlines() if marker in line]
        if lines:
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"no line in {log}: {server.output()}")
    (line,) = lines
    assert line.startswith('"203.0.113.9" - - [')
    assert f'"GET /{tmp_file.name} HTTP/1.1" 200 17 "-" "{marker}"' in line
    # Nothing of it on standard output, the --access-log default.
    assert not any(marker in out for out in server.stdout_lines)


def test_access_logging_logfile(hive: list[HiveProcess], tmp_file: Path, tmp_path: Path) -> None:
    # twistd -n web --logfile FILE (--path /tmp) is hive run --path /tmp --access-log FILE.
    log = tmp_path / "access.log"
    server = start(hive, "--path", "/tmp", "--access-log", str(log))
    fetch(server.port, "/" + tmp_file.name)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and tmp_file.name not in log.read_text():
        time.sleep(0.1)
    assert f'"GET /{tmp_file.name} HTTP/1.1" 200 17' in log.read_text()


def test_wsgi_rpy_and_wsgi_flag(scripts: HiveProcess, hive: list[HiveProcess]) -> None:
    status, headers, body = fetch(scripts.port, "/wsgi.rpy")
    assert (status, body, headers["Content-Type"]) == (200, b"Hello, world!", "text/plain")
    server = start(hive, "--wsgi", "wsgi_foo:application")
    assert fetch(server.port, "/anything")[2] == b"Hello, world!"


# -- the examples -------------------------------------------------------------------------------


def test_fortune_rpy(scripts: HiveProcess) -> None:
    assert os.access(FORTUNE, os.X_OK), "fortune-mod is not installed (make tools installs it)"
    status, _, body = fetch(scripts.port, "/fortune.rpy")
    assert status == 200 and body.startswith(b"<pre>\n")
    assert len(body.strip()) > len(b"<pre>")  # the program's output
    assert b"Failure" not in body


def test_hello_rpy(scripts: HiveProcess) -> None:
    status, headers, body = fetch(scripts.port, "/hello.rpy")
    assert status == 200 and headers["Content-Type"] == "text/html"
    assert b"<H1>Hello World, It is Now" in body and b"<LI>9" in body


def test_report_rpy(scripts: HiveProcess) -> None:
    status, _, body = fetch(scripts.port, "/report.rpy?x=1")
    text = body.decode()
    assert status == 200
    assert "The path to me is b'/report.rpy'" in text
    assert "The host I'm on is 127.0.0.1" in text
    assert f"The port I'm on is {scripts.port}" in text
    assert "I was accessed insecurely" in text
    assert f"A URL to me is b'http://127.0.0.1:{scripts.port}/report.rpy'" in text
    assert "My URI to me is b'/report.rpy?x=1'" in text


def test_users_rpy_fails_clearly(scripts: HiveProcess) -> None:
    status, _, _ = fetch(scripts.port, "/users.rpy/ada/")
    assert status == 500
    scripts.wait_for_output("cannot import name 'distrib'")


def test_silly_web_fails_clearly() -> None:
    process = HiveProcess(["silly_web:site", "--bind", "127.0.0.1:0"], cwd=TUTORIAL)
    try:
        assert process.wait(30) != 0
    finally:
        process.stop()
    assert "cannot import name 'distrib'" in process.output()


def test_xmlrpcserver() -> None:
    server = serve("xmlrpcserver:Echoer")
    try:
        with xmlrpc.client.ServerProxy(f"http://127.0.0.1:{server.port}/") as proxy:
            assert proxy.echo("lala", 4, [1, 2]) == ["lala", 4, [1, 2]]
            assert proxy.hello() == "hello, world!"
            assert proxy.defer() == "hello"  # a fired Deferred
            with pytest.raises(xmlrpc.client.Fault) as failed:
                proxy.defer_fail()  # defer.fail(12): not an exception
            assert failed.value.faultCode == 8002
            with pytest.raises(xmlrpc.client.Fault) as fault:
                proxy.fail()
            assert (fault.value.faultCode, fault.value.faultString) == (7, "Out of cheese.")
    finally:
        server.stop()


@pytest.fixture(scope="module")
def peer() -> Iterator[HiveProcess]:
    """The local stand-in for advogato.org and bugzilla.redhat.com."""
    server = serve("tests.integration.tutorial_peers:root", cwd=ROOT)
    yield server
    server.stop()


def test_xmlrpcclient(peer: HiveProcess, tmp_path: Path) -> None:
    local = f"http://127.0.0.1:{peer.port}/XMLRPC"
    program = with_peer(tmp_path, "xmlrpcclient.py", "http://advogato.org/XMLRPC", local)
    output = run_program(program)
    assert "[7, 10]" in output and "'Moshe Zadka'" in output, output


def test_xmlrpc_debug(peer: HiveProcess, tmp_path: Path) -> None:
    local = f"http://127.0.0.1:{peer.port}/xmlrpc.cgi"
    remote = "https://bugzilla.redhat.com/xmlrpc.cgi"
    output = run_program(with_peer(tmp_path, "xmlrpc_debug.py", remote, local))
    assert "<methodResponse>" in output and "{'version': '5.0.4'}" in output, output


def test_advogato(peer: HiveProcess, tmp_path: Path) -> None:
    local = f"http://127.0.0.1:{peer.port}/XMLRPC"
    program = with_peer(tmp_path, "advogato.py", "http://advogato.org/XMLRPC", local)
    entry = tmp_path / "entry.txt"
    entry.write_text("Dear diary, hive ran me.")
    output = run_program(program, "ada", str(entry), stdin="lovelace\n")
    assert "could not" not in output, output
    with xmlrpc.client.ServerProxy(local) as proxy:
        assert proxy.diary.get("ada") == ["Dear diary, hive ran me."]
    # A wrong password is refused by the peer and reported by the program.
    assert "could not login" in run_program(program, "ada", str(entry), stdin="wrong\n")


def test_httpclient(hive: list[HiveProcess]) -> None:
    server = start(hive, "custom_codes:factory")
    output = run_program(TUTORIAL / "httpclient.py", f"http://127.0.0.1:{server.port}/buy")
    assert "'code': 402" in output and "Please swipe your credit card." in output, output
    assert "Response done" in output


@pytest.mark.parametrize("name", ["getpage.py", "dlpage.py"])
def test_client_examples_removed_from_twisted(name: str) -> None:
    output = run_program(TUTORIAL / name, "http://127.0.0.1:9/")
    assert "ImportError" in output and "twisted.web.client" in output, output


def curl_through(proxy_port: int, url: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["curl", "-sS", "-i", "--max-time", "20", "-x", f"http://127.0.0.1:{proxy_port}", url],
        capture_output=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )


def test_proxy(hive: list[HiveProcess]) -> None:
    upstream = start(hive, "custom_codes:factory")
    proxy = start(hive, "proxy:ProxyFactory")
    done = curl_through(proxy.port, f"http://127.0.0.1:{upstream.port}/buy")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(b"HTTP/1.1 402 ")
    assert done.stdout.endswith(b"<html><body>Please swipe your credit card.</body></html>")


def test_logging_proxy(hive: list[HiveProcess]) -> None:
    upstream = start(hive, "custom_codes:factory")
    proxy = start(hive, "logging_proxy:LoggingProxyFactory")
    done = curl_through(proxy.port, f"http://127.0.0.1:{upstream.port}/buy")
    assert done.stdout.endswith(b"Please swipe your credit card.</body></html>")
    # getAllHeaders()["host"]: a str key, which finds the bytes header on hive.
    proxy.wait_for_output(rf"Request from 127\.0\.0\.1 for b'127\.0\.0\.1:{upstream.port}'")


def test_reverse_proxy(hive: list[HiveProcess], tmp_path: Path) -> None:
    upstream = start(hive, "custom_codes:factory")
    text = (TUTORIAL / "reverse_proxy.py").read_text()
    remote = 'proxy.ReverseProxyResource("example.com", 80, b"")'
    assert remote in text
    local = f'proxy.ReverseProxyResource("127.0.0.1", {upstream.port}, b"")'
    (tmp_path / "reverse_proxy.py").write_text(text.replace(remote, local))
    server = start(hive, "reverse_proxy:site", cwd=tmp_path)
    status, _, body = fetch(server.port, "/buy")
    assert status == 402 and b"Please swipe" in body


def test_rootscript(hive: list[HiveProcess]) -> None:
    server = start(hive, "rootscript:site")
    # Other hosts get the default, a Data page without a child for "/": 404, as on Twisted.
    status, _, other = fetch(server.port, "/", headers={"Host": "localhost"})
    assert status == 404 and b"No Such Resource" in other
    # example.com, given to addHost as a str (never matched on Twisted), is /var/www/html/.
    www = fetch(server.port, "/", headers={"Host": "example.com"})
    assert www[2] != other
    if not os.path.isdir("/var/www/html"):
        assert www[0] == 404 and b"File not found." in www[2]
    # VHostMonster: /vhost/http/example.com/ is the same request made to example.com.
    monster = fetch(server.port, "/vhost/http/example.com/", headers={"Host": "localhost"})
    assert (monster[0], monster[2]) == (www[0], www[2])


def test_web_py(hive: list[HiveProcess], tmp_path: Path) -> None:
    static = tmp_path / "static"
    static.mkdir()
    cgi = static / "env.cgi"
    cgi.write_text(
        "#!/bin/sh\n"
        'printf "Content-Type: text/plain\\r\\nX-Script: cgi\\r\\n\\r\\n"\n'
        'printf "method=%s query=%s path=%s\\n" "$REQUEST_METHOD" "$QUERY_STRING" "$PATH_INFO"\n'
        "cat\n"
    )
    cgi.chmod(0o755)
    (static / "page.epy").write_text("request.write(b'epy ' + request.uri)\n")
    (static / "where.rpy").write_text(
        "from hive.resource import Resource\n"
        "class Where(Resource):\n"
        "    isLeaf = True\n"
        "    def render_GET(self, request):\n"
        "        return b'%s %d %s' % (request.prePathURL(), request.getHost().port,\n"
        "                              b'secure' if request.isSecure() else b'plain')\n"
        "resource = Where()\n"
    )
    shutil.copy(TUTORIAL / "web.py", tmp_path / "web.py")
    server = start(hive, "web:site", cwd=tmp_path)
    status, headers, body = fetch(server.port, "/env.cgi/extra?q=1", "POST", b"the body")
    assert status == 200 and headers["X-Script"] == "cgi"
    assert body == b"method=POST query=q=1 path=/extra\nthe body"
    assert fetch(server.port, "/page.epy?a")[2] == b"epy /page.epy?a"
    plain = fetch(server.port, "/where.rpy")[2]
    assert plain == f"http://127.0.0.1:{server.port}/where.rpy {server.port} plain".encode()
    # Behind a proxy that rewrites https://example.org:8443/... to /vhost/https/...:
    behind = fetch(server.port, "/vhost/https/example.org:8443/where.rpy")[2]
    assert behind == b"https://example.org:8443/where.rpy 8443 secure"
