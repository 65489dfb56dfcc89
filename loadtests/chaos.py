"""Chaos under load: reloads, SIGKILLed workers, scaling and recycling while wrk runs.

    .venv/bin/python -m loadtests.chaos --seconds 40

Runs ``hive run --workers 2 --max-requests N`` under wrk and, spread over the run: reloads
(5), SIGKILLs of a random worker (5), a scale up and down, and recycling by max requests
all along.  Reports requests, failures by cause and latency.  wrk cannot say which request
failed why, so the run is split in two phases with the same load: the first has every
event but the kills (its failures must be zero), the second only kills (its failures must
not exceed the connections open on the killed workers, read from their stats just before
each kill).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import time
from dataclasses import dataclass, field

import psutil

from loadtests.common import Hive, finish_wrk, running_hive, start_wrk


@dataclass
class Phase:
    name: str
    requests: int = 0
    failures: int = 0
    p50: str = "?"
    p99: str = "?"
    events: list[str] = field(default_factory=list)
    #: For kills: connections open on the killed workers, the bound on failures.
    at_risk: int = 0


def status(hive: Hive) -> dict[str, object]:
    done = hive.ctl("status", "--json")
    if done.returncode != 0:
        raise SystemExit(f"hive status failed: {done.stderr}")
    data: dict[str, object] = json.loads(done.stdout)
    return data


def ready_workers(hive: Hive) -> list[dict[str, int]]:
    workers = status(hive)["workers"]
    assert isinstance(workers, list)
    return [w for w in workers if w["state"] == "ready"]


def wait_ready(hive: Hive, count: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(ready_workers(hive)) == count and len(status(hive)["workers"]) == count:  # type: ignore[arg-type]
            return
        time.sleep(0.1)
    raise SystemExit(f"not {count} ready workers after {timeout} s: {status(hive)}")


def run_phase(
    hive: Hive, phase: Phase, seconds: int, connections: int, kills: int, reloads: int
) -> Phase:
    load = start_wrk(hive.url("/hello"), seconds, connections)
    started = time.monotonic()
    steps: list[str] = ["reload"] * reloads + ["scale"] if not kills else ["kill"] * kills
    for n, step in enumerate(steps):
        time.sleep(max(0.0, started + seconds * (n + 1) / (len(steps) + 1) - time.monotonic()))
        if step == "reload":
            done = hive.ctl("reload")
            phase.events.append(f"reload: {done.stdout.strip() or done.stderr.strip()}")
        elif step == "scale":
            hive.ctl("scale", "3")
            wait_ready(hive, 3)
            hive.ctl("scale", "2")
            wait_ready(hive, 2)
            phase.events.append("scaled 2 -> 3 -> 2")
        else:
            victim = random.choice(ready_workers(hive))
            # Every client connection open on the worker at the kill may carry a request in
            # flight: counted from the kernel's view of the process, right before the kill.
            open_connections = sum(
                1
                for c in psutil.Process(victim["pid"]).net_connections(kind="tcp")
                if c.status == psutil.CONN_ESTABLISHED
            )
            os.kill(victim["pid"], signal.SIGKILL)
            phase.at_risk += open_connections
            phase.events.append(
                f"SIGKILL worker {victim['pid']} (slot {victim['slot']},"
                f" {open_connections} connections open)"
            )
            wait_ready(hive, 2)
    result = finish_wrk(load, seconds)
    phase.requests, phase.failures = result.requests, result.failures
    phase.p50, phase.p99 = result.p50, result.p99
    return phase


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=40, help="per phase")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--reloads", type=int, default=5)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--max-requests", type=int, default=50_000)
    args = parser.parse_args()
    options = ["--workers", "2", "--max-requests", str(args.max_requests)]
    options += ["--max-requests-jitter", str(args.max_requests // 10)]
    phases = []
    with running_hive(*options) as hive:
        wait_ready(hive, 2)
        calm = run_phase(
            hive,
            Phase("reloads, scaling, recycling"),
            args.seconds,
            args.connections,
            0,
            args.reloads,
        )
        phases.append(calm)
        killing = run_phase(hive, Phase("SIGKILL"), args.seconds, args.connections, args.kills, 0)
        phases.append(killing)
        restarts = status(hive)["restarts"]
    for phase in phases:
        print(f"== {phase.name}")
        for event in phase.events:
            print(f"   {event}")
        print(f"   requests {phase.requests}, failures {phase.failures}")
        print(f"   latency p50 {phase.p50}, p99 {phase.p99}")
        if phase.at_risk:
            print(f"   failures allowed (connections on killed workers): {phase.at_risk}")
    print(f"restarts by reason: {restarts}")
    ok = phases[0].failures == 0 and phases[1].failures <= phases[1].at_risk
    print("PASS" if ok else "FAIL")
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
