from __future__ import annotations

import copy
import pickle
import time

import pytest

from hive import http

IMF = b"Sun, 06 Nov 1994 08:49:37 GMT"
IMF_SECONDS = 784111777


def test_status_constants_have_twisted_names() -> None:
    expected = {
        "OK": 200,
        "CREATED": 201,
        "ACCEPTED": 202,
        "NO_CONTENT": 204,
        "MOVED_PERMANENTLY": 301,
        "FOUND": 302,
        "SEE_OTHER": 303,
        "NOT_MODIFIED": 304,
        "TEMPORARY_REDIRECT": 307,
        "PERMANENT_REDIRECT": 308,
        "BAD_REQUEST": 400,
        "UNAUTHORIZED": 401,
        "FORBIDDEN": 403,
        "NOT_FOUND": 404,
        "NOT_ALLOWED": 405,
        "NOT_ACCEPTABLE": 406,
        "REQUEST_TIMEOUT": 408,
        "CONFLICT": 409,
        "GONE": 410,
        "LENGTH_REQUIRED": 411,
        "PRECONDITION_FAILED": 412,
        "REQUEST_ENTITY_TOO_LARGE": 413,
        "REQUEST_URI_TOO_LONG": 414,
        "UNSUPPORTED_MEDIA_TYPE": 415,
        "REQUESTED_RANGE_NOT_SATISFIABLE": 416,
        "EXPECTATION_FAILED": 417,
        "TOO_MANY_REQUESTS": 429,
        "REQUEST_HEADER_FIELDS_TOO_LARGE": 431,
        "INTERNAL_SERVER_ERROR": 500,
        "NOT_IMPLEMENTED": 501,
        "BAD_GATEWAY": 502,
        "SERVICE_UNAVAILABLE": 503,
        "GATEWAY_TIMEOUT": 504,
        "HTTP_VERSION_NOT_SUPPORTED": 505,
        "SWITCHING": 101,
        "MULTIPLE_CHOICE": 300,
        "PROXY_AUTH_REQUIRED": 407,
        "INSUFFICIENT_STORAGE_SPACE": 507,
        "NOT_EXTENDED": 510,
    }
    for name, code in expected.items():
        assert getattr(http, name) == code, name
        assert code in http.RESPONSES, name


def test_responses_are_rfc9110_phrases_as_bytes() -> None:
    assert http.RESPONSES[http.OK] == b"OK"
    assert http.RESPONSES[http.NOT_ALLOWED] == b"Method Not Allowed"
    assert http.RESPONSES[http.REQUEST_ENTITY_TOO_LARGE] == b"Content Too Large"
    assert http.RESPONSES[http.REQUESTED_RANGE_NOT_SATISFIABLE] == b"Range Not Satisfiable"
    assert http.RESPONSES[http.GATEWAY_TIMEOUT] == b"Gateway Timeout"
    assert all(isinstance(phrase, bytes) for phrase in http.RESPONSES.values())
    assert all(b"\r" not in phrase and b"\n" not in phrase for phrase in http.RESPONSES.values())


def test_reason_phrase() -> None:
    assert http.reason_phrase(404) == b"Not Found"
    assert http.reason_phrase(429) == b"Too Many Requests"
    assert http.reason_phrase(599) == b"Unknown Status"


def test_no_body_codes() -> None:
    assert frozenset({204, 304}) == http.NO_BODY_CODES
    assert 200 not in http.NO_BODY_CODES


def test_cached_is_a_singleton_with_a_nice_repr() -> None:
    assert repr(http.CACHED) == "CACHED"
    assert http.CACHED is http.CachedType.CACHED
    assert copy.copy(http.CACHED) is http.CACHED
    assert copy.deepcopy(http.CACHED) is http.CACHED
    assert pickle.loads(pickle.dumps(http.CACHED)) is http.CACHED
    assert http.CACHED != b"CACHED"
    assert http.CACHED is not None


def test_datetime_to_string() -> None:
    assert http.datetimeToString(IMF_SECONDS) == IMF
    assert http.datetimeToString(0) == b"Thu, 01 Jan 1970 00:00:00 GMT"
    assert http.datetimeToString(IMF_SECONDS + 0.999) == IMF


def test_datetime_to_string_defaults_to_now() -> None:
    before = int(time.time())
    parsed = http.stringToDatetime(http.datetimeToString())
    assert before <= parsed <= time.time() + 1


def test_datetime_to_log_string() -> None:
    assert http.datetimeToLogString(971166936) == "[10/Oct/2000:08:35:36 +0000]"
    assert http.datetimeToLogString(0) == "[01/Jan/1970:00:00:00 +0000]"
    assert http.datetimeToLogString().startswith("[")


@pytest.mark.parametrize(
    "text",
    [
        IMF,
        b"Sunday, 06-Nov-94 08:49:37 GMT",
        b"Sun Nov  6 08:49:37 1994",
        b"Sun Nov 6 08:49:37 1994",
        b"06 Nov 1994 08:49:37 GMT",
        b"Sun, 06 Nov 1994 08:49:37",
        b"sun, 06 nov 1994 08:49:37 gmt",
        b"Sunday, 06-Nov-1994 08:49:37 GMT",
        b"  Sun, 06 Nov 1994 08:49:37 GMT  ",
        IMF.decode(),
    ],
)
def test_string_to_datetime_formats(text: bytes | str) -> None:
    assert http.stringToDatetime(text) == IMF_SECONDS


@pytest.mark.parametrize("seconds", [0, 1, IMF_SECONDS, 951782400, 2147483647, 4102444800])
def test_date_round_trips_in_all_three_formats(seconds: int) -> None:
    imf = http.datetimeToString(seconds)
    assert http.stringToDatetime(imf) == seconds
    weekday, day, month, year, clock, _gmt = imf.decode().replace(",", "").split()
    asctime = f"{weekday} {month} {int(day):2d} {clock} {year}".encode()
    assert http.stringToDatetime(asctime) == seconds
    rfc850 = f"{weekday}, {day}-{month}-{year} {clock} GMT".encode()
    assert http.stringToDatetime(rfc850) == seconds


def test_rfc850_two_digit_year_follows_rfc9110() -> None:
    this_year = time.gmtime().tm_year
    recent = (this_year - 1) % 100
    parsed = http.stringToDatetime(b"Monday, 01-Jan-%02d 00:00:00 GMT" % recent)
    assert time.gmtime(parsed).tm_year == this_year - 1
    far = (this_year + 60) % 100
    parsed = http.stringToDatetime(b"Monday, 01-Jan-%02d 00:00:00 GMT" % far)
    assert time.gmtime(parsed).tm_year == this_year + 60 - 100


@pytest.mark.parametrize(
    "garbage",
    [
        b"",
        b"yesterday",
        b"Sun, 06 Nov 1994",
        b"Sun, 06 Foo 1994 08:49:37 GMT",
        b"Sun, 32 Nov 1994 08:49:37 GMT",
        b"Sun, 30 Feb 1994 08:49:37 GMT",
        b"Sun, 06 Nov 1994 25:49:37 GMT",
        b"Sun, 06 Nov 1994 08:49:37 GMT extra",
        b"Blursday, 06 Nov 1994 08:49:37 GMT",
        b"784111777",
        "Sun, 06 Nov 1994 08:49:37 GMT\u2603",
    ],
)
def test_string_to_datetime_refuses_garbage(garbage: bytes | str) -> None:
    with pytest.raises(ValueError):
        http.stringToDatetime(garbage)
