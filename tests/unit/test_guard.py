"""hive.guard through the real Site and Request, in memory: Basic, Digest (RFC 7616),
anonymous logins, the factories a portal can check, logouts, rate limits and counts."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
from typing import Any

import pytest
from zope.interface import implementer

from hive._forwarded import TrustedProxies
from hive.cred import _hashing, credentials
from hive.cred._digest import parse_params
from hive.cred.checkers import (
    ANONYMOUS,
    AllowAnonymousAccess,
    HashedPasswordDB,
    InMemoryUsernamePasswordDatabaseDontUse,
)
from hive.cred.error import LoginFailed
from hive.cred.portal import IRealm, Portal
from hive.guard import (
    BasicCredentialFactory,
    DigestCredentialFactory,
    HTTPAuthSessionWrapper,
    LoginLimiter,
)
from hive.resource import IResource, Resource
from hive.server import Request, Site
from hive.worker.stats import WorkerStats
from tests.unit.harness import Harness, Response, run, settle


class Whoami(Resource):
    isLeaf = True

    def __init__(self, user: Any) -> None:
        super().__init__()
        self.user = user

    def render_GET(self, request: Request) -> bytes:
        return b"user=%r path=%s" % (self.user, b"/".join(request.prepath))


class AsyncPage(Resource):
    isLeaf = True

    async def render_GET(self, request: Request) -> bytes:
        await asyncio.sleep(0)
        return b"async"


@implementer(IRealm)
class Realm:
    """Each user gets a tree of their own; logouts are recorded."""

    def __init__(self) -> None:
        self.logouts: list[Any] = []

    def requestAvatar(self, avatarId: Any, mind: object, *interfaces: Any) -> Any:
        assert IResource in interfaces
        tree = Resource()
        tree.putChild(b"", Whoami(avatarId))
        tree.putChild(b"who", Whoami(avatarId))
        tree.putChild(b"async", AsyncPage())
        return IResource, tree, lambda: self.logouts.append(avatarId)


def users() -> InMemoryUsernamePasswordDatabaseDontUse:
    return InMemoryUsernamePasswordDatabaseDontUse(alice="wonderland", bob=b"builder")


def site(wrapper: HTTPAuthSessionWrapper) -> Site:
    root = Resource()
    root.putChild(b"secret", wrapper)
    result = Site(root)
    result.stats = WorkerStats()
    return result


def wrapper(*factories: Any, checkers: Any = None, **options: Any) -> HTTPAuthSessionWrapper:
    realm = Realm()
    portal = Portal(realm, checkers if checkers is not None else [users()])
    guard = HTTPAuthSessionWrapper(portal, list(factories or [BASIC]), **options)
    guard.realm = realm  # type: ignore[attr-defined]
    return guard


BASIC = BasicCredentialFactory(b"hive test")


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def exchange(
    target: Site, path: str, headers: dict[str, str] | None = None, method: str = "GET"
) -> Response:
    async def go() -> Response:
        h = Harness(target)
        lines = [f"{method} {path} HTTP/1.1", "Host: x"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        h.send(("\r\n".join(lines) + "\r\n\r\n").encode())
        for _ in range(50):
            await settle()
            if h.connection.idle:
                break
        return h.response(method)

    result: Response = run(go())
    return result


def challenges(response: Response) -> list[str]:
    return response.headers.get_all("WWW-Authenticate") or []


def logins(target: Site) -> dict[str, int]:
    stats = target.stats
    assert isinstance(stats, WorkerStats)
    return stats.snapshot(accepted=0, active=0, idle=0).logins


# -- Basic ------------------------------------------------------------------------------------


def test_no_credentials_get_a_challenge() -> None:
    target = site(wrapper())
    for path in ("/secret", "/secret/", "/secret/who"):
        response = exchange(target, path)
        assert response.status == 401
        assert challenges(response) == ['Basic realm="hive test", charset=UTF-8']
        assert response.body == b"Unauthorized"
    assert exchange(target, "/secret", method="HEAD").body == b""
    assert logins(target) == {}  # asking for the challenge is no failed login


def test_the_avatar_gets_the_rest_of_the_path() -> None:
    guard = wrapper()
    target = site(guard)
    response = exchange(target, "/secret/who", basic("alice", "wonderland"))
    assert response.status == 200
    assert response.body == b"user=b'alice' path=secret/who"
    assert exchange(target, "/secret/", basic("bob", "builder")).body == (
        b"user=b'bob' path=secret/"
    )
    assert exchange(target, "/secret/async", basic("bob", "builder")).body == b"async"
    assert guard.realm.logouts == [b"alice", b"bob", b"bob"]  # type: ignore[attr-defined]
    assert logins(target) == {"succeeded": 3}


def test_rendering_the_wrapper_itself_renders_the_avatar() -> None:
    class Page(Resource):
        def render_GET(self, request: Request) -> bytes:
            return b"the avatar itself"

    @implementer(IRealm)
    class OnePage:
        def requestAvatar(self, avatarId: Any, mind: object, *interfaces: Any) -> Any:
            return IResource, Page(), lambda: None

    target = site(HTTPAuthSessionWrapper(Portal(OnePage(), [users()]), [BASIC]))
    response = exchange(target, "/secret", basic("alice", "wonderland"))
    assert (response.status, response.body) == (200, b"the avatar itself")
    # An avatar without render_GET gets what any such resource gets: 405.
    response = exchange(site(wrapper()), "/secret", basic("alice", "wonderland"))
    assert response.status == 405


def test_wrong_and_unreadable_credentials_are_failures() -> None:
    target = site(wrapper())
    for headers in [
        basic("alice", "wrong"),
        basic("nobody", "wonderland"),
        {"Authorization": "Basic !!!notbase64"},
        {"Authorization": "Basic " + base64.b64encode(b"no colon").decode()},
    ]:
        response = exchange(target, "/secret/who", headers)
        assert response.status == 401, headers
        assert challenges(response) == ['Basic realm="hive test", charset=UTF-8']
    assert logins(target) == {"failed": 4}
    # A scheme the wrapper does not offer is not an attempt at all.
    assert exchange(target, "/secret", {"Authorization": "Bearer abc"}).status == 401
    assert logins(target) == {"failed": 4}


def test_anonymous_login_when_the_portal_allows_it() -> None:
    target = site(wrapper(checkers=[users(), AllowAnonymousAccess()]))
    response = exchange(target, "/secret/who")
    assert response.status == 200
    assert response.body == b"user=%r path=secret/who" % (ANONYMOUS,)
    assert exchange(target, "/secret/who", basic("alice", "wonderland")).body.startswith(
        b"user=b'alice'"
    )


def test_an_error_in_the_realm_is_a_500() -> None:
    @implementer(IRealm)
    class Broken:
        def requestAvatar(self, avatarId: Any, mind: object, *interfaces: Any) -> Any:
            raise RuntimeError("realm bug")

    guard = HTTPAuthSessionWrapper(Portal(Broken(), [users()]), [BASIC])
    assert exchange(site(guard), "/secret", basic("alice", "wonderland")).status == 500


def test_the_old_hive_forms_say_what_to_use() -> None:
    with pytest.raises(TypeError, match="Portal"):
        HTTPAuthSessionWrapper(users(), [BASIC])
    with pytest.raises(TypeError, match="Portal"):
        HTTPAuthSessionWrapper(Portal(Realm(), [users()]), [BASIC], Resource())


def test_only_factories_the_portal_can_check_are_offered(tmp_path: Any) -> None:
    path = tmp_path / "passwd"
    path.write_text(f"alice:{_hashing.hash_password(b'x', 'bcrypt', rounds=4)}\n")
    portal = Portal(Realm(), [HashedPasswordDB(path)])
    digest = DigestCredentialFactory("SHA-256", "r")
    guard = HTTPAuthSessionWrapper(portal, [digest, BASIC])
    assert challenges(exchange(site(guard), "/secret")) == [
        'Basic realm="hive test", charset=UTF-8'
    ]
    with pytest.raises(ValueError, match="Digest needs a checker with clear passwords"):
        HTTPAuthSessionWrapper(portal, [digest])


# -- Digest -----------------------------------------------------------------------------------


def h(algorithm: str, *parts: bytes) -> str:
    name = {"MD5": "md5", "SHA-256": "sha256"}[algorithm]
    return hashlib.new(name, b":".join(parts)).hexdigest()


def digest_answer(
    challenge: str,
    user: str,
    password: str,
    uri: str,
    method: str = "GET",
    cnonce: str = "0a4f113b",
    nc: str = "00000001",
) -> dict[str, str]:
    """The Authorization a client computes from a WWW-Authenticate (RFC 7616 3.4.1),
    written here from the RFC, apart from hive's own arithmetic."""
    scheme, _, rest = challenge.partition(" ")
    assert scheme == "Digest"
    params = {k: v.decode() for k, v in parse_params(rest.encode()).items()}
    algorithm = params["algorithm"]
    ha1 = h(algorithm, user.encode(), params["realm"].encode(), password.encode())
    ha2 = h(algorithm, method.encode(), uri.encode())
    response = h(
        algorithm,
        *(x.encode() for x in (ha1, params["nonce"], nc, cnonce, "auth", ha2)),
    )
    fields = (
        f'username="{user}", realm="{params["realm"]}", nonce="{params["nonce"]}",'
        f' uri="{uri}", algorithm={algorithm}, qop=auth, nc={nc}, cnonce="{cnonce}",'
        f' response="{response}", opaque="{params["opaque"]}"'
    )
    return {"Authorization": "Digest " + fields}


def digest_challenge(response: Response, algorithm: str) -> str:
    (found,) = [c for c in challenges(response) if f"algorithm={algorithm}," in c]
    return found


def test_rfc_7616_examples() -> None:
    fields = {
        "username": b"Mufasa",
        "realm": b"http-auth@example.org",
        "nonce": b"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
        "uri": b"/dir/index.html",
        "qop": b"auth",
        "nc": b"00000001",
        "cnonce": b"f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
    }
    for algorithm, response in [
        ("MD5", b"8ca523f5e9506fed4657c9700eebdbec"),
        ("SHA-256", b"753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
    ]:
        given = fields | {"algorithm": algorithm.encode(), "response": response}
        creds = credentials.DigestedCredentials(b"Mufasa", b"GET", b"http-auth@example.org", given)
        assert creds.checkPassword(b"Circle of Life")
        assert not creds.checkPassword(b"Circle Of Life")
        ha1 = h(algorithm, b"Mufasa", b"http-auth@example.org", b"Circle of Life").encode()
        assert creds.checkHash(ha1)
        assert not creds.checkHash(b"0" * len(ha1))


def test_digest_challenges_follow_rfc_7616() -> None:
    guard = wrapper(
        DigestCredentialFactory("SHA-256", "hive test"), DigestCredentialFactory("md5", "hive test")
    )
    first, second = challenges(exchange(site(guard), "/secret"))
    pattern = (
        r'Digest realm="hive test", qop="auth", algorithm=%s, nonce="[A-Za-z0-9_-]{43}",'
        r' opaque="[0-9a-f]{32}", charset=UTF-8'
    )
    assert re.fullmatch(pattern % "SHA-256", first), first
    assert re.fullmatch(pattern % "MD5", second), second


@pytest.mark.parametrize("algorithm", ["SHA-256", "MD5"])
def test_a_digest_login(algorithm: str) -> None:
    guard = wrapper(
        DigestCredentialFactory("SHA-256", "hive test"), DigestCredentialFactory("MD5", "hive test")
    )
    target = site(guard)
    challenge = digest_challenge(exchange(target, "/secret/who"), algorithm)
    good = digest_answer(challenge, "alice", "wonderland", "/secret/who")
    response = exchange(target, "/secret/who", good)
    assert response.status == 200, response
    assert response.body == b"user=b'alice' path=secret/who"
    # The same nonce serves the next requests (a client counts nc up).
    again = digest_answer(challenge, "alice", "wonderland", "/secret/", nc="00000002")
    assert exchange(target, "/secret/", again).status == 200
    # Wrong password, another URI than the one hashed, a forged nonce: 401.
    wrong = digest_answer(challenge, "alice", "wonderlanD", "/secret/who")
    assert exchange(target, "/secret/who", wrong).status == 401
    assert exchange(target, "/secret/", good).status == 401
    forged = good["Authorization"].replace('nonce="', 'nonce="x', 1)
    assert exchange(target, "/secret/who", {"Authorization": forged}).status == 401
    assert logins(target) == {"succeeded": 2, "failed": 3}


def test_any_worker_takes_a_nonce_another_made() -> None:
    # Two factories (two workers' copies of the application) share the server's secret.
    made = site(wrapper(DigestCredentialFactory("SHA-256", "hive test")))
    other = site(wrapper(DigestCredentialFactory("SHA-256", "hive test")))
    challenge = digest_challenge(exchange(made, "/secret/"), "SHA-256")
    answer = digest_answer(challenge, "bob", "builder", "/secret/")
    assert exchange(other, "/secret/", answer).status == 200


def test_a_digest_login_behind_a_proxys_prefix() -> None:
    # The client hashed the target it sent (/app/secret/who); hive received /secret/who.
    target = site(wrapper(DigestCredentialFactory("SHA-256", "hive test")))
    target.trusted_proxies = TrustedProxies(["192.0.2.7"])
    via = {"X-Forwarded-Prefix": "/app"}
    challenge = digest_challenge(exchange(target, "/secret/who", via), "SHA-256")
    answer = digest_answer(challenge, "alice", "wonderland", "/app/secret/who?x=1")
    assert exchange(target, "/secret/who?x=1", {**via, **answer}).status == 200
    received = digest_answer(challenge, "alice", "wonderland", "/secret/who?x=1", nc="00000002")
    assert exchange(target, "/secret/who?x=1", {**via, **received}).status == 401


def test_a_nonce_is_bound_to_the_client_address() -> None:
    target = site(wrapper(DigestCredentialFactory("SHA-256", "hive test")))
    target.trusted_proxies = TrustedProxies(["192.0.2.7"])
    via = {"X-Forwarded-For": "198.51.100.1"}
    challenge = digest_challenge(exchange(target, "/secret/", via), "SHA-256")
    answer = digest_answer(challenge, "bob", "builder", "/secret/")
    assert exchange(target, "/secret/", answer | via).status == 200
    assert exchange(target, "/secret/", answer | {"X-Forwarded-For": "198.51.100.2"}).status == 401


def test_an_expired_nonce_with_the_right_password_is_stale() -> None:
    factory = DigestCredentialFactory("SHA-256", "hive test")
    now = [1_000_000.0]
    factory.digest._clock = lambda: now[0]
    target = site(wrapper(factory))
    challenge = digest_challenge(exchange(target, "/secret/"), "SHA-256")
    now[0] += factory.digest.CHALLENGE_LIFETIME_SECS + 1
    good = digest_answer(challenge, "bob", "builder", "/secret/")
    response = exchange(target, "/secret/", good)
    assert response.status == 401
    (fresh,) = challenges(response)
    assert fresh.endswith(", charset=UTF-8, stale=true")
    assert logins(target) == {}  # an expired nonce is no failed login
    # The wrong password with an expired nonce is a plain failure, without stale.
    bad = digest_answer(challenge, "bob", "wrong", "/secret/")
    assert "stale" not in challenges(exchange(target, "/secret/", bad))[0]
    assert logins(target) == {"failed": 1}
    # Answering the fresh challenge works.
    answer = digest_answer(fresh.replace(", stale=true", ""), "bob", "builder", "/secret/")
    assert exchange(target, "/secret/", answer).status == 200


def test_a_str_realm_works_where_twisted_fails() -> None:
    # The HTTP authentication lesson gives DigestCredentialFactory("md5", "localhost:8080").
    target = site(wrapper(DigestCredentialFactory("md5", "localhost:8080")))
    challenge = digest_challenge(exchange(target, "/secret/"), "MD5")
    assert 'realm="localhost:8080"' in challenge
    answer = digest_answer(challenge, "alice", "wonderland", "/secret/")
    assert exchange(target, "/secret/", answer).status == 200


def test_digest_algorithms_hive_does_not_offer_say_so() -> None:
    with pytest.raises(ValueError, match="SHA-1"):
        DigestCredentialFactory("sha", "r")
    with pytest.raises(ValueError, match="-sess"):
        DigestCredentialFactory("MD5-sess", "r")
    with pytest.raises(ValueError, match="control characters"):
        DigestCredentialFactory("MD5", "a\nb")


@pytest.mark.parametrize(
    "broken",
    [
        'username="alice", realm="hive test"',  # parameters missing
        "username=alice,, ,",  # malformed
        'username="a", username="b"',
        'username="alice", realm="hive test", nonce="x", uri="/secret/", response="zz",'
        ' qop=auth, nc=00000001, cnonce="c", opaque="o"',
    ],
)
def test_unreadable_digest_credentials_are_failures(broken: str) -> None:
    target = site(wrapper(DigestCredentialFactory("MD5", "hive test")))
    assert exchange(target, "/secret/", {"Authorization": "Digest " + broken}).status == 401
    assert logins(target) == {"failed": 1}


def test_digest_decode_refuses_other_qop_realm_and_algorithm() -> None:
    factory = credentials.DigestCredentialFactory("MD5", "r")
    params = factory.getChallenge("192.0.2.7")
    base = {
        "username": "u",
        "realm": "r",
        "nonce": params["nonce"].decode(),
        "uri": "/",
        "response": "0" * 32,
        "qop": "auth",
        "nc": "00000001",
        "cnonce": "c",
        "opaque": params["opaque"].decode(),
    }

    def decode(**changes: str) -> Any:
        fields = base | changes
        text = ", ".join(f'{k}="{v}"' for k, v in fields.items())
        return factory.decode(text.encode(), b"GET", "192.0.2.7", b"/")

    assert decode().username == b"u"
    for change in (
        {"qop": "auth-int"},
        {"realm": "other"},
        {"algorithm": "SHA-256"},
        {"nc": "1"},
        {"opaque": "0" * 32},
        {"userhash": "true"},
        {"uri": "/other"},
    ):
        with pytest.raises(LoginFailed):
            decode(**change)
    assert decode(**{"username*": "UTF-8''J%C3%A4s%C3%B8n"}).username == b"u"
    fields = {k: v for k, v in base.items() if k != "username"}
    fields["username*"] = "UTF-8''J%C3%A4s%C3%B8n"
    text = ", ".join(f'{k}="{v}"' for k, v in fields.items())
    assert factory.decode(text.encode(), b"GET", "192.0.2.7").username == "Jäsøn".encode()


# -- rate limits ------------------------------------------------------------------------------


def test_login_limiter_counts_failures_per_address_in_a_window() -> None:
    now = [100.0]
    limiter = LoginLimiter(failures=3, window=60.0, clock=lambda: now[0])
    assert not limiter.failed("a")
    assert not limiter.failed("a")
    assert limiter.retry_after("a") == 0
    assert limiter.failed("a")
    assert limiter.retry_after("a") == 60.0
    assert limiter.retry_after("b") == 0
    now[0] += 30
    assert limiter.retry_after("a") == 30.0
    now[0] += 30
    assert limiter.retry_after("a") == 0
    # Failures spread wider than the window never add up.
    for _ in range(10):
        limiter.failed("c")
        limiter.failed("c")
        now[0] += 61
    assert limiter.retry_after("c") == 0


def test_login_limiter_remembers_a_bounded_number_of_addresses() -> None:
    limiter = LoginLimiter(failures=1, max_clients=2, clock=lambda: 0.0)
    for address in ("a", "b", "c"):
        limiter.failed(address)
    assert limiter.retry_after("a") == 0  # forgotten, the oldest
    assert limiter.retry_after("b") > 0 and limiter.retry_after("c") > 0


def test_too_many_failures_get_429_even_with_the_right_password() -> None:
    now = [0.0]
    limiter = LoginLimiter(failures=3, window=60.0, clock=lambda: now[0])
    target = site(wrapper(loginLimiter=limiter))
    for _ in range(3):
        assert exchange(target, "/secret/", basic("alice", "guess")).status == 401
    limited = exchange(target, "/secret/", basic("alice", "wonderland"))
    assert limited.status == 429
    assert limited.header("Retry-After") == "60"
    # Without credentials the challenge is still given: asking costs nothing.
    assert exchange(target, "/secret/").status == 401
    now[0] += 61
    assert exchange(target, "/secret/", basic("alice", "wonderland")).status == 200
    assert logins(target) == {"failed": 3, "limited": 1, "succeeded": 1}


def test_limits_follow_the_client_behind_a_trusted_proxy() -> None:
    limiter = LoginLimiter(failures=2, clock=lambda: 0.0)
    target = site(wrapper(loginLimiter=limiter))
    target.trusted_proxies = TrustedProxies(["192.0.2.7"])
    for _ in range(2):
        exchange(target, "/secret/", basic("alice", "x") | {"X-Forwarded-For": "198.51.100.1"})
    attacker = basic("alice", "wonderland") | {"X-Forwarded-For": "198.51.100.1"}
    someone_else = basic("alice", "wonderland") | {"X-Forwarded-For": "198.51.100.2"}
    assert exchange(target, "/secret/", attacker).status == 429
    assert exchange(target, "/secret/", someone_else).status == 200


def test_ipv6_clients_are_counted_by_their_64() -> None:
    limiter = LoginLimiter(failures=2, clock=lambda: 0.0)
    target = site(wrapper(loginLimiter=limiter))
    target.trusted_proxies = TrustedProxies(["192.0.2.7"])
    for host in ("2001:db8:1:2::1", "2001:db8:1:2::ffff"):
        exchange(target, "/secret/", basic("alice", "x") | {"X-Forwarded-For": host})
    same_64 = basic("alice", "wonderland") | {"X-Forwarded-For": "2001:db8:1:2::abcd"}
    other_64 = basic("alice", "wonderland") | {"X-Forwarded-For": "2001:db8:1:3::1"}
    assert exchange(target, "/secret/", same_64).status == 429
    assert exchange(target, "/secret/", other_64).status == 200


def test_no_limiter_means_no_limit() -> None:
    target = site(wrapper(loginLimiter=None))
    for _ in range(20):
        exchange(target, "/secret/", basic("alice", "x"))
    assert exchange(target, "/secret/", basic("alice", "wonderland")).status == 200


def test_a_full_verifier_answers_503(tmp_path: Any) -> None:
    path = tmp_path / "passwd"
    path.write_text(f"alice:{_hashing.hash_password(b'x', 'bcrypt', rounds=4)}\n")
    checker = HashedPasswordDB(path, threads=1, backlog=0)
    checker.verifier._pool()
    checker.verifier.pending = 1  # as if one login were being verified
    target = site(HTTPAuthSessionWrapper(Portal(Realm(), [checker]), [BASIC]))
    response = exchange(target, "/secret/", basic("alice", "x"))
    assert response.status == 503
    assert response.header("Retry-After") == "1"
    assert logins(target) == {"busy": 1}
