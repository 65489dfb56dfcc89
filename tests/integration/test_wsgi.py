"""``hive run --wsgi``: a Flask and a Django application served by real hive processes.

Each application is written into a temporary directory and served twice, with a thread
pool (``--threads 4``) and on the event loop (``--threads 0``); http.client talks to it.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import socket
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import HiveProcess

FLASK_APP = '''
import hashlib
import os
import time
from pathlib import Path

from flask import Flask, Response, make_response, redirect, request, send_file

HERE = Path(__file__).parent
app = Flask(__name__)


@app.get("/")
def index():
    return "hello from flask"


@app.get("/pid")
def pid():
    return str(os.getpid())


@app.post("/form")
def form():
    return f"name={request.form['name']} age={request.form['age']}"


@app.post("/upload")
def upload():
    upload = request.files["file"]
    data = upload.read()
    return {
        "filename": upload.filename,
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "note": request.form.get("note"),
    }


@app.get("/stream")
def stream():
    gate = HERE / request.args["gate"]

    def lines():
        yield "first\\n"
        deadline = time.monotonic() + 20
        while not gate.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        yield "second\\n"

    return Response(lines(), mimetype="text/plain")


@app.get("/file")
def file():
    return send_file(HERE / "blob.bin", mimetype="application/octet-stream")


@app.get("/redirect")
def go():
    return redirect("/landing?from=redirect")


@app.get("/cookie/set")
def set_cookie():
    response = make_response("set")
    response.set_cookie("flavour", "oatmeal", httponly=True)
    response.set_cookie("size", "large")
    return response


@app.get("/cookie/get")
def get_cookie():
    return f"{request.cookies.get('flavour')} {request.cookies.get('size')}"


@app.get("/error")
def error():
    raise RuntimeError("flask boom")


@app.post("/first-line")
def first_line():
    return request.stream.readline()


def application(environ, start_response):
    """The Flask app behind a middleware that can fail before start_response."""
    if environ["PATH_INFO"] == "/crash":
        raise RuntimeError("crash before start_response <wsgi>")
    return app(environ, start_response)
'''

DJANGO_APP = '''
import hashlib
import os
import time
from pathlib import Path

from django.conf import settings

HERE = Path(__file__).parent
settings.configure(
    DEBUG=False,
    ALLOWED_HOSTS=["*"],
    SECRET_KEY="hive-test-" + "k" * 50,
    ROOT_URLCONF=__name__,
    INSTALLED_APPS=[],
    DATABASES={},
    TEMPLATES=[],
    MIDDLEWARE=[
        "django.middleware.common.CommonMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
    ],
    USE_TZ=True,
)

import django  # noqa: E402

django.setup()

from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.http import (  # noqa: E402
    FileResponse,
    HttpResponse,
    HttpResponseRedirect,
    JsonResponse,
    StreamingHttpResponse,
)
from django.urls import path  # noqa: E402
from django.views.decorators.csrf import csrf_exempt  # noqa: E402


def index(request):
    return HttpResponse("hello from django")


def pid(request):
    return HttpResponse(str(os.getpid()))


@csrf_exempt
def form(request):
    return HttpResponse(f"name={request.POST['name']} age={request.POST['age']}")


@csrf_exempt
def upload(request):
    upload = request.FILES["file"]
    data = upload.read()
    return JsonResponse(
        {
            "filename": upload.name,
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "note": request.POST.get("note"),
        }
    )


def stream(request):
    gate = HERE / request.GET["gate"]

    def lines():
        yield b"first\\n"
        deadline = time.monotonic() + 20
        while not gate.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        yield b"second\\n"

    return StreamingHttpResponse(lines(), content_type="text/plain")


def file(request):
    return FileResponse(open(HERE / "blob.bin", "rb"), content_type="application/octet-stream")


def go(request):
    return HttpResponseRedirect("/landing?from=redirect")


def set_cookie(request):
    response = HttpResponse("set")
    response.set_cookie("flavour", "oatmeal", httponly=True)
    response.set_cookie("size", "large")
    return response


def get_cookie(request):
    return HttpResponse(f"{request.COOKIES.get('flavour')} {request.COOKIES.get('size')}")


def error(request):
    raise RuntimeError("django boom")


@csrf_exempt
def first_line(request):
    return HttpResponse(request.readline())


urlpatterns = [
    path("", index),
    path("pid", pid),
    path("form", form),
    path("upload", upload),
    path("stream", stream),
    path("file", file),
    path("redirect", go),
    path("cookie/set", set_cookie),
    path("cookie/get", get_cookie),
    path("error", error),
    path("first-line", first_line),
]

django_application = get_wsgi_application()


def application(environ, start_response):
    """The Django app behind a middleware that can fail before start_response."""
    if environ["PATH_INFO"] == "/crash":
        raise RuntimeError("crash before start_response <wsgi>")
    return django_application(environ, start_response)
'''

APPS = {"flask": FLASK_APP, "django": DJANGO_APP}
BLOB = bytes(range(256)) * 6000  # 1.5 MiB: many blocks, and a spooled upload


class Served:
    """A framework's app under ``hive run --wsgi``."""

    def __init__(self, framework: str, threads: str, directory: Path, process: HiveProcess) -> None:
        self.framework = framework
        self.threads = threads
        self.directory = directory
        self.process = process

    def connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.process.port, timeout=30)

    def request(
        self,
        method: str,
        target: str,
        body: bytes | str | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[http.client.HTTPResponse, bytes]:
        conn = self.connect()
        try:
            conn.request(method, target, body=body, headers=headers or {})
            response = conn.getresponse()
            return response, response.read()
        finally:
            conn.close()


@pytest.fixture(
    scope="module",
    params=[("flask", "4"), ("flask", "0"), ("django", "4"), ("django", "0")],
    ids=["flask-threads", "flask-loop", "django-threads", "django-loop"],
)
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    framework, threads = request.param
    pytest.importorskip(framework)
    directory = tmp_path_factory.mktemp(f"{framework}-{threads}")
    module = f"{framework}_site"
    (directory / f"{module}.py").write_text(textwrap.dedent(APPS[framework]))
    (directory / "blob.bin").write_bytes(BLOB)
    args = [f"{module}:application", "--wsgi", "--threads", threads]
    args += ["--bind", "127.0.0.1:0", "--app-dir", str(directory), "--no-access-log"]
    process = HiveProcess(args)
    try:
        process.wait_listening()
        yield Served(framework, threads, directory, process)
    finally:
        process.stop()


def test_page(served: Served) -> None:
    response, body = served.request("GET", "/")
    assert response.status == 200
    assert body == f"hello from {served.framework}".encode()
    assert response.getheader("Server") == "hive"


def test_form_post(served: Served) -> None:
    response, body = served.request(
        "POST",
        "/form",
        body="name=Ada+Lovelace&age=36",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert (response.status, body) == (200, b"name=Ada Lovelace age=36")


def test_file_upload(served: Served) -> None:
    boundary = uuid.uuid4().hex
    body = b"".join(
        [
            f"--{boundary}\r\n".encode(),
            b'Content-Disposition: form-data; name="note"\r\n\r\nhi there\r\n',
            f"--{boundary}\r\n".encode(),
            b'Content-Disposition: form-data; name="file"; filename="blob.bin"\r\n',
            b"Content-Type: application/octet-stream\r\n\r\n",
            BLOB,
            f"\r\n--{boundary}--\r\n".encode(),
        ]
    )
    response, answer = served.request(
        "POST",
        "/upload",
        body=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert response.status == 200, answer[:300]
    assert json.loads(answer) == {
        "filename": "blob.bin",
        "size": len(BLOB),
        "sha256": hashlib.sha256(BLOB).hexdigest(),
        "note": "hi there",
    }


def test_streaming_response_goes_out_as_it_comes(served: Served) -> None:
    gate = f"gate-{uuid.uuid4().hex}"
    conn = served.connect()
    try:
        conn.request("GET", f"/stream?gate={gate}")
        response = conn.getresponse()
        assert response.status == 200
        assert response.getheader("Transfer-Encoding") == "chunked"
        # The first line arrives while the application still waits for the gate.
        assert response.readline() == b"first\n"
        (served.directory / gate).touch()
        assert response.read() == b"second\n"
    finally:
        conn.close()


def test_file_response_uses_the_file_wrapper(served: Served) -> None:
    response, body = served.request("GET", "/file")
    assert response.status == 200
    assert response.getheader("Content-Length") == str(len(BLOB))
    assert body == BLOB


def test_redirect(served: Served) -> None:
    response, _ = served.request("GET", "/redirect")
    assert response.status == 302
    assert response.getheader("Location") == "/landing?from=redirect"


def test_cookies_set_and_read_back(served: Served) -> None:
    response, body = served.request("GET", "/cookie/set")
    assert (response.status, body) == (200, b"set")
    cookies = response.headers.get_all("Set-Cookie") or []
    assert len(cookies) == 2
    assert any(c.startswith("flavour=oatmeal") and "HttpOnly" in c for c in cookies)
    pairs = "; ".join(c.split(";", 1)[0] for c in cookies)
    response, body = served.request("GET", "/cookie/get", headers={"Cookie": pairs})
    assert body == b"oatmeal large"


def test_keep_alive(served: Served) -> None:
    conn = served.connect()
    try:
        for _ in range(5):
            conn.request("GET", "/")
            response = conn.getresponse()
            assert response.read() == f"hello from {served.framework}".encode()
            assert not response.will_close
    finally:
        conn.close()


def test_errors_give_500_and_the_worker_keeps_serving(served: Served) -> None:
    _, pid = served.request("GET", "/pid")
    # The framework's own error page...
    response, _ = served.request("GET", "/error")
    assert response.status == 500
    # ...and hive's, for an error before start_response, logged with its traceback.
    response, body = served.request("GET", "/crash")
    assert response.status == 500
    assert b"crash before" not in body
    served.process.wait_for_output(r"RuntimeError: crash before start_response <wsgi>")
    assert "Traceback (most recent call last)" in served.process.output()
    response, body = served.request("GET", "/")
    assert response.status == 200
    assert served.request("GET", "/pid")[1] == pid


def test_worker_handles_concurrent_requests(served: Served) -> None:
    failures: list[str] = []

    def client() -> None:
        try:
            for _ in range(10):
                response, body = served.request("GET", "/")
                if response.status != 200:
                    failures.append(f"{response.status} {body[:100]!r}")
        except Exception as exc:
            failures.append(repr(exc))

    threads = [threading.Thread(target=client) for _ in range(8)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert failures == []
    assert time.monotonic() - started < 60


def test_not_a_wsgi_application_is_a_one_line_error(hive_run: Any, tmp_path: Path) -> None:
    (tmp_path / "notwsgi.py").write_text("value = 42\n")
    server = hive_run(
        "notwsgi:value", "--wsgi", "--bind", "127.0.0.1:0", "--app-dir", str(tmp_path), wait=False
    )
    assert server.wait(20) != 0
    assert "'notwsgi:value' is not a WSGI application" in server.output()


PLAIN_APP = """
def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"multithread=%r" % environ["wsgi.multithread"]]
"""


def test_settings_from_a_config_file_and_the_environment(tmp_path: Path) -> None:
    (tmp_path / "plain.py").write_text(textwrap.dedent(PLAIN_APP))
    config = tmp_path / "hive.toml"
    config.write_text(
        'app = "plain:application"\nwsgi = true\nthreads = 4\nbind = ["127.0.0.1:0"]\n'
        f'app-dir = "{tmp_path}"\n'
    )
    for env, expected in [({}, b"multithread=True"), ({"HIVE_THREADS": "0"}, b"multithread=False")]:
        process = HiveProcess(["--config", str(config)], env=env)
        try:
            process.wait_listening()
            conn = http.client.HTTPConnection("127.0.0.1", process.port, timeout=30)
            conn.request("GET", "/")
            assert conn.getresponse().read() == expected
            conn.close()
        finally:
            process.stop()


def test_negative_threads_is_a_one_line_error(hive_run: Any) -> None:
    server = hive_run("x:app", "--wsgi", "--threads", "-1", wait=False)
    assert server.wait(20) == 1
    assert "hive: error: threads: must not be negative, got -1" in server.output()


def _post_head(length: int, extra: str = "") -> bytes:
    return (
        f"POST /first-line HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {length}\r\n"
        f"Content-Type: application/octet-stream\r\n{extra}\r\n"
    ).encode()


def _read_until(sock: socket.socket, marker: bytes, timeout: float = 15.0) -> bytes:
    sock.settimeout(timeout)
    data = b""
    while marker not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_upload_is_read_while_it_arrives(served: Served) -> None:
    """With threads the application starts at the head: it answers from the first line of a
    10 MB upload of which the client sent only that line.  On the loop the body comes whole."""
    with socket.create_connection(("127.0.0.1", served.process.port), timeout=15) as sock:
        sock.sendall(_post_head(10_000_000) + b"first line\n")
        if served.threads == "0":
            sock.settimeout(1.0)
            with pytest.raises(TimeoutError):
                sock.recv(100)
            return
        answer = _read_until(sock, b"first line\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), answer[:300]
    assert body == b"first line\n"
    # Most of the body is still to come: the connection is closed, not read to its end.
    assert b"connection: close" in head.lower()


def test_expect_continue_is_answered_when_the_application_reads(served: Served) -> None:
    with socket.create_connection(("127.0.0.1", served.process.port), timeout=15) as sock:
        sock.sendall(_post_head(12, "Expect: 100-continue\r\n"))
        interim = _read_until(sock, b"\r\n\r\n")
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"hello there\n")
        answer = _read_until(sock, b"hello there\n")
        assert answer.startswith(b"HTTP/1.1 200"), answer[:300]
        # The body was read whole: the connection serves another request.
        sock.sendall(_post_head(3) + b"ab\n")
        assert _read_until(sock, b"ab\n").startswith(b"HTTP/1.1 200")


READER_APP = """
def application(environ, start_response):
    body = environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"read %d" % len(body)]
"""


def test_a_body_cut_short_is_a_client_abort(hive_run: Any, tmp_path: Path) -> None:
    """A client that half-closes before sending Content-Length bytes gets no 500, and no
    traceback goes to the error log; the worker serves the next request."""
    (tmp_path / "reader.py").write_text(READER_APP)
    server = hive_run(
        "reader:application", "--wsgi", "--bind", "127.0.0.1:0", "--app-dir", str(tmp_path)
    )
    with socket.create_connection(("127.0.0.1", server.port), timeout=15) as sock:
        sock.sendall(_post_head(100) + b"only this much")
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(15)
        assert sock.recv(65536) == b""  # closed, with no answer
    server.wait_for_output(r"POST /first-line: abandoned")
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.request("POST", "/", body=b"whole")
    assert conn.getresponse().read() == b"read 5"
    conn.close()
    output = server.output()
    assert "Traceback" not in output and " 500 " not in output, output
