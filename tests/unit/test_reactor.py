"""hive._reactor: Twisted's asyncio reactor as the guest of a loop hive runs.

The import hook that installs it globally is tested in real workers
(tests/integration/test_reactor_mode.py); here a reactor is made on a fresh loop, not
installed, and driven as the worker drives it.
"""

from __future__ import annotations

import asyncio
import importlib.machinery
from typing import Any

import pytest
from twisted.internet import defer, task

from hive import _reactor
from hive._deferred import to_future


def test_timers_and_deferreds_run_on_the_loop_that_serves() -> None:
    async def main() -> list[Any]:
        loop = asyncio.get_running_loop()
        reactor = _reactor.make_reactor(loop)
        assert reactor.running
        fired: list[Any] = []
        reactor.callLater(0.01, fired.append, "callLater")
        cancelled = reactor.callLater(0.01, fired.append, "cancelled")
        cancelled.cancel()
        later = await to_future(task.deferLater(reactor, 0.01, lambda: "deferLater"))
        started: defer.Deferred[str] = defer.Deferred()
        reactor.callWhenRunning(started.callback, "callWhenRunning")
        fired.append(await to_future(started))
        await _reactor.shutdown(1.0, reactor)
        return [*fired, later, loop.is_running()]

    assert asyncio.run(main()) == ["callLater", "callWhenRunning", "deferLater", True]


def test_the_loop_is_hive_s_to_run_and_stop() -> None:
    async def main() -> tuple[bool, list[str]]:
        loop = asyncio.get_running_loop()
        reactor = _reactor.make_reactor(loop)
        with pytest.raises(RuntimeError, match="hive runs the event loop"):
            reactor.run()
        with pytest.raises(RuntimeError, match="hive runs the event loop"):
            reactor.iterate()
        order: list[str] = []
        reactor.addSystemEventTrigger("before", "shutdown", order.append, "before")
        reactor.addSystemEventTrigger("after", "shutdown", order.append, "after")
        reactor.stop()  # what a client program does when it is done
        await asyncio.sleep(0.05)
        await _reactor.shutdown(1.0, reactor)  # the worker's, after: nothing more to do
        return loop.is_running(), order

    still_running, order = asyncio.run(main())
    assert still_running and order == ["before", "after"]


def test_shutdown_waits_for_deferred_triggers_within_its_bound() -> None:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        reactor = _reactor.make_reactor(loop)
        reactor.addSystemEventTrigger(
            "before", "shutdown", lambda: task.deferLater(reactor, 10, lambda: None)
        )
        began = loop.time()
        await _reactor.shutdown(0.2, reactor)
        return loop.time() - began

    assert 0.15 < asyncio.run(main()) < 2


def test_the_hook_answers_only_the_reactor_module() -> None:
    loop = asyncio.new_event_loop()
    try:
        finder = _reactor._ReactorFinder(loop)
        assert finder.find_spec("twisted.internet.task") is None
        spec = finder.find_spec(_reactor.REACTOR_MODULE)
        assert isinstance(spec, importlib.machinery.ModuleSpec)
        _reactor.install_hook(loop)
        _reactor.install_hook(loop)
        import sys

        hooks = [f for f in sys.meta_path if isinstance(f, _reactor._ReactorFinder)]
        assert len(hooks) == 1
    finally:
        _reactor.uninstall_hook()
        loop.close()
