"""The supervisor's decisions, driven by events and numbers for time: no fork, no sleep."""

from __future__ import annotations

import signal
from typing import Any

from hive import _ipc as ipc
from hive.supervisor import state as sv


class Sim:
    """Plays the runtime: gives spawned workers pids and keeps the actions."""

    def __init__(self, **config: Any) -> None:
        self.state = sv.SupervisorState.new(sv.SupervisorConfig(**config))
        self.now = 0.0
        self.next_pid = 100
        self.actions: list[sv.Action] = []
        self.spawns: list[sv.Spawn] = []

    def event(self, event: sv.Event) -> list[sv.Action]:
        actions = sv.handle(self.state, event, self.now)
        self.actions += actions
        for action in actions:
            if isinstance(action, sv.Spawn):
                self.spawns.append(action)
                self.next_pid += 1
                actions += self.event(sv.Spawned(action.token, self.next_pid))
        return actions

    def boot(self) -> list[int]:
        self.event(sv.Boot())
        pids = sorted(self.state.workers)
        for pid in pids:
            self.ready(pid)
        return pids

    def ready(self, pid: int) -> list[sv.Action]:
        return self.event(sv.MessageReceived(pid, ipc.Ready(self.state.workers[pid].generation)))

    def slots(self) -> dict[int, list[tuple[int, str]]]:
        out: dict[int, list[tuple[int, str]]] = {}
        for worker in sorted(self.state.workers.values(), key=lambda w: w.pid):
            out.setdefault(worker.slot, []).append((worker.pid, worker.state.value))
        return out

    def of(self, kind: type) -> list[Any]:
        return [a for a in self.actions if isinstance(a, kind)]


def test_boot_starts_one_worker_per_slot_and_reports_ready() -> None:
    sim = Sim(workers=3)
    pids = sim.boot()
    assert len(pids) == 3
    assert [s.slot for s in sim.spawns] == [0, 1, 2]
    assert [s.groups for s in sim.spawns] == [(0,), (1,), (2,)]
    assert sim.state.phase is sv.Phase.RUNNING
    assert any("ready" in log.text for log in sim.of(sv.Log))


def test_shared_mode_gives_every_slot_group_zero() -> None:
    sim = Sim(workers=2, socket_mode="shared")
    sim.boot()
    assert [s.groups for s in sim.spawns] == [(0,), (0,)]


def test_boot_failure_exits_with_the_workers_error() -> None:
    sim = Sim(workers=2)
    sim.event(sv.Boot())
    first = min(sim.state.workers)
    sim.event(sv.MessageReceived(first, ipc.Failed("cannot import module 'x'")))
    sim.event(sv.Exited(first, 3))
    (exit_,) = sim.of(sv.Exit)
    assert exit_.code == 1 and "cannot import module 'x'" in exit_.message
    # The other worker is told to stop, not left behind.
    assert any(isinstance(a, sv.Send) and isinstance(a.message, ipc.Stop) for a in sim.actions)


def test_crash_is_respawned_with_backoff() -> None:
    sim = Sim(workers=1, backoff_initial=1.0)
    (pid,) = sim.boot()
    sim.now = 0.5
    sim.event(sv.Exited(pid, -9))  # crashed within a second of being ready
    assert sim.state.restarts == {"crash": 1}
    assert not sim.state.workers and not sim.state.pending
    sim.now = 1.0
    sim.event(sv.Tick())
    assert not sim.state.workers
    sim.now = 1.6
    sim.event(sv.Tick())
    assert len(sim.state.workers) == 1


def test_crash_after_a_long_life_is_respawned_at_once() -> None:
    sim = Sim(workers=1)
    (pid,) = sim.boot()
    sim.now = 100.0
    sim.event(sv.Exited(pid, -9))
    assert len(sim.state.workers) == 1


def test_crash_loop_after_start_gives_up() -> None:
    sim = Sim(workers=1, max_boot_failures=3, backoff_initial=0.1)
    (pid,) = sim.boot()
    sim.now = 10.0
    sim.event(sv.Exited(pid, 1))
    for _ in range(5):
        sim.now += 20
        sim.event(sv.Tick())
        starting = [w.pid for w in sim.state.workers.values()]
        for worker_pid in starting:
            sim.event(sv.Exited(worker_pid, 3))
        if sim.of(sv.Exit):
            break
    (exit_,) = sim.of(sv.Exit)
    assert exit_.code == 1 and "keep failing" in exit_.message


def test_reload_starts_new_generation_then_drains_old() -> None:
    sim = Sim(workers=2)
    old = sim.boot()
    sim.event(sv.Control(7, "reload", {}))
    new = [pid for pid in sim.state.workers if pid not in old]
    assert len(new) == 2
    assert all(sim.state.workers[pid].generation == 2 for pid in new)
    sim.ready(new[0])
    # Not yet: every new worker must be ready before any old one drains.
    assert not [a for a in sim.of(sv.Send) if isinstance(a.message, ipc.Drain)]
    sim.ready(new[1])
    drains = sorted(a.pid for a in sim.of(sv.Send) if isinstance(a.message, ipc.Drain))
    assert drains == sorted(old)
    assert sim.of(sv.Reply)[-1] == sv.Reply(7, True, data={"generation": 2})
    assert sim.state.generation == 2 and sim.state.reloads == {"success": 1}
    assert sim.state.restarts == {"reload": 2}
    for pid in old:
        sim.event(sv.Exited(pid, 0))
    assert sorted(sim.state.workers) == sorted(new)


def test_failed_reload_keeps_the_old_generation() -> None:
    sim = Sim(workers=2)
    old = sim.boot()
    sim.event(sv.SignalReceived(signal.SIGHUP))
    sim.event(sv.Control(9, "reload", {}))  # joins the reload under way
    new = [pid for pid in sim.state.workers if pid not in old]
    sim.ready(new[0])
    sim.event(sv.MessageReceived(new[1], ipc.Failed("SyntaxError: bad (app.py:3)")))
    sim.event(sv.Exited(new[1], 3))
    (reply,) = sim.of(sv.Reply)
    assert not reply.ok and "SyntaxError: bad (app.py:3)" in (reply.error or "")
    assert sv.Kill(new[0], signal.SIGKILL) in sim.actions
    assert not [a for a in sim.of(sv.Send) if isinstance(a.message, ipc.Drain)]
    assert all(sim.state.workers[pid].state is sv.WorkerState.READY for pid in old)
    assert sim.state.generation == 1 and sim.state.reloads == {"failure": 1}
    # A later reload can still happen.
    sim.event(sv.Exited(new[0], -9))
    sim.event(sv.Control(10, "reload", {}))
    assert sim.state.reload is not None


def test_reload_that_never_gets_ready_times_out() -> None:
    sim = Sim(workers=1, boot_timeout=20)
    sim.boot()
    sim.event(sv.Control(1, "reload", {}))
    sim.now = 25.0
    sim.event(sv.Tick())
    (reply,) = sim.of(sv.Reply)
    assert not reply.ok and sim.state.reload is None


def test_silent_worker_is_replaced_then_killed() -> None:
    sim = Sim(workers=1, timeout=30)
    (pid,) = sim.boot()
    sim.now = 20.0
    sim.event(sv.MessageReceived(pid, ipc.Heartbeat(20.0)))
    sim.now = 49.0
    sim.event(sv.Tick())
    assert not sim.of(sv.Kill)
    sim.now = 51.0
    actions = sim.event(sv.Tick())
    kinds = [type(a) for a in actions if isinstance(a, sv.Spawn | sv.Kill)]
    assert kinds == [sv.Spawn, sv.Kill]  # the replacement starts first
    assert sim.state.restarts == {"timeout": 1}
    sim.event(sv.Exited(pid, -9))
    assert sim.state.restarts == {"timeout": 1}  # not also counted as a crash


def test_max_requests_recycles_after_the_replacement_is_ready() -> None:
    sim = Sim(workers=1, max_requests=100)
    (pid,) = sim.boot()
    stats = ipc.Stats(100, 0, 0, 0, 0, 10_000_000, 1.0, {"GET 200": 100}, [0] * 12, 1.5)
    sim.event(sv.MessageReceived(pid, stats))
    (replacement,) = [p for p in sim.state.workers if p != pid]
    assert not sim.of(sv.Send)
    sim.ready(replacement)
    assert sv.Send(pid, ipc.Drain(30.0)) in sim.actions
    assert sim.state.restarts == {"max_requests": 1}


def test_max_memory_recycles() -> None:
    sim = Sim(workers=1, max_memory=50_000_000)
    (pid,) = sim.boot()
    stats = ipc.Stats(5, 0, 0, 0, 0, 60_000_000, 1.0, {}, [0] * 12, 0.1)
    sim.event(sv.MessageReceived(pid, stats))
    assert len(sim.state.workers) == 2
    assert sim.state.workers[pid].retiring == "max_memory"


def test_drain_is_backed_by_sigkill() -> None:
    sim = Sim(workers=1, graceful_timeout=10)
    (pid,) = sim.boot()
    sim.event(sv.SignalReceived(signal.SIGTERM))
    assert sv.Send(pid, ipc.Drain(10.0)) in sim.actions
    sim.now = 14.0
    sim.event(sv.Tick())
    assert not sim.of(sv.Kill)
    sim.now = 16.0
    sim.event(sv.Tick())
    assert sv.Kill(pid, signal.SIGKILL) in sim.actions
    sim.event(sv.Exited(pid, -9))
    assert sim.of(sv.Exit) == [sv.Exit(0)]


def test_sigint_stops_now_and_a_second_kills() -> None:
    sim = Sim(workers=2)
    pids = sim.boot()
    sim.event(sv.SignalReceived(signal.SIGINT))
    assert {a.pid for a in sim.of(sv.Send) if isinstance(a.message, ipc.Stop)} == set(pids)
    sim.event(sv.SignalReceived(signal.SIGINT))
    assert {a.pid for a in sim.of(sv.Kill)} == set(pids)


def test_scale_up_and_down_keeps_every_socket_group_served() -> None:
    sim = Sim(workers=2)
    sim.boot()
    sim.event(sv.SignalReceived(signal.SIGTTIN))
    assert sim.state.target == 3 and sim.spawns[-1].slot == 2 and sim.spawns[-1].groups == (2,)
    sim.ready(max(sim.state.workers))
    slot2 = max(sim.state.workers)
    sim.event(sv.Control(3, "scale", {"workers": 2}))
    # Group 2 is taken over by slot 0 (2 mod 2): a replacement that serves both groups.
    adopter = [s for s in sim.spawns if s.groups == (0, 2)]
    assert len(adopter) == 1
    assert sim.state.workers[slot2].state is sv.WorkerState.READY  # still serving group 2
    new_pid = max(sim.state.workers)
    sim.ready(new_pid)
    drained = {a.pid for a in sim.of(sv.Send) if isinstance(a.message, ipc.Drain)}
    assert slot2 in drained and len(drained) == 2  # the old slot 0 worker and slot 2's


def test_scale_down_in_shared_mode_drains_at_once() -> None:
    sim = Sim(workers=3, socket_mode="shared")
    pids = sim.boot()
    sim.event(sv.Control(1, "scale", {"workers": 1}))
    drained = {a.pid for a in sim.of(sv.Send) if isinstance(a.message, ipc.Drain)}
    assert drained == set(pids[1:])


def test_bad_control_requests_get_errors() -> None:
    sim = Sim(workers=1)
    sim.boot()
    sim.event(sv.Control(1, "scale", {"workers": 0}))
    sim.event(sv.Control(2, "scale", {"workers": "3"}))
    sim.event(sv.Control(3, "dance", {}))
    replies = sim.of(sv.Reply)
    assert [r.ok for r in replies] == [False, False, False]
    assert "unknown command" in (replies[2].error or "")


def test_status_lists_workers() -> None:
    sim = Sim(workers=2)
    sim.boot()
    sim.event(sv.Control(1, "status", {}))
    (reply,) = sim.of(sv.Reply)
    data = reply.data
    assert data["generation"] == 1
    assert [w["slot"] for w in data["workers"]] == [0, 1]
    assert {w["state"] for w in data["workers"]} == {"ready"}


def test_unknown_and_malformed_messages_are_logged_not_fatal() -> None:
    sim = Sim(workers=1)
    (pid,) = sim.boot()
    sim.event(sv.MessageReceived(pid, ipc.Unknown("future", {"x": 1})))
    sim.event(sv.MessageReceived(pid, ipc.Malformed("not msgpack")))
    assert sum("ignored" in log.text for log in sim.of(sv.Log)) == 2
    assert sim.state.workers[pid].state is sv.WorkerState.READY


def test_retired_workers_stats_are_kept() -> None:
    sim = Sim(workers=1)
    (pid,) = sim.boot()
    stats = ipc.Stats(42, 0, 0, 0, 7, 1, 2.5, {}, [0] * 12, 0.4)
    sim.event(sv.MessageReceived(pid, stats))
    sim.now = 50
    sim.event(sv.Exited(pid, -9))
    assert sim.state.retired.requests == 42 and sim.state.retired.accepted == 7


def test_a_refused_reload_counts_as_a_failure() -> None:
    sim = Sim(workers=1)
    sim.boot()
    sim.event(sv.ReloadRefused("config hive.toml: unknown setting 'nope'"))
    assert sim.state.reloads == {"failure": 1}
    assert any("unknown setting" in log.text for log in sim.of(sv.Log))
    assert sim.state.reload is None and len(sim.state.workers) == 1


def test_sigusr1_is_passed_to_every_worker() -> None:
    sim = Sim(workers=2)
    pids = sim.boot()
    sim.event(sv.SignalReceived(signal.SIGUSR1))
    assert {a.pid for a in sim.of(sv.Kill) if a.signum == signal.SIGUSR1} == set(pids)


def test_a_worker_that_exits_cleanly_by_itself_is_replaced_without_a_crash() -> None:
    sim = Sim(workers=1)
    (pid,) = sim.boot()
    sim.now = 0.2
    sim.event(sv.Exited(pid, 0))
    assert sim.state.restarts == {}
    assert len(sim.state.workers) == 1 and pid not in sim.state.workers
    assert any("exited by itself" in log.text for log in sim.of(sv.Log))


# -- development mode ---------------------------------------------------------------------------


def new_workers(sim: Sim, old: list[int]) -> list[int]:
    return [pid for pid in sim.state.workers if pid not in old]


def test_a_change_to_the_sources_reloads() -> None:
    sim = Sim(workers=1, dev=True)
    old = sim.boot()
    sim.event(sv.SourcesChanged(("app.py",)))
    (new,) = new_workers(sim, old)
    assert sim.state.workers[new].generation == 2
    sim.ready(new)
    assert sim.state.generation == 2
    assert sv.Send(old[0], ipc.Drain(30.0)) in sim.actions
    assert any(log.text == "changed: app.py" for log in sim.of(sv.Log))


def test_a_change_during_a_reload_reloads_again_after_it() -> None:
    sim = Sim(workers=1, dev=True)
    old = sim.boot()
    sim.event(sv.SourcesChanged(("a.py",)))
    (second,) = new_workers(sim, old)
    sim.event(sv.SourcesChanged(("b.py",)))  # the new worker may have read a.py only
    assert len(sim.state.workers) == 2 and sim.state.reload_queued
    sim.ready(second)
    (third,) = new_workers(sim, [*old, second])
    assert sim.state.workers[third].generation == 3
    sim.ready(third)
    assert sim.state.generation == 3 and not sim.state.reload_queued


def test_a_change_that_fails_keeps_the_old_workers_and_the_next_one_mends_it() -> None:
    sim = Sim(workers=1, dev=True)
    old = sim.boot()
    sim.event(sv.SourcesChanged(("app.py",)))
    (broken,) = new_workers(sim, old)
    sim.event(sv.MessageReceived(broken, ipc.Failed("syntax error (app.py:3)")))
    sim.event(sv.Exited(broken, 1))
    assert sim.state.workers[old[0]].state is sv.WorkerState.READY
    assert any("syntax error (app.py:3)" in log.text for log in sim.of(sv.Log))
    sim.event(sv.SourcesChanged(("app.py",)))
    (mended,) = new_workers(sim, old)
    sim.ready(mended)
    assert sim.state.generation == 2 and sv.Send(old[0], ipc.Drain(30.0)) in sim.actions


def test_a_change_after_an_abandoned_reload_is_a_new_generation() -> None:
    """The killed workers of an abandoned reload may still be around: not this reload's."""
    sim = Sim(workers=2, dev=True)
    old = sim.boot()
    sim.event(sv.SourcesChanged(("app.py",)))
    failing, killed = new_workers(sim, old)
    sim.event(sv.SourcesChanged(("app.py",)))  # queued
    sim.event(sv.Exited(failing, 1))
    assert sv.Kill(killed, signal.SIGKILL) in sim.actions  # and not reaped yet
    queued = new_workers(sim, [*old, failing, killed])
    assert [sim.state.workers[pid].generation for pid in queued] == [3, 3]
    for pid in queued:
        sim.ready(pid)
    assert sim.state.generation == 3
    assert sorted(a.pid for a in sim.of(sv.Send) if isinstance(a.message, ipc.Drain)) == old


def test_in_development_a_boot_that_fails_waits_for_a_change() -> None:
    sim = Sim(workers=1, dev=True)
    sim.event(sv.Boot())
    (first,) = sim.state.workers
    sim.event(sv.MessageReceived(first, ipc.Failed("cannot import module 'app'")))
    sim.event(sv.Exited(first, 1))
    assert not sim.of(sv.Exit) and sim.state.waiting_for_change
    sim.now = 100.0
    sim.event(sv.Tick())
    assert not sim.state.workers and not sim.state.pending  # no respawn storm
    sim.event(sv.SourcesChanged(("app.py",)))
    (second,) = sim.state.workers
    sim.ready(second)
    assert sim.state.phase is sv.Phase.RUNNING


def test_in_development_workers_that_keep_failing_wait_for_a_change() -> None:
    sim = Sim(workers=1, dev=True, max_boot_failures=2)
    (pid,) = sim.boot()
    sim.now = 10.0
    sim.event(sv.Exited(pid, -11))  # a crash after a while: respawned at once
    (again,) = sim.state.workers
    sim.event(sv.Exited(again, 1))  # fails to start
    assert not sim.of(sv.Exit) and sim.state.waiting_for_change
