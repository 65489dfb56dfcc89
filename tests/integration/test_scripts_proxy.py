"""Resource scripts and CGI under ``hive run --path DIR --scripts``, and the forward proxy
driven by curl -x against a local upstream."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import ROOT, HiveProcess
from tests.upstream import Upstream, UpstreamRequest, ok

ENV_CGI = """#!/bin/sh
printf 'Content-Type: text/plain\\r\\nX-Script: env\\r\\n\\r\\n'
printf '%s|%s|%s|%s|%s\\n' "$REQUEST_METHOD" "$QUERY_STRING" "$PATH_INFO" \\
    "$HTTP_X_THING" "$CONTENT_LENGTH"
cat
"""
STATUS_CGI = "#!/bin/sh\nprintf 'Status: 404 Not Here\\nContent-Type: text/plain\\n\\nmissing'\n"
REDIRECT_CGI = "#!/bin/sh\nprintf 'Location: /elsewhere\\r\\n\\r\\n'\n"
NO_HEADERS_CGI = "#!/bin/sh\nprintf 'no blank line, and then it ends'\n"
BIG_CGI = (
    "#!/bin/sh\nprintf 'Content-Type: application/octet-stream\\n\\n'\nhead -c 3000000 /dev/zero\n"
)
SLEEPY_CGI = '#!/bin/sh\necho $$ > "$SCRIPT_FILENAME.pid"\nexec sleep 60\n'
COUNTER_RPY = """
cache()
from hive.resource import Resource

class Counter(Resource):
    isLeaf = True
    count = 0
    def render_GET(self, request):
        self.count += 1
        return b"%d" % self.count

resource = Counter()
"""


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("scripts")
    (root / "index.html").write_text("the index\n")
    for name, text in {
        "env.cgi": ENV_CGI,
        "status.cgi": STATUS_CGI,
        "redirect.cgi": REDIRECT_CGI,
        "headless.cgi": NO_HEADERS_CGI,
        "big.cgi": BIG_CGI,
        "sleepy.cgi": SLEEPY_CGI,
    }.items():
        (root / name).write_text(text)
        (root / name).chmod(0o755)
    (root / "notexec.cgi").write_text(ENV_CGI)
    (root / "counter.rpy").write_text(COUNTER_RPY)
    return root


def serve(*args: str) -> HiveProcess:
    process = HiveProcess([*args, "--bind", "127.0.0.1:0"])
    process.wait_listening()
    return process


@pytest.fixture(scope="module")
def scripted(tree: Path) -> Iterator[HiveProcess]:
    process = serve("--path", str(tree), "--scripts")
    yield process
    process.stop()


def fetch(
    port: int, path: str, method: str = "GET", body: bytes | None = None, **headers: str
) -> tuple[int, http.client.HTTPMessage, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


def test_scripts_are_neither_run_nor_served_without_the_flag(tree: Path) -> None:
    process = serve("--path", str(tree))
    try:
        assert fetch(process.port, "/")[2] == b"the index\n"
        for name in ("env.cgi", "counter.rpy"):
            status, _, body = fetch(process.port, "/" + name)
            assert status == 404 and b"printf" not in body and b"cache()" not in body
    finally:
        process.stop()


def test_scripts_needs_path() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "hive", "run", "x:y", "--scripts"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
    )
    assert done.returncode == 1 and "scripts" in done.stderr and "--path" in done.stderr


def test_a_cgi_script_gets_the_request(scripted: HiveProcess) -> None:
    body = b"x" * 300_000  # more than a pipe holds: written while the script reads
    status, headers, answer = fetch(
        scripted.port, "/env.cgi/more/path?a=1", "POST", body, **{"X-Thing": "yes"}
    )
    assert status == 200 and headers["X-Script"] == "env"
    assert headers["Content-Type"] == "text/plain"
    first, rest = answer.split(b"\n", 1)
    assert first == b"POST|a=1|/more/path|yes|300000"
    assert rest == body


def test_cgi_status_location_and_broken_scripts(scripted: HiveProcess) -> None:
    status, _, body = fetch(scripted.port, "/status.cgi")
    assert (status, body) == (404, b"missing")
    status, headers, _ = fetch(scripted.port, "/redirect.cgi")
    assert status == 302 and headers["Location"] == "/elsewhere"
    status, _, body = fetch(scripted.port, "/headless.cgi")
    assert status == 500 and b"Premature end of script headers" in body
    status, _, body = fetch(scripted.port, "/notexec.cgi")
    assert status == 500 and b"could not be run" in body
    scripted.wait_for_output("cannot run CGI script")


def test_cgi_output_is_streamed(scripted: HiveProcess) -> None:
    status, headers, body = fetch(scripted.port, "/big.cgi")
    assert status == 200 and len(body) == 3_000_000 and body.count(b"\0") == 3_000_000
    assert headers["Transfer-Encoding"] == "chunked"


def test_a_client_that_leaves_kills_its_script(scripted: HiveProcess, tree: Path) -> None:
    pid_file = tree / "sleepy.cgi.pid"
    pid_file.unlink(missing_ok=True)
    with socket.create_connection(("127.0.0.1", scripted.port), timeout=10) as sock:
        sock.sendall(b"GET /sleepy.cgi HTTP/1.1\r\nHost: a\r\n\r\n")
        deadline = time.monotonic() + 10
        while not (pid_file.exists() and pid_file.read_text().strip()):
            assert time.monotonic() < deadline, scripted.output()
            time.sleep(0.05)
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/{pid}"):
        assert time.monotonic() < deadline, "the script outlived its client"
        time.sleep(0.05)


def test_a_cached_rpy_keeps_its_resource(scripted: HiveProcess) -> None:
    counts = [int(fetch(scripted.port, "/counter.rpy")[2]) for _ in range(3)]
    assert counts == [counts[0], counts[0] + 1, counts[0] + 2]


# -- the forward proxy ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def forward() -> Iterator[HiveProcess]:
    process = serve("hive.proxy:ProxyFactory")
    yield process
    process.stop()


def curl(proxy: HiveProcess, url: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["curl", "-sS", "--max-time", "20", "-x", f"http://127.0.0.1:{proxy.port}", *args, url],
        capture_output=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )


def test_curl_through_the_forward_proxy(forward: HiveProcess) -> None:
    with Upstream(ok(b"from upstream")) as up:
        url = f"http://127.0.0.1:{up.port}/some/path?q=a%20b&r=2"
        done = curl(forward, url, "-H", "X-Thing: 1")
        assert done.stdout == b"from upstream", done.stderr
        done = curl(forward, url, "--data-binary", "posted body")
        assert done.stdout == b"from upstream", done.stderr
        get, post = up.requests
    assert get.method == b"GET" and get.target == b"/some/path?q=a%20b&r=2"
    assert get.header(b"host") == b"127.0.0.1:%d" % up.port  # as the client sent it
    assert get.header(b"x-thing") == b"1"
    # A forward proxy is not a reverse proxy: nothing of the client is added.
    assert not {b"x-forwarded-for", b"x-forwarded-host", b"proxy-connection"} & get.names()
    assert post.method == b"POST" and post.body == b"posted body"


def test_the_forward_proxy_answers_for_what_it_cannot_reach(forward: HiveProcess) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    status = ("-o", "/dev/null", "-w", "%{http_code}")
    assert curl(forward, f"http://127.0.0.1:{port}/", *status).stdout == b"502"

    def close(request: UpstreamRequest, sock: socket.socket) -> bool:
        return False  # says nothing, closes

    with Upstream(close) as up:
        assert curl(forward, f"http://127.0.0.1:{up.port}/", *status).stdout == b"502"
    # An origin-form request is not for a forward proxy.
    assert fetch(forward.port, "/plain")[0] == 400
