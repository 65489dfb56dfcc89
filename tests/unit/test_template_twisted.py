"""hive.template's output against Twisted 26.10's, recorded once (tests/unit/template_twisted).

The how-to's programs run unchanged but for the import; the recorded files need no Twisted.
"""

from __future__ import annotations

import asyncio

import pytest

import hive.template
from hive.template import Element, XMLString, flatten, flattenString, renderer
from tests.unit.template_twisted.cases import LISTINGS, RECORDED, WAIT_FOR_IT, roots

CASES = roots(hive.template, lambda name: str(LISTINGS / name))


def test_every_case_was_recorded() -> None:
    recorded = {path.name[: -len(".html")] for path in RECORDED.glob("*.html")}
    assert set(CASES) | {"wait_for_it.before", "wait_for_it.after"} == recorded
    assert (RECORDED / "VERSION").read_text() == "Twisted 26.10.0\n"


@pytest.mark.parametrize("name", sorted(CASES))
def test_output_is_twisteds(name: str) -> None:
    expected = (RECORDED / f"{name}.html").read_bytes()
    assert asyncio.run(flattenString(None, CASES[name]())) == expected


@pytest.mark.parametrize("name", sorted(CASES))
def test_output_is_twisteds_when_written_by_flatten(name: str) -> None:
    written: list[bytes] = []
    asyncio.run(flatten(None, CASES[name](), written.append))
    assert b"".join(written) == (RECORDED / f"{name}.html").read_bytes()


def test_rendering_twice_gives_the_same_page() -> None:
    element = CASES["iteration"]()
    first = asyncio.run(flattenString(None, element))
    assert asyncio.run(flattenString(None, element)) == first


def test_wait_for_it() -> None:
    """wait_for_it.py with an asyncio future for the Deferred: what comes before the wait
    is written before the future has a value, the rest after, byte for byte."""

    class WaitForIt(Element):
        def __init__(self, future: asyncio.Future[str]) -> None:
            super().__init__(loader=XMLString(WAIT_FOR_IT))
            self.future = future

        @renderer
        async def wait(self, request: object, tag: hive.template.Tag) -> object:
            return tag("A value: " + repr(await self.future))

    async def main() -> tuple[bytes, bytes]:
        written: list[bytes] = []
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        done = flatten(None, WaitForIt(future), written.append)
        before = b"".join(written)  # written during the call, as Twisted does
        written.clear()
        future.set_result("<value>")
        await done
        return before, b"".join(written)

    before, after = asyncio.run(main())
    assert before == (RECORDED / "wait_for_it.before.html").read_bytes()
    assert after == (RECORDED / "wait_for_it.after.html").read_bytes()
