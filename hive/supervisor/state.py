"""The supervisor's decisions, as a pure function: ``handle(state, event, now) -> actions``.

Nothing here forks, kills, sends or reads a clock.  The runtime (hive.supervisor.runtime)
turns signals, exits, worker messages, control requests and a periodic tick into events,
calls `handle`, and carries out the actions it returns.  Tests drive it with events and
numbers for time.

How the decisions fit together:

- **Slots.**  There are ``target`` slots, 0 .. target-1.  A slot is *held* while it has a
  worker that is starting or ready and not draining, or a spawn on its way.  After every
  event, each slot that is not held gets a worker (after a back-off if its last workers
  crashed).
- **Replacement.**  A worker is never taken away before its replacement is ready: a
  reload, a recycle (max requests, max memory) or a change of the sockets a slot serves
  spawns a replacement that names the worker it ``replaces``; when the replacement says
  Ready, the old worker is told to Drain.  A reload waits until *every* new worker is
  ready before draining any old one, so a reload that fails leaves the old generation
  whole.  Only a silent worker (no heartbeat for ``timeout``) is killed at once, right
  after its replacement is spawned: it serves nothing anyway.
- **Sockets.**  The runtime holds one listening socket group per slot that ever existed
  (SO_REUSEPORT mode) or a single group (shared mode).  After a scale-down the groups of
  the removed slots are served by the remaining slots (group g by slot g mod target), so
  connections the kernel queued on them are still accepted: nothing queued is lost.
- **Development mode** (``hive run --reload``).  A change to the sources (`SourcesChanged`)
  starts a reload as ``hive reload`` does; one that comes while a reload is under way (or
  before the first workers are ready) is kept and reloads once that is over, so the code
  served is never older than the last save.  Workers that cannot start, at boot or after
  too many failed starts, do not stop the supervisor: it waits for the next change.
- **The bus.**  `Publish`, `Subscribe` and `Unsubscribe` from workers go to the relay
  (hive.supervisor.relay), which answers with the messages to send and nothing else: no
  worker bookkeeping happens for them.  A worker told to drain or stop gets no more
  messages (its subscribers end, and their clients come back to the new workers).
- **Stopping.**  SIGTERM or ``hive stop`` drains every worker, then SIGKILLs what is left
  after ``graceful_timeout``; SIGINT tells workers to stop at once, and a second SIGINT
  kills them.  The supervisor exits when its last worker has.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from hive import _ipc as ipc
from hive.supervisor import relay as bus
from hive.supervisor.relay import Relay
from hive.supervisor.totals import Totals

__all__ = [
    "Boot",
    "Control",
    "Exit",
    "Exited",
    "Kill",
    "Log",
    "MessageReceived",
    "Notify",
    "Reply",
    "Send",
    "SignalReceived",
    "SourcesChanged",
    "Spawn",
    "SpawnFailed",
    "Spawned",
    "SupervisorConfig",
    "SupervisorState",
    "Tick",
    "WorkerState",
    "handle",
]


# -- events ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Boot:
    """The supervisor has bound its sockets and is about to start workers.

    ``epoch`` (Unix time in ms) starts the bus's event ids, so that ids given after a
    restart are greater than any given before it.
    """

    epoch: int = 0


@dataclass(frozen=True, slots=True)
class SignalReceived:
    signum: int


@dataclass(frozen=True, slots=True)
class Spawned:
    """The runtime forked the worker of spawn ``token``."""

    token: int
    pid: int


@dataclass(frozen=True, slots=True)
class SpawnFailed:
    token: int
    error: str


@dataclass(frozen=True, slots=True)
class Exited:
    """A worker process was reaped; ``status`` is its exit code, or -signal if killed."""

    pid: int
    status: int


@dataclass(frozen=True, slots=True)
class MessageReceived:
    pid: int
    message: object


@dataclass(frozen=True, slots=True)
class Control:
    """A request from ``hive status|reload|stop|scale`` on the control socket."""

    client: int
    command: str
    args: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Tick:
    """Time passed: check deadlines and heartbeats."""


@dataclass(frozen=True, slots=True)
class SourcesChanged:
    """Development mode: the application's source files changed (paths for the log)."""

    paths: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ReloadRefused:
    """The settings could not be read again, so no reload was started."""

    error: str


Event = (
    Boot
    | SignalReceived
    | Spawned
    | SpawnFailed
    | Exited
    | MessageReceived
    | Control
    | Tick
    | ReloadRefused
    | SourcesChanged
)


# -- actions --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Spawn:
    """Fork a worker for ``slot`` serving socket ``groups``; report back with Spawned."""

    token: int
    slot: int
    generation: int
    groups: tuple[int, ...]
    #: Requests after which the worker is recycled (jitter applied); 0 for never.
    max_requests: int


@dataclass(frozen=True, slots=True)
class Send:
    pid: int
    message: ipc.Message


@dataclass(frozen=True, slots=True)
class Kill:
    pid: int
    signum: int


@dataclass(frozen=True, slots=True)
class Reply:
    client: int
    ok: bool
    data: Any = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Log:
    level: str
    text: str


@dataclass(frozen=True, slots=True)
class Exit:
    code: int
    message: str = ""


@dataclass(frozen=True, slots=True)
class Notify:
    """Tell the service manager (systemd's sd_notify): READY=1, RELOADING=1, STOPPING=1."""

    status: str


Action = Spawn | Send | Kill | Reply | Log | Exit | Notify


# -- state ----------------------------------------------------------------------------------


class WorkerState(Enum):
    STARTING = "starting"
    READY = "ready"
    DRAINING = "draining"
    STOPPING = "stopping"


class Phase(Enum):
    BOOTING = "booting"
    RUNNING = "running"
    STOPPING = "stopping"


@dataclass(frozen=True)
class SupervisorConfig:
    """The supervisor's settings; times in seconds."""

    workers: int = 1
    #: A worker silent (no heartbeat) this long is killed and replaced.
    timeout: float = 30.0
    graceful_timeout: float = 30.0
    #: A new worker that is not ready after this long has failed to start.
    boot_timeout: float = 60.0
    max_requests: int = 0
    max_requests_jitter: int = 0
    #: Resident bytes above which a worker is recycled; 0 for no limit.
    max_memory: int = 0
    #: "reuseport": one socket group per slot; "shared": one group for every worker.
    socket_mode: str = "reuseport"
    #: Respawn delays after crashes: first, doubling up to the last.
    backoff_initial: float = 0.1
    backoff_max: float = 10.0
    #: Consecutive failed starts of a slot's workers before the supervisor gives up.
    max_boot_failures: int = 5
    #: Development mode: workers that cannot start wait for a change instead of an exit.
    dev: bool = False


@dataclass
class Worker:
    pid: int
    slot: int
    generation: int
    groups: tuple[int, ...]
    max_requests: int
    started_at: float
    state: WorkerState = WorkerState.STARTING
    last_seen: float = 0.0
    ready_at: float | None = None
    #: The worker this one replaces, when it is ready.
    replaces: int | None = None
    #: Why this worker is being replaced (reload, max_requests, ...), while it still serves.
    retiring: str | None = None
    kill_at: float | None = None
    failure: str | None = None
    stats: ipc.Stats | None = None


@dataclass
class PendingSpawn:
    slot: int
    generation: int
    groups: tuple[int, ...]
    replaces: int | None
    max_requests: int


@dataclass
class Reload:
    generation: int
    deadline: float
    waiters: list[int] = field(default_factory=list)


@dataclass
class SupervisorState:
    """Everything the supervisor knows; changed only by `handle`."""

    config: SupervisorConfig
    target: int = 0
    generation: int = 1
    phase: Phase = Phase.BOOTING
    workers: dict[int, Worker] = field(default_factory=dict)
    pending: dict[int, PendingSpawn] = field(default_factory=dict)
    next_token: int = 1
    #: Socket groups the runtime holds; never shrinks.
    groups: int = 0
    reload: Reload | None = None
    #: Per slot: consecutive failed starts and when the next start may happen.
    failures: dict[int, int] = field(default_factory=dict)
    respawn_at: dict[int, float] = field(default_factory=dict)
    stop_deadline: float | None = None
    fast_stop: bool = False
    #: Development mode: the sources changed during a reload (or the boot): reload after it.
    reload_queued: bool = False
    #: Development mode: workers could not start; none is started until the sources change.
    waiting_for_change: bool = False
    #: Counters for metrics: restarts by reason, reloads by result.
    restarts: dict[str, int] = field(default_factory=dict)
    reloads: dict[str, int] = field(default_factory=dict)
    #: Cumulative stats of workers that are gone, so totals never go backwards.
    retired: Totals = field(default_factory=Totals)
    #: The bus on this host: interest, backlog and ids.
    relay: Relay = field(default_factory=lambda: Relay.new(0))

    @classmethod
    def new(cls, config: SupervisorConfig) -> SupervisorState:
        return cls(config=config, target=config.workers)


def handle(state: SupervisorState, event: Event, now: float) -> list[Action]:
    """Apply ``event`` at time ``now``; return what the runtime must do, in order."""
    if isinstance(event, MessageReceived) and isinstance(event.message, ipc.BUS_MESSAGES):
        return _bus(state, event.pid, event.message, now)  # the busy path: nothing else
    actions: list[Action] = []
    if isinstance(event, Boot):
        state.relay.backlog.epoch = event.epoch
        actions.append(Log("info", f"starting {state.target} worker(s)"))
    elif isinstance(event, Spawned):
        _spawned(state, event, now)
    elif isinstance(event, SpawnFailed):
        _spawn_failed(state, event, now, actions)
    elif isinstance(event, Exited):
        _exited(state, event, now, actions)
    elif isinstance(event, MessageReceived):
        _message(state, event, now, actions)
    elif isinstance(event, SignalReceived):
        _signal(state, event.signum, now, actions)
    elif isinstance(event, Control):
        _control(state, event, now, actions)
    elif isinstance(event, Tick):
        _tick(state, now, actions)
    elif isinstance(event, ReloadRefused):
        _count(state.reloads, "failure")
        actions.append(Log("error", f"reload refused: {event.error}"))
    elif isinstance(event, SourcesChanged):
        _sources_changed(state, event, now, actions)
    _reconcile(state, now, actions)
    return actions


# -- events, one by one ---------------------------------------------------------------------


def _spawned(state: SupervisorState, event: Spawned, now: float) -> None:
    pending = state.pending.pop(event.token, None)
    if pending is None:
        return
    state.workers[event.pid] = Worker(
        pid=event.pid,
        slot=pending.slot,
        generation=pending.generation,
        groups=pending.groups,
        max_requests=pending.max_requests,
        started_at=now,
        last_seen=now,
        replaces=pending.replaces,
    )


def _spawn_failed(
    state: SupervisorState, event: SpawnFailed, now: float, actions: list[Action]
) -> None:
    pending = state.pending.pop(event.token, None)
    actions.append(Log("error", f"cannot start a worker: {event.error}"))
    if pending is not None:
        _start_failed(state, pending.slot, pending.generation, event.error, now, actions)


def _exited(state: SupervisorState, event: Exited, now: float, actions: list[Action]) -> None:
    worker = state.workers.pop(event.pid, None)
    if worker is None:
        return
    state.relay.forget(worker.pid)
    _retire_stats(state, worker)
    how = f"exit code {event.status}" if event.status >= 0 else f"signal {-event.status}"
    if worker.state in (WorkerState.DRAINING, WorkerState.STOPPING):
        actions.append(Log("info", f"worker {worker.pid} (slot {worker.slot}) exited ({how})"))
        if state.phase is Phase.STOPPING and not state.workers:
            actions.append(Log("info", "stopped"))
            actions.append(Exit(0))
        return
    if state.phase is Phase.STOPPING:
        if not state.workers:
            actions.append(Exit(0))
        return
    if worker.state is WorkerState.STARTING:
        reason = worker.failure or f"worker exited before it was ready ({how})"
        _start_failed(state, worker.slot, worker.generation, reason, now, actions)
        return
    # A ready worker died: a crash, unless it was being replaced for a silent loop.
    if worker.retiring == "timeout":
        return
    if event.status == 0:
        # It stopped by itself, cleanly (a SIGTERM sent to it or to the process group):
        # not a crash; the slot gets a new worker at once.
        actions.append(
            Log("info", f"worker {worker.pid} (slot {worker.slot}) exited by itself; replacing it")
        )
        return
    _count(state.restarts, "crash")
    actions.append(Log("error", f"worker {worker.pid} (slot {worker.slot}) died ({how})"))
    ready_at = worker.ready_at if worker.ready_at is not None else now
    _note_failure(state, worker.slot, now, quick=now - ready_at < 1.0)


def _bus(
    state: SupervisorState,
    pid: int,
    message: ipc.Publish | ipc.Subscribe | ipc.Unsubscribe,
    now: float,
) -> list[Action]:
    worker = state.workers.get(pid)
    if worker is None:
        return []
    serving = worker.state in _SERVING and state.phase is not Phase.STOPPING
    sends = bus.handle(state.relay, pid, message, now, serving=serving)
    return [Send(target, out) for target, out in sends]


def _message(
    state: SupervisorState, event: MessageReceived, now: float, actions: list[Action]
) -> None:
    worker = state.workers.get(event.pid)
    if worker is None:
        return
    message = event.message
    worker.last_seen = now
    if isinstance(message, ipc.Ready):
        _ready(state, worker, now, actions)
    elif isinstance(message, ipc.Stats):
        worker.stats = message
        _check_recycle(state, worker, actions)
    elif isinstance(message, ipc.Failed):
        worker.failure = message.error
    elif isinstance(message, ipc.Hello):
        if message.version != ipc.PROTOCOL_VERSION:
            actions.append(
                Log("warning", f"worker {worker.pid} speaks IPC version {message.version}")
            )
    elif isinstance(message, ipc.Unknown | ipc.Malformed):
        actions.append(Log("warning", f"worker {worker.pid} sent {message!r}; ignored"))


def _ready(state: SupervisorState, worker: Worker, now: float, actions: list[Action]) -> None:
    if worker.state is not WorkerState.STARTING:
        return
    worker.state = WorkerState.READY
    worker.ready_at = now
    state.failures.pop(worker.slot, None)
    reload = state.reload
    if reload is not None and worker.generation == reload.generation:
        if all(
            w.state is WorkerState.READY
            for w in state.workers.values()
            if w.generation == reload.generation
        ) and not any(p.generation == reload.generation for p in state.pending.values()):
            _commit_reload(state, now, actions)
        return
    if worker.replaces is not None:
        old = state.workers.get(worker.replaces)
        if old is not None and old.state is WorkerState.READY:
            if old.retiring and old.retiring != "scale":
                _count(state.restarts, old.retiring)
            _drain(state, old, now, actions)
    if state.phase is Phase.BOOTING and _all_slots_ready(state):
        state.phase = Phase.RUNNING
        actions.append(Log("info", f"ready: {state.target} worker(s) serving"))
        actions.append(Notify("READY=1"))
        _reload_if_queued(state, now, actions)


def _sources_changed(
    state: SupervisorState, event: SourcesChanged, now: float, actions: list[Action]
) -> None:
    if state.phase is Phase.STOPPING:
        return
    shown = ", ".join(event.paths[:3]) + (" ..." if len(event.paths) > 3 else "")
    if state.waiting_for_change:
        # The workers could not start; the new code may.  Slots are filled by _reconcile.
        state.waiting_for_change = False
        state.failures.clear()
        state.respawn_at.clear()
        actions.append(Log("info", f"changed: {shown}; starting workers"))
        return
    if state.phase is Phase.BOOTING or state.reload is not None:
        state.reload_queued = True
        actions.append(Log("info", f"changed: {shown}; reloading after the reload under way"))
        return
    actions.append(Log("info", f"changed: {shown}"))
    _start_reload(state, None, now, actions)


def _reload_if_queued(state: SupervisorState, now: float, actions: list[Action]) -> None:
    if state.reload_queued and state.phase is Phase.RUNNING and state.reload is None:
        state.reload_queued = False
        _start_reload(state, None, now, actions)


def _signal(state: SupervisorState, signum: int, now: float, actions: list[Action]) -> None:
    if signum == signal.SIGHUP:
        _start_reload(state, None, now, actions)
    elif signum == signal.SIGTERM:
        _stop(state, now, actions, fast=False)
    elif signum == signal.SIGINT:
        _stop(state, now, actions, fast=True)
    elif signum == signal.SIGTTIN:
        _scale(state, state.target + 1, actions)
    elif signum == signal.SIGTTOU:
        _scale(state, max(1, state.target - 1), actions)
    elif signum == signal.SIGUSR1:
        actions.append(Log("info", "reopening log files"))
        for worker in state.workers.values():
            actions.append(Kill(worker.pid, signal.SIGUSR1))


def _control(state: SupervisorState, event: Control, now: float, actions: list[Action]) -> None:
    command = event.command
    if command == "status":
        actions.append(Reply(event.client, True, data=status(state)))
    elif command == "reload":
        _start_reload(state, event.client, now, actions)
    elif command == "stop":
        actions.append(Reply(event.client, True, data={"stopping": True}))
        _stop(state, now, actions, fast=False)
    elif command == "scale":
        workers = event.args.get("workers")
        if not isinstance(workers, int) or isinstance(workers, bool) or not 1 <= workers <= 1024:
            actions.append(Reply(event.client, False, error="workers must be 1 to 1024"))
            return
        if state.phase is Phase.STOPPING:
            actions.append(Reply(event.client, False, error="hive is stopping"))
            return
        _scale(state, workers, actions)
        actions.append(Reply(event.client, True, data={"workers": workers}))
    else:
        actions.append(Reply(event.client, False, error=f"unknown command {command!r}"))


def _tick(state: SupervisorState, now: float, actions: list[Action]) -> None:
    config = state.config
    state.relay.backlog.expire(now)
    for worker in list(state.workers.values()):
        if worker.kill_at is not None and now >= worker.kill_at:
            worker.kill_at = None
            actions.append(Log("warning", f"worker {worker.pid} did not exit in time; killing"))
            actions.append(Kill(worker.pid, signal.SIGKILL))
        elif worker.state is WorkerState.STARTING and now - worker.started_at > config.boot_timeout:
            worker.failure = f"not ready after {config.boot_timeout:g} s"
            worker.state = WorkerState.STOPPING
            actions.append(Kill(worker.pid, signal.SIGKILL))
            _start_failed(state, worker.slot, worker.generation, worker.failure, now, actions)
        elif (
            worker.state is WorkerState.READY
            and worker.retiring != "timeout"
            and now - worker.last_seen > config.timeout
        ):
            actions.append(
                Log(
                    "error",
                    f"worker {worker.pid} (slot {worker.slot}) silent for"
                    f" {now - worker.last_seen:.0f} s; replacing it",
                )
            )
            _count(state.restarts, "timeout")
            worker.retiring = "timeout"
            worker.state = WorkerState.STOPPING
            if worker.slot < state.target:
                _spawn(state, worker.slot, worker.generation, None, actions)
            actions.append(Kill(worker.pid, signal.SIGKILL))
    reload = state.reload
    if reload is not None and now > reload.deadline:
        _abandon_reload(
            state, f"new workers not ready after {config.boot_timeout:g} s", actions, now
        )
    if state.stop_deadline is not None and now >= state.stop_deadline:
        state.stop_deadline = None
        for worker in state.workers.values():
            actions.append(Kill(worker.pid, signal.SIGKILL))


# -- the steps they share ---------------------------------------------------------------------


def _reconcile(state: SupervisorState, now: float, actions: list[Action]) -> None:
    """Give every slot that is not held a worker, unless its back-off is still running."""
    if state.phase is Phase.STOPPING or any(isinstance(a, Exit) for a in actions):
        return
    if state.waiting_for_change:
        return
    held = {w.slot for w in state.workers.values() if w.state in _SERVING}
    held.update(p.slot for p in state.pending.values())
    for slot in range(state.target):
        if slot in held:
            continue
        due = state.respawn_at.get(slot, 0.0)
        if now < due:
            continue
        state.respawn_at.pop(slot, None)
        _spawn(state, slot, state.generation, None, actions)
    # Socket groups whose slot is gone are taken over by the slots that remain: a worker
    # that lacks a group its slot now serves is replaced by one that has it.
    target = state.target
    for worker in list(state.workers.values()):
        if worker.state is not WorkerState.READY or worker.retiring or worker.slot >= target:
            continue
        missing = not set(_groups_for(state, worker.slot)) <= set(worker.groups)
        if missing and not _has_replacement(state, worker):
            worker.retiring = "scale"
            _spawn(state, worker.slot, worker.generation, worker.pid, actions)
    # A scaled-away worker drains once every group it served is served by a remaining one.
    served = {
        group
        for w in state.workers.values()
        if w.slot < target and w.state is WorkerState.READY and not w.retiring
        for group in w.groups
    }
    for worker in list(state.workers.values()):
        if (
            worker.slot >= target
            and worker.state is WorkerState.READY
            and set(worker.groups) <= served
        ):
            _drain(state, worker, now, actions)


_SERVING = (WorkerState.STARTING, WorkerState.READY)


def _spawn(
    state: SupervisorState,
    slot: int,
    generation: int,
    replaces: int | None,
    actions: list[Action],
) -> None:
    token = state.next_token
    state.next_token += 1
    groups = _groups_for(state, slot)
    state.groups = max(state.groups, max(groups) + 1)
    config = state.config
    # Jitter spreads recycling out so that workers do not all restart at once; it is
    # derived from the token to keep this module free of randomness.
    jitter = (token * 7919) % (config.max_requests_jitter + 1)
    max_requests = config.max_requests + jitter if config.max_requests else 0
    state.pending[token] = PendingSpawn(slot, generation, groups, replaces, max_requests)
    actions.append(Spawn(token, slot, generation, groups, max_requests))


def _groups_for(state: SupervisorState, slot: int) -> tuple[int, ...]:
    """The socket groups ``slot`` serves: its own, and those of slots scaled away."""
    if state.config.socket_mode == "shared":
        return (0,)
    target = state.target
    existing = max(state.groups, target)
    return tuple(g for g in range(existing) if g == slot or (g >= target and g % target == slot))


def _has_replacement(state: SupervisorState, worker: Worker) -> bool:
    if any(p.replaces == worker.pid for p in state.pending.values()):
        return True
    return any(w.replaces == worker.pid for w in state.workers.values() if w.state in _SERVING)


def _drain(state: SupervisorState, worker: Worker, now: float, actions: list[Action]) -> None:
    timeout = state.config.graceful_timeout
    worker.state = WorkerState.DRAINING
    state.relay.forget(worker.pid)
    # The worker enforces the timeout itself; SIGKILL is the backstop.
    worker.kill_at = now + timeout + 5.0
    actions.append(Send(worker.pid, ipc.Drain(timeout)))


def _check_recycle(state: SupervisorState, worker: Worker, actions: list[Action]) -> None:
    stats = worker.stats
    if stats is None or worker.state is not WorkerState.READY or worker.retiring:
        return
    if state.reload is not None or state.phase is not Phase.RUNNING:
        return
    reason = None
    if worker.max_requests and stats.requests >= worker.max_requests:
        reason = "max_requests"
    elif state.config.max_memory and stats.rss > state.config.max_memory:
        reason = "max_memory"
    if reason is not None and worker.slot < state.target:
        actions.append(Log("info", f"recycling worker {worker.pid} (slot {worker.slot}): {reason}"))
        worker.retiring = reason
        _spawn(state, worker.slot, worker.generation, worker.pid, actions)


def _start_reload(
    state: SupervisorState, client: int | None, now: float, actions: list[Action]
) -> None:
    if state.phase is not Phase.RUNNING:
        if client is not None:
            actions.append(Reply(client, False, error=f"cannot reload while {state.phase.value}"))
        return
    if state.reload is not None:
        if client is not None:
            state.reload.waiters.append(client)
        return
    # Past every generation still around: the workers of a reload just abandoned may not
    # have exited yet, and must not count as this reload's.
    generation = 1 + max(
        [
            state.generation,
            *(w.generation for w in state.workers.values()),
            *(p.generation for p in state.pending.values()),
        ]
    )
    state.reload = Reload(generation, now + state.config.boot_timeout)
    if client is not None:
        state.reload.waiters.append(client)
    actions.append(Log("info", f"reloading: starting generation {generation}"))
    actions.append(Notify("RELOADING=1"))
    for worker in list(state.workers.values()):
        if worker.state is WorkerState.READY and worker.slot < state.target:
            worker.retiring = "reload"
            _spawn(state, worker.slot, generation, worker.pid, actions)


def _commit_reload(state: SupervisorState, now: float, actions: list[Action]) -> None:
    reload = state.reload
    assert reload is not None
    state.reload = None
    state.generation = reload.generation
    _count(state.reloads, "success")
    for worker in list(state.workers.values()):
        if worker.generation < reload.generation and worker.state is WorkerState.READY:
            if worker.retiring:
                _count(state.restarts, worker.retiring)
            _drain(state, worker, now, actions)
    actions.append(Log("info", f"reloaded: generation {reload.generation} serving"))
    actions.append(Notify("READY=1"))
    for client in reload.waiters:
        actions.append(Reply(client, True, data={"generation": reload.generation}))
    _reload_if_queued(state, now, actions)


def _abandon_reload(
    state: SupervisorState, error: str, actions: list[Action], now: float = 0.0
) -> None:
    reload = state.reload
    assert reload is not None
    state.reload = None
    _count(state.reloads, "failure")
    for token, pending in list(state.pending.items()):
        if pending.generation == reload.generation:
            del state.pending[token]
    for worker in state.workers.values():
        if worker.generation == reload.generation:
            worker.state = WorkerState.STOPPING
            actions.append(Kill(worker.pid, signal.SIGKILL))
        elif worker.retiring == "reload":
            worker.retiring = None
    actions.append(Log("error", f"reload abandoned, the old workers keep serving: {error}"))
    actions.append(Notify("READY=1"))
    for client in reload.waiters:
        actions.append(Reply(client, False, error=f"reload failed: {error}"))
    _reload_if_queued(state, now, actions)


def _start_failed(
    state: SupervisorState,
    slot: int,
    generation: int,
    error: str,
    now: float,
    actions: list[Action],
) -> None:
    """A new worker did not become ready."""
    if state.reload is not None and generation == state.reload.generation:
        _abandon_reload(state, error, actions, now)
        return
    if state.config.dev and (
        state.phase is Phase.BOOTING
        or state.failures.get(slot, 0) + 1 >= state.config.max_boot_failures
    ):
        # Development mode: the code is being written; the next save may mend it.
        state.waiting_for_change = True
        actions.append(
            Log("error", f"worker failed to start: {error}; waiting for a change to the sources")
        )
        return
    if state.phase is Phase.BOOTING:
        # The first workers cannot start: the application is broken; say why and stop.
        _stop(state, now, actions, fast=True, exit_when_done=False)
        actions.append(Exit(1, f"worker failed to start: {error}"))
        return
    actions.append(Log("error", f"worker for slot {slot} failed to start: {error}"))
    if _note_failure(state, slot, now, quick=True) >= state.config.max_boot_failures:
        _stop(state, now, actions, fast=True, exit_when_done=False)
        actions.append(
            Exit(1, f"workers keep failing to start ({state.failures[slot]} in a row): {error}")
        )


def _note_failure(state: SupervisorState, slot: int, now: float, *, quick: bool) -> int:
    """Count a failure of ``slot`` and set its back-off; return the consecutive count."""
    config = state.config
    count = state.failures.get(slot, 0) + 1 if quick else 1
    state.failures[slot] = count
    delay = min(config.backoff_initial * 2 ** (count - 1), config.backoff_max)
    state.respawn_at[slot] = now + (delay if quick else 0.0)
    return count


def _stop(
    state: SupervisorState,
    now: float,
    actions: list[Action],
    *,
    fast: bool,
    exit_when_done: bool = True,
) -> None:
    if state.phase is Phase.STOPPING:
        if fast and state.fast_stop:
            # A second SIGINT: no more waiting.
            for worker in state.workers.values():
                actions.append(Kill(worker.pid, signal.SIGKILL))
        elif fast:
            _stop_now(state, now, actions)
        return
    state.phase = Phase.STOPPING
    actions.append(Notify("STOPPING=1"))
    state.pending.clear()
    if state.reload is not None:
        for client in state.reload.waiters:
            actions.append(Reply(client, False, error="hive is stopping"))
        state.reload = None
    if fast:
        _stop_now(state, now, actions)
    else:
        actions.append(Log("info", "stopping gracefully"))
        for worker in state.workers.values():
            if worker.state is WorkerState.STARTING:
                worker.state = WorkerState.STOPPING
                actions.append(Send(worker.pid, ipc.Stop()))
            elif worker.state is WorkerState.READY:
                _drain(state, worker, now, actions)
        state.stop_deadline = now + state.config.graceful_timeout + 5.0
    if not state.workers and exit_when_done:
        actions.append(Exit(0))


def _stop_now(state: SupervisorState, now: float, actions: list[Action]) -> None:
    state.fast_stop = True
    actions.append(Log("info", "stopping now"))
    for worker in state.workers.values():
        worker.state = WorkerState.STOPPING
        state.relay.forget(worker.pid)
        actions.append(Send(worker.pid, ipc.Stop()))
    state.stop_deadline = now + 5.0


def _scale(state: SupervisorState, target: int, actions: list[Action]) -> None:
    if target == state.target or state.phase is Phase.STOPPING:
        return
    actions.append(Log("info", f"scaling from {state.target} to {target} worker(s)"))
    old_target, state.target = state.target, target
    if target < old_target:
        # The removed slots' workers go once the slots that take over their sockets have
        # replacements serving them (see _reconcile); with shared sockets, at once.
        for worker in state.workers.values():
            if worker.slot < target or worker.state not in _SERVING:
                continue
            if worker.state is WorkerState.STARTING:
                worker.state = WorkerState.STOPPING
                actions.append(Send(worker.pid, ipc.Stop()))
            else:
                worker.retiring = "scale"
        for token, pending in list(state.pending.items()):
            if pending.slot >= target and pending.replaces is None:
                del state.pending[token]


def _all_slots_ready(state: SupervisorState) -> bool:
    ready = {w.slot for w in state.workers.values() if w.state is WorkerState.READY}
    return all(slot in ready for slot in range(state.target))


def _retire_stats(state: SupervisorState, worker: Worker) -> None:
    if worker.stats is not None:
        state.retired.add(worker.stats)


def _count(counter: dict[str, int], key: str) -> None:
    counter[key] = counter.get(key, 0) + 1


def status(state: SupervisorState) -> dict[str, Any]:
    """What ``hive status`` shows (times are the supervisor's monotonic clock)."""
    return {
        "generation": state.generation,
        "target": state.target,
        "phase": state.phase.value,
        "reloading": state.reload is not None,
        "restarts": dict(state.restarts),
        "reloads": dict(state.reloads),
        "workers": [
            {
                "slot": w.slot,
                "pid": w.pid,
                "generation": w.generation,
                "state": w.state.value,
                "requests": w.stats.requests if w.stats else 0,
                "in_flight": w.stats.in_flight if w.stats else 0,
                "connections": (
                    w.stats.connections_active + w.stats.connections_idle if w.stats else 0
                ),
                "rss": w.stats.rss if w.stats else 0,
                "cpu_seconds": w.stats.cpu_seconds if w.stats else 0.0,
                "started_at": w.started_at,
            }
            for w in sorted(state.workers.values(), key=lambda w: (w.slot, w.generation))
        ],
    }
