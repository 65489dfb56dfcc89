"""Twisted's authentication and session lessons, ported by the README's mapping, under real
``hive run`` processes with real clients (curl --digest / --basic, http.client), each
lesson's described behaviour checked; and hive's own additions (hashed password files,
rate limits and their metrics) the way an operator meets them.

The lessons are in tests/integration/tutorial/. Those written as .rpy scripts are served
where ``twistd web --path`` serves an rpy, at ``/<name>.rpy``: a site module made here
mounts each lesson's ``resource`` there.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import ROOT, HiveProcess

TUTORIAL = ROOT / "tests" / "integration" / "tutorial"
BIND = ("--bind", "127.0.0.1:0")

Start = Callable[..., HiveProcess]


@pytest.fixture
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="hive-tutorial-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def rpy_site(workdir: Path, *lessons: str) -> str:
    """A site module in ``workdir`` serving each lesson's ``resource`` at /<lesson>.rpy."""
    lines = ["import sys", f"sys.path.insert(0, {str(TUTORIAL)!r})", "import importlib"]
    lines += ["from hive.resource import Resource", "root = Resource()"]
    for lesson in lessons:
        lines.append(
            f"root.putChild(b'{lesson}.rpy', importlib.import_module({lesson!r}).resource)"
        )
    (workdir / "rpy_site.py").write_text("\n".join(lines) + "\n")
    return "rpy_site:root"


def curl(*args: str) -> tuple[int, str, str]:
    """(status, the last response's headers, body) of one curl run."""
    with tempfile.NamedTemporaryFile() as headers:
        result = subprocess.run(
            ["curl", "-s", "-D", headers.name, "-w", "\n%{http_code}", *args],
            capture_output=True,
            text=True,
            timeout=30,
        )
        body, _, status = result.stdout.rpartition("\n")
        blocks = [b for b in Path(headers.name).read_text().split("\n\n") if b.strip()]
        return int(status), blocks[-1] if blocks else "", body


def connect(server: HiveProcess) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", server.port, timeout=15)


def fetch(
    server: HiveProcess, path: str, headers: dict[str, str] | None = None
) -> tuple[int, http.client.HTTPMessage, bytes]:
    conn = connect(server)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


class Browser:
    """Keeps the cookies it is given, and sends them; a fresh connection per request, so
    that requests land on any worker."""

    def __init__(self, server: HiveProcess) -> None:
        self.server = server
        self.cookies: dict[str, str] = {}

    def get(self, path: str) -> tuple[int, bytes]:
        headers = {}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        status, response_headers, body = fetch(self.server, path, headers)
        for header in response_headers.get_all("Set-Cookie") or []:
            name, _, rest = header.partition("=")
            value = rest.split(";", 1)[0]
            if value:
                self.cookies[name] = value
            else:
                self.cookies.pop(name, None)
        return status, body


def digest_authorization(
    challenge: str, user: str, password: str, uri: str, nc: int, method: str = "GET"
) -> str:
    """An Authorization header for a Digest challenge, computed from RFC 7616 here."""
    pairs = re.findall(r'(\w+)=(?:"([^"]*)"|([^,\s]*))', challenge.partition(" ")[2])
    parsed = {name: quoted or token for name, quoted, token in pairs}
    algorithm = parsed.get("algorithm", "MD5")
    name = {"MD5": "md5", "SHA-256": "sha256"}[algorithm]

    def h(*parts: str) -> str:
        return hashlib.new(name, ":".join(parts).encode()).hexdigest()

    cnonce = secrets.token_hex(8)
    count = f"{nc:08x}"
    response = h(
        h(user, parsed["realm"], password),
        parsed["nonce"],
        count,
        cnonce,
        "auth",
        h(method, uri),
    )
    return (
        f'Digest username="{user}", realm="{parsed["realm"]}", nonce="{parsed["nonce"]}",'
        f' uri="{uri}", algorithm={algorithm}, qop=auth, nc={count}, cnonce="{cnonce}",'
        f' response="{response}", opaque="{parsed["opaque"]}"'
    )


# -- HTTP Authentication (http-auth.rst) ------------------------------------------------------


def test_http_auth_lesson(hive_run: Start, workdir: Path) -> None:
    (workdir / "httpd.password").write_text("joe:blow\n")
    server = hive_run(rpy_site(workdir, "http_auth"), "--app-dir", str(workdir), *BIND, cwd=workdir)
    url = f"{server.url}/http_auth.rpy"
    status, headers, _ = curl(url)
    assert status == 401
    # Twisted itself fails here: its Digest code hashes the str realm and raises TypeError.
    assert re.search(
        r'WWW-Authenticate: Digest realm="localhost:8080", qop="auth", algorithm=MD5,'
        r' nonce="[\w-]+", opaque="[0-9a-f]{32}"',
        headers,
    ), headers
    assert curl("--digest", "-u", "joe:wrong", url)[0] == 401
    assert curl("--basic", "-u", "joe:blow", url)[0] == 401  # Basic is not offered
    # Logged in, joe gets the lesson's File("/home/%s/public_html" % (avatarId,)): with
    # avatarId bytes that is "/home/b'joe'/public_html", which does not exist (as on
    # Twisted under Python 3), so the File answers 404, not the guard's 401.
    status, headers, body = curl("--digest", "-u", "joe:blow", url)
    assert status == 404, (headers, body)
    assert "WWW-Authenticate" not in headers


# -- docs/web/examples/webguard.py -------------------------------------------------------------


def test_webguard_example_with_curl_digest(hive_run: Start) -> None:
    server = hive_run("webguard:main", "--app-dir", str(TUTORIAL), *BIND)
    status, headers, body = curl(server.url + "/")
    assert (status, body) == (401, "Unauthorized")
    assert 'Digest realm="example.com"' in headers
    for path in ("/", "/any/child/at/all"):
        assert curl("--digest", "-u", "joe:blow", server.url + path)[::2] == (200, "Authorized!")
    assert curl("--digest", "-u", "joe:blo", server.url + "/")[0] == 401
    assert curl("--digest", "-u", "jo:blow", server.url + "/")[0] == 401


def test_a_digest_nonce_is_taken_by_every_worker(hive_run: Start) -> None:
    server = hive_run("webguard:main", "--app-dir", str(TUTORIAL), *BIND, "--workers", "2")
    status, headers, _ = fetch(server, "/")
    assert status == 401
    challenge = headers["WWW-Authenticate"]
    # One nonce, many fresh connections: the kernel spreads them over both workers.
    for nc in range(1, 21):
        authorization = digest_authorization(challenge, "joe", "blow", "/page", nc)
        status, _, body = fetch(server, "/page", {"Authorization": authorization})
        assert (status, body) == (200, b"Authorized!"), nc
    # Both workers answered some: the nonce one made, the other took. (Workers report
    # their counts once a second.)
    deadline = time.monotonic() + 10
    while True:
        workers = json.loads(server.ctl("status", "--json").stdout)["workers"]
        if all(worker["requests"] > 0 for worker in workers) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert len(workers) == 2
    assert all(worker["requests"] > 0 for worker in workers), workers
    # A response hashed for another URI is refused, so a captured header serves one URI.
    authorization = digest_authorization(challenge, "joe", "blow", "/page", 99)
    assert fetch(server, "/other", {"Authorization": authorization})[0] == 401


def test_curl_digest_takes_sha256_when_offered_first(hive_run: Start) -> None:
    server = hive_run("examples.standard:root", *BIND)
    result = subprocess.run(
        ["curl", "-s", "-v", "--digest", "-u", "admin:hive", server.url + "/private"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert "Hello, admin." in result.stdout
    (sent,) = [line for line in result.stderr.splitlines() if "> Authorization: Digest" in line]
    assert "algorithm=SHA-256" in sent
    assert re.search(r'response="[0-9a-f]{64}"', sent)


def test_hosts_sharing_a_secret_file_take_each_others_nonces(
    hive_run: Start, workdir: Path
) -> None:
    secret = workdir / "secret"
    secret.write_bytes(secrets.token_bytes(48))
    secret.chmod(0o600)
    app = ("webguard:main", "--app-dir", str(TUTORIAL), *BIND)
    one = hive_run(*app, "--secret-file", str(secret))
    other = hive_run(*app, "--secret-file", str(secret))
    stranger = hive_run(*app)  # a secret of its own
    challenge = fetch(one, "/")[1]["WWW-Authenticate"]
    authorization = {"Authorization": digest_authorization(challenge, "joe", "blow", "/", 1)}
    assert fetch(other, "/", authorization)[0] == 200
    assert fetch(stranger, "/", authorization)[0] == 401
    secret.chmod(0o644)
    refused = hive_run(*app, "--secret-file", str(secret), wait=False)
    assert refused.wait(30) == 1
    refused.wait_for_output(r"is open to others \(mode 644\): chmod 600")


# -- hive's additions: hashed password files, rate limits, metrics ---------------------------

HASHED_APP = """
from zope.interface import implementer

from hive.cred.checkers import HashedPasswordDB
from hive.cred.portal import IRealm, Portal
from hive.guard import BasicCredentialFactory, DigestCredentialFactory, HTTPAuthSessionWrapper
from hive.resource import IResource, Resource


class Hello(Resource):
    isLeaf = True

    def __init__(self, user):
        super().__init__()
        self.user = user

    def render_GET(self, request):
        return b"hello " + self.user


@implementer(IRealm)
class Realm:
    def requestAvatar(self, avatarId, mind, *interfaces):
        return IResource, Hello(avatarId), lambda: None


portal = Portal(Realm(), [HashedPasswordDB("users.passwd")])
root = HTTPAuthSessionWrapper(
    portal, [DigestCredentialFactory("SHA-256", "hashed"), BasicCredentialFactory("hashed")]
)
"""


def hive_passwd(workdir: Path, user: str, password: str, *options: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "hive", "passwd", "users.passwd", user, "--stdin", *options],
        input=password + "\n",
        capture_output=True,
        text=True,
        cwd=workdir,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_hashed_password_file_written_by_hive_passwd(hive_run: Start, workdir: Path) -> None:
    assert hive_passwd(workdir, "alice", "correct horse") == "added alice in users.passwd\n"
    hive_passwd(workdir, "bob", "battery staple", "--bcrypt")
    lines = (workdir / "users.passwd").read_text().splitlines()
    assert lines[0].startswith("alice:$argon2id$") and lines[1].startswith("bob:$2b$12$")
    (workdir / "hashed.py").write_text(HASHED_APP)
    server = hive_run("hashed:root", *BIND, "--workers", "2", cwd=workdir)
    status, headers, _ = curl(server.url + "/")
    assert status == 401
    # A hash cannot check a Digest response: only Basic is offered.
    assert re.findall(r"WWW-Authenticate: (\w+)", headers) == ["Basic"]
    assert curl("--basic", "-u", "alice:correct horse", server.url + "/")[::2] == (
        200,
        "hello alice",
    )
    assert curl("--basic", "-u", "bob:battery staple", server.url + "/")[::2] == (
        200,
        "hello bob",
    )
    assert curl("--basic", "-u", "alice:wrong", server.url + "/")[0] == 401
    assert curl("--basic", "-u", "nobody:correct horse", server.url + "/")[0] == 401
    # A changed file is read again by the running workers.
    hive_passwd(workdir, "alice", "new password")
    assert curl("--basic", "-u", "alice:new password", server.url + "/")[0] == 200


def test_failed_logins_are_limited_and_counted(hive_run: Start) -> None:
    server = hive_run(
        "examples.standard:root",
        *BIND,
        "--metrics-bind",
        "127.0.0.1:0",
        "--forwarded-allow",
        "127.0.0.1",
    )
    line = server.wait_for_output(r"ops endpoint on http://127\.0\.0\.1:(\d+)/metrics")
    ops = int(re.search(r":(\d+)/metrics", line).group(1))  # type: ignore[union-attr]

    def login(password: str, client: str) -> tuple[int, http.client.HTTPMessage, bytes]:
        token = base64.b64encode(f"admin:{password}".encode()).decode()
        headers = {"Authorization": f"Basic {token}", "X-Forwarded-For": client}
        return fetch(server, "/private", headers)

    for _ in range(10):
        assert login("guess", "198.51.100.1")[0] == 401
    status, headers, _ = login("hive", "198.51.100.1")  # the right one, but too late
    assert status == 429
    assert 50 <= int(headers["Retry-After"]) <= 60
    assert login("hive", "198.51.100.2")[0] == 200  # another client is not limited

    deadline = time.monotonic() + 10
    wanted = {"failed": 10.0, "limited": 1.0, "succeeded": 1.0, "busy": 0.0}
    found: dict[str, float] = {}
    while time.monotonic() < deadline:  # workers report their stats once a second
        conn = http.client.HTTPConnection("127.0.0.1", ops, timeout=10)
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
        conn.close()
        found = {
            m[0]: float(m[1])
            for m in re.findall(r'hive_logins_total\{result="(\w+)"\} (\S+)', text)
        }
        if found == wanted:
            break
        time.sleep(0.2)
    assert found == wanted


# -- Session Basics (session-basics.rst) ----------------------------------------------------


def test_session_basics_lesson(hive_run: Start, workdir: Path) -> None:
    site = rpy_site(workdir, "session_basics")
    server = hive_run(site, "--app-dir", str(workdir), *BIND, "--workers", "2")
    browser = Browser(server)
    status, body = browser.get("/session_basics.rpy")
    assert status == 200
    match = re.fullmatch(rb"Your session id is: ([\w-]{43})", body)
    assert match, body
    first = match.group(1)
    for _ in range(6):  # the same id across reloads, whichever worker answers
        assert browser.get("/session_basics.rpy") == (200, b"Your session id is: " + first)
    assert browser.get("/session_basics.rpy/expire") == (200, b"Your session has been expired.")
    status, body = browser.get("/session_basics.rpy")
    assert status == 200 and body.startswith(b"Your session id is: ")
    assert first not in body  # a new session


# -- Storing Objects in the Session (session-store.rst) ---------------------------------------


def test_session_store_lesson(hive_run: Start, workdir: Path) -> None:
    site = rpy_site(workdir, "session_store")
    server = hive_run(site, "--app-dir", str(workdir), *BIND, "--workers", "2")
    browser = Browser(server)
    for visit in range(1, 9):
        status, body = browser.get("/session_store.rpy")
        assert status == 200
        assert body.endswith(b"Visit #%d for you!" % visit), body
    other = Browser(server)  # another client counts on its own
    assert other.get("/session_store.rpy")[1].endswith(b"Visit #1 for you!")


# -- Session Endings (session-endings.rst) ----------------------------------------------------


def expiry_lines(server: HiveProcess) -> list[str]:
    return [line for line in server.stdout_lines if "has expired." in line]


def test_session_endings_lesson_as_written_fails_clearly(hive_run: Start) -> None:
    server = hive_run("session_endings:factory", "--app-dir", str(TUTORIAL), *BIND)
    status, _, _ = fetch(server, "/logme")
    # The lesson's render_GET returns "" (a str): a 500, with the reason in the error log.
    assert status == 500
    server.wait_for_output(r"ExpirationLogger object at .*render returned '', not bytes")
    # The session it made still ends on time, 5 seconds later.
    started = time.monotonic()
    server.wait_for_output(r"Session b'[\w-]{43}' has expired\.", timeout=15)
    assert time.monotonic() - started > 3


def test_session_endings_lesson_expires_sessions_on_time(hive_run: Start, workdir: Path) -> None:
    # The lesson with the fix its error names (return b""): the behaviour it describes.
    source = (TUTORIAL / "session_endings.py").read_text()
    assert '        return ""\n' in source
    (workdir / "session_endings.py").write_text(source.replace('return ""', 'return b""'))
    server = hive_run("session_endings:factory", *BIND, "--workers", "2", cwd=workdir)
    browser = Browser(server)
    # "Keep visiting it to keep your session active": every 2 s for 8 s, longer than the
    # 5-second timeout, on both workers. (On Twisted the session ends 5 s after it began.)
    for _ in range(5):
        assert browser.get("/logme")[0] == 200
        last = time.monotonic()
        time.sleep(2)
        assert expiry_lines(server) == []
    # "Stop visiting it for five seconds to see your session expiration message."
    deadline = last + 15
    while not expiry_lines(server) and time.monotonic() < deadline:
        time.sleep(0.05)
    elapsed = time.monotonic() - last
    assert 4.5 <= elapsed <= 8.0, elapsed  # at its expiry, not at a later sweep
    time.sleep(1.5)
    # ExpirationLogger.sessions is a class attribute, so per worker: each worker that served
    # the session registered its callback, and says it once.
    lines = expiry_lines(server)
    assert 1 <= len(lines) <= 2, lines
    assert len(set(lines)) == 1
    assert re.fullmatch(r"Session b'[\w-]{43}' has expired\.\n", lines[0]), lines
