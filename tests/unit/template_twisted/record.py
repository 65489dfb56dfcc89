"""Record Twisted's output for the cases, once: ``python -m tests.unit.template_twisted.record``.

Needs Twisted (``pip install twisted``, in hive's ``bench`` extra).  Writes recorded/, which
is kept in the repository: the tests compare hive's output with it and need no Twisted.
"""

from __future__ import annotations

import sys
from typing import Any

import twisted
from twisted.internet.defer import Deferred
from twisted.python.filepath import FilePath
from twisted.web import template

from tests.unit.template_twisted.cases import LISTINGS, RECORDED, WAIT_FOR_IT, roots


def flattened(root: Any) -> bytes:
    results: list[object] = []
    template.flattenString(None, root).addBoth(results.append)
    (result,) = results
    if not isinstance(result, bytes):
        raise SystemExit(f"Twisted failed: {result}")
    return result


def wait_for_it() -> tuple[bytes, bytes]:
    """wait_for_it.py: what is written before the Deferred fires, and after."""
    before: list[bytes] = []
    after: list[bytes] = []
    written = before

    class WaitForIt(template.Element):
        def __init__(self) -> None:
            super().__init__(loader=template.XMLString(WAIT_FOR_IT))
            self.deferred: Deferred[str] = Deferred()

        @template.renderer
        def wait(self, request: object, tag: template.Tag) -> object:
            return self.deferred.addCallback(lambda value: tag("A value: " + repr(value)))

    it = WaitForIt()
    template.flatten(None, it, lambda data: written.append(data))
    written = after
    it.deferred.callback("<value>")
    return b"".join(before), b"".join(after)


def main() -> None:
    RECORDED.mkdir(exist_ok=True)
    for name, make in roots(template, lambda name: FilePath(str(LISTINGS / name))).items():
        (RECORDED / f"{name}.html").write_bytes(flattened(make()))
    before, after = wait_for_it()
    (RECORDED / "wait_for_it.before.html").write_bytes(before)
    (RECORDED / "wait_for_it.after.html").write_bytes(after)
    (RECORDED / "VERSION").write_text(f"Twisted {twisted.__version__}\n")
    print(f"recorded {len(list(RECORDED.glob('*.html')))} outputs of Twisted", file=sys.stderr)


if __name__ == "__main__":
    main()
