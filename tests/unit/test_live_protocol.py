"""The live protocol's messages, the argument checks and the page records: pure functions."""

from __future__ import annotations

import json
from typing import Any, Literal

import pytest

from hive.live import _records as records
from hive.live import protocol
from hive.live._args import ArgumentError, Parameters
from hive.session import MemoryStore

# -- messages ---------------------------------------------------------------------------------


def test_a_call_reads_back() -> None:
    message = protocol.parse('{"t":"call","id":7,"el":"3","m":"kick","a":["bob"],"k":{"x":1}}')
    assert message == protocol.Call(7, "3", "kick", ["bob"], {"x": 1})


def test_a_call_without_arguments() -> None:
    assert protocol.parse('{"t":"call","id":1,"el":"1","m":"add"}') == protocol.Call(
        1, "1", "add", [], {}
    )


def test_hello_gone_result_error() -> None:
    assert protocol.parse('{"t":"hello","els":[["1",null],["2","1"]]}') == protocol.Hello(
        (("1", None), ("2", "1"))
    )
    assert protocol.parse('{"t":"gone","els":["2"]}') == protocol.Gone(("2",))
    assert protocol.parse('{"t":"result","id":3,"v":[1]}') == protocol.Result(3, [1])
    failure = protocol.parse('{"t":"error","id":3,"e":{"name":"TypeError","message":"x"}}')
    assert failure == protocol.Failure(3, "TypeError", "x")


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        '"call"',
        '{"t":"nope"}',
        '{"t":"call","id":"1","el":"1","m":"x"}',
        '{"t":"call","id":-1,"el":"1","m":"x"}',
        '{"t":"call","id":true,"el":"1","m":"x"}',
        '{"t":"call","id":1,"el":"","m":"x"}',
        '{"t":"call","id":1,"el":"1","m":"' + "x" * 200 + '"}',
        '{"t":"call","id":1,"el":"1","m":"x","a":{}}',
        '{"t":"call","id":1,"el":"1","m":"x","a":[NaN]}',
        '{"t":"hello","els":[["1"]]}',
        '{"t":"hello"}',
        '{"t":"error","id":1,"e":"x"}',
        "[" * 100000 + "]" * 100000,
    ],
    ids=lambda text: text[:40],
)
def test_what_is_not_the_protocol(text: str) -> None:
    with pytest.raises(protocol.ProtocolError):
        protocol.parse(text)


def test_credentials_come_from_the_offered_subprotocols() -> None:
    offered = ["hive-live.1", "hive-page.PAGE.TOKEN-x_y"]
    assert protocol.credentials_from(offered) == ("PAGE", "TOKEN-x_y")
    assert protocol.credentials_from(["hive-live.1"]) is None
    assert protocol.credentials_from(["hive-page.PAGE"]) is None
    assert protocol.credentials_from(["hive-page..TOKEN"]) is None


def test_what_the_server_sends_is_json() -> None:
    assert json.loads(protocol.html("1", None, "<p>é</p>")) == {
        "t": "html",
        "el": "1",
        "part": None,
        "html": "<p>é</p>",
    }
    assert json.loads(protocol.call(2, "1", "flash", ["x"]))["m"] == "flash"
    assert json.loads(protocol.error(2, "LiveError", "no"))["e"] == {
        "name": "LiveError",
        "message": "no",
    }
    with pytest.raises(ValueError):
        protocol.result(1, float("nan"))
    with pytest.raises(TypeError):
        protocol.result(1, object())


# -- the argument checks ---------------------------------------------------------------------


class Methods:
    def plain(self, name: str, times: int = 1, *, loud: bool = False) -> None: ...

    def numbers(self, x: float, items: list[int], pair: tuple[str, int]) -> None: ...

    def nested(self, table: dict[str, list[str | None]], mode: Literal["a", "b"]) -> None: ...

    def anything(self, value, other: Any, *rest: int, **named: str) -> None: ...  # type: ignore[no-untyped-def]

    def optional(self, when: int | None = None) -> None: ...


def bind(method: Any, *args: Any, **kwargs: Any) -> tuple[list[Any], dict[str, Any]]:
    return Parameters(method, f"Methods.{method.__name__}").bind(list(args), kwargs)


def test_arguments_that_fit() -> None:
    assert bind(Methods.plain, "bob") == (["bob"], {})
    assert bind(Methods.plain, "bob", 3, loud=True) == (["bob", 3], {"loud": True})
    assert bind(Methods.plain, name="bob") == ([], {"name": "bob"})
    assert bind(Methods.numbers, 1, [1, 2], ["a", 2]) == ([1.0, [1, 2], ("a", 2)], {})
    assert bind(Methods.nested, {"k": ["x", None]}, "b") == ([{"k": ["x", None]}, "b"], {})
    assert bind(Methods.anything, {"a": 1}, [None], 1, 2, x="y") == (
        [{"a": 1}, [None], 1, 2],
        {"x": "y"},
    )
    assert bind(Methods.optional) == ([], {})
    assert bind(Methods.optional, None) == ([None], {})


@pytest.mark.parametrize(
    ("method", "args", "kwargs", "says"),
    [
        (Methods.plain, [], {}, "missing 'name'"),
        (Methods.plain, [1], {}, "'name' must be a string, got a number"),
        (Methods.plain, ["a", True], {}, "'times' must be an integer, got a boolean"),
        (Methods.plain, ["a", 1.5], {}, "'times' must be an integer, got a number"),
        (Methods.plain, ["a", "1"], {}, "'times' must be an integer, got a string"),
        (Methods.plain, ["a", 1, 2], {}, "takes 2 positional arguments, got 3"),
        (Methods.plain, ["a"], {"loud": 1}, "'loud' must be a boolean"),
        (Methods.plain, ["a"], {"quiet": True}, "no parameter 'quiet'"),
        (Methods.plain, ["a"], {"name": "b"}, "'name' twice"),
        (Methods.numbers, [True, [], ["a", 1]], {}, "'x' must be a number, got a boolean"),
        (Methods.numbers, [1, [1, "2"], ["a", 1]], {}, "'items'[1] must be an integer"),
        (Methods.numbers, [1, [], ["a"]], {}, "'pair' must be an array of 2"),
        (Methods.nested, [{"k": [1]}, "a"], {}, "'table'['k'][0] must be a string or null"),
        (Methods.nested, [{}, "c"], {}, "'mode' must be one of 'a', 'b'"),
        (Methods.anything, [1, 2, "3"], {}, "'rest' must be an integer"),
        (Methods.anything, [1, 2], {"x": 3}, "'x' must be a string"),
        (Methods.optional, ["1"], {}, "'when' must be an integer or null"),
    ],
)
def test_arguments_that_do_not_fit(
    method: Any, args: list[Any], kwargs: dict[str, Any], says: str
) -> None:
    with pytest.raises(ArgumentError, match=says.replace("[", r"\[").replace("]", r"\]")):
        bind(method, *args, **kwargs)


class Thing:
    pass


def test_an_annotation_that_is_no_json_type_is_refused_at_once() -> None:
    def method(self: Any, thing: Thing) -> None: ...

    with pytest.raises(TypeError, match="is not a JSON type"):
        Parameters(method, "m")

    def keys(self: Any, table: dict[int, str]) -> None: ...

    with pytest.raises(TypeError, match="keys are strings"):
        Parameters(keys, "m")


# -- page records ---------------------------------------------------------------------------


def test_the_token_is_bound_to_the_session() -> None:
    record = records.PageRecord(records.new_token(), records.session_hash(b"session-A"))
    assert record.matches(b"session-A", record.token)
    assert not record.matches(b"session-B", record.token)
    assert not record.matches(b"session-A", record.token[:-1] + "x")
    assert not record.matches(b"session-A", "")
    assert not record.matches(b"session-A", "é" * 5)
    assert b"session-A" not in record.dumps().encode()


def test_a_record_reads_back_from_the_store() -> None:
    store = MemoryStore()
    record = records.PageRecord("tok", records.session_hash(b"s"), "owner", 4)
    record.elements["1"] = records.ElementRecord("m.C", {"count": 3}, {"news": "news"})
    assert records.save(store, "PAGE", record, 100.0, create=True)
    again = records.load(store, "PAGE", 50.0)
    assert again == record
    assert records.load(store, "PAGE", 100.0) is None  # expired
    assert records.load(store, "OTHER", 50.0) is None
    assert list(store.records) == ["hive.live.PAGE"]


def test_a_record_that_does_not_read_back_is_none() -> None:
    store = MemoryStore()
    store.save("hive.live.X", '{"v":1}', 100.0, create=True)
    assert records.load(store, "X", 0.0) is None


def test_a_record_too_large_is_not_saved() -> None:
    store = MemoryStore()
    record = records.PageRecord("tok", "s")
    record.elements["1"] = records.ElementRecord("m.C", {"big": "x" * records.MAX_RECORD})
    assert not records.save(store, "P", record, 100.0, create=True)
    assert store.records == {}
