"""hive.guard through the real Site and Request, in memory."""

from __future__ import annotations

import asyncio
import base64
import hmac
from typing import Any

import pytest

from hive import guard
from hive.guard import (
    BasicCredentialFactory,
    HTTPAuthSessionWrapper,
    InMemoryUsernamePasswordDatabaseDontUse,
    Portal,
)
from hive.resource import IResource, Resource
from hive.server import Request
from tests.unit.harness import Harness, Response, settle


class Whoami(Resource):
    isLeaf = True

    def render_GET(self, request: Request) -> bytes:
        return b"user=" + request.getUser() + b" path=" + b"/".join(request.prepath)


class AsyncPage(Resource):
    isLeaf = True

    async def render_GET(self, request: Request) -> bytes:
        await asyncio.sleep(0)
        return b"async " + request.getUser()


def protected() -> Resource:
    inner = Resource()
    inner.putChild(b"", Whoami())
    inner.putChild(b"who", Whoami())
    inner.putChild(b"async", AsyncPage())
    return inner


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


USERS = InMemoryUsernamePasswordDatabaseDontUse(alice="wonderland", bob=b"builder")


def tree(checker: Any = USERS, resource: Any = None, realm: bytes = b"hive test") -> Resource:
    root = Resource()
    wrapper = HTTPAuthSessionWrapper(
        checker, [BasicCredentialFactory(realm)], protected() if resource is None else resource
    )
    root.putChild(b"secret", wrapper)
    return root


def get(root: Resource, path: str, auth: str | None = None, method: str = "GET") -> Response:
    async def go() -> Response:
        h = Harness(root)
        headers = {"Authorization": auth} if auth is not None else {}
        lines = [f"{method} {path} HTTP/1.1", "Host: x"] + [f"{k}: {v}" for k, v in headers.items()]
        h.send(("\r\n".join(lines) + "\r\n\r\n").encode())
        for _ in range(20):
            await settle()
            if h.connection.idle:
                break
        return h.response(method)

    result: Response = asyncio.run(go())
    return result


def assert_challenged(response: Response, realm: str = "hive test") -> None:
    assert response.status == 401
    assert response.headers.get_all("WWW-Authenticate") == [f'Basic realm="{realm}"']


def test_no_credentials_get_a_challenge() -> None:
    response = get(tree(), "/secret/who")
    assert_challenged(response)
    assert response.body == b"Unauthorized"
    assert get(tree(), "/secret/who", method="HEAD").body == b""


def test_right_password_reaches_the_resource_as_the_user() -> None:
    response = get(tree(), "/secret/who", basic("alice", "wonderland"))
    assert (response.status, response.body) == (200, b"user=alice path=secret/who")
    assert get(tree(), "/secret/who", basic("bob", "builder")).body.startswith(b"user=bob")
    # The wrapper consumes no segment, and renders the wrapped resource at its own path.
    assert get(tree(), "/secret/", basic("bob", "builder")).body == b"user=bob path=secret/"
    assert get(tree(), "/secret/async", basic("bob", "builder")).body == b"async bob"


def test_wrapper_rendered_directly() -> None:
    response = get(tree(resource=Whoami()), "/secret", basic("alice", "wonderland"))
    assert response.body == b"user=alice path=secret"
    assert_challenged(get(tree(resource=Whoami()), "/secret", basic("alice", "x")))


@pytest.mark.parametrize(
    "auth",
    [
        basic("alice", "wrong"),
        basic("alice", "wonderlan"),
        basic("alice", "wonderland "),
        basic("mallory", "wonderland"),
        basic("", ""),
        "Bearer abc",
        "Basic !!!notbase64",
        "Basic " + base64.b64encode(b"no-colon").decode(),
        "Basic",
        "",
    ],
)
def test_wrong_credentials_get_a_challenge(auth: str) -> None:
    assert_challenged(get(tree(), "/secret/who", auth))


def test_scheme_is_case_insensitive() -> None:
    auth = basic("alice", "wonderland").replace("Basic", "bAsIc")
    assert get(tree(), "/secret/who", auth).status == 200


def test_realm_is_quoted() -> None:
    response = get(tree(realm=b'say "hi" \\o/'), "/secret/who")
    assert_challenged(response, 'say \\"hi\\" \\\\o/')
    with pytest.raises(ValueError):
        BasicCredentialFactory("evil\r\nSet-Cookie: x=y")


def test_async_checker() -> None:
    class Checker:
        def __init__(self) -> None:
            self.calls: list[tuple[bytes, bytes]] = []

        async def check(self, username: bytes, password: bytes) -> bool:
            self.calls.append((username, password))
            await asyncio.sleep(0)
            return (username, password) == (b"carol", b"pw")

    checker = Checker()
    assert (
        get(tree(checker), "/secret/who", basic("carol", "pw")).body
        == b"user=carol path=secret/who"
    )
    assert_challenged(get(tree(checker), "/secret/who", basic("carol", "nope")))
    assert get(tree(checker, Whoami()), "/secret", basic("carol", "pw")).status == 200
    assert checker.calls[0] == (b"carol", b"pw")


def test_comparison_is_timing_safe(monkeypatch: pytest.MonkeyPatch) -> None:
    compared: list[tuple[int, int]] = []
    real = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        compared.append((len(a), len(b)))
        return bool(real(a, b))

    monkeypatch.setattr(hmac, "compare_digest", counting)
    db = InMemoryUsernamePasswordDatabaseDontUse(alice="wonderland")
    assert db.check(b"alice", b"wonderland")
    assert not db.check(b"alice", b"short")
    assert not db.check(b"alice", b"a much longer password than the real one")
    assert not db.check(b"nobody", b"wonderland")  # unknown users are compared too
    assert compared == [(32, 32)] * 4
    db.addUser(b"dave", "pässword")
    assert db.check(b"dave", "pässword".encode())


def test_checker_without_resource_is_an_error() -> None:
    with pytest.raises(TypeError):
        HTTPAuthSessionWrapper(USERS, [BasicCredentialFactory("r")])


def test_portal_and_realm_pick_the_resource_per_user() -> None:
    logouts: list[bytes] = []

    class Realm:
        def requestAvatar(self, avatarId: bytes, mind: object, *interfaces: object) -> Any:
            assert IResource in interfaces
            page = Resource()
            page.putChild(b"who", Whoami())
            page.putChild(b"home", Home(avatarId))
            return IResource, page, lambda: logouts.append(avatarId)

    class Home(Resource):
        isLeaf = True

        def __init__(self, user: bytes) -> None:
            super().__init__()
            self.user = user

        def render_GET(self, request: Request) -> bytes:
            return b"home of " + self.user

    portal = Portal(Realm(), [USERS])
    root = Resource()
    root.putChild(b"secret", HTTPAuthSessionWrapper(portal, [BasicCredentialFactory("r")]))
    assert get(root, "/secret/home", basic("bob", "builder")).body == b"home of bob"
    assert logouts == [b"bob"]
    assert get(root, "/secret/home", basic("bob", "x")).status == 401
    assert get(root, "/secret/home").status == 401
    assert logouts == [b"bob"]


def test_wrapper_as_the_root() -> None:
    wrapper = HTTPAuthSessionWrapper(USERS, [BasicCredentialFactory("r")], protected())
    response = get(wrapper, "/who", basic("alice", "wonderland"))  # type: ignore[arg-type]
    assert response.body == b"user=alice path=who"
    assert get(wrapper, "/who").status == 401  # type: ignore[arg-type]


def test_credentials_repr_hides_the_password() -> None:
    credentials = guard.UsernamePassword(b"alice", b"wonderland")
    assert b"wonderland".decode() not in repr(credentials)
