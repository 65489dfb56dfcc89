"""The bus's load-test application: a flood of messages between workers, and a channel
served as Server-Sent Events for the fan-out benchmark (loadtests/relay.py, fanout.py)."""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any

from hive import pubsub
from hive.iweb import IRequest
from hive.resource import Resource
from hive.sse import EventSourceResource

_counts: dict[str, Any] = {"count": 0, "first": 0.0, "last": 0.0}


async def _count_flood() -> None:
    """Every worker subscribes to "flood" and counts what arrives."""
    async with pubsub.subscribe("flood", limit=10_000_000) as subscription:
        async for _message in subscription:
            now = time.time()
            if not _counts["count"]:
                _counts["first"] = now
            _counts["count"] += 1
            _counts["last"] = now


# The application is imported inside the worker's running loop.
_task = asyncio.get_running_loop().create_task(_count_flood())


class Flood(Resource):
    isLeaf = True

    def render_POST(self, request: IRequest) -> bytes:
        count = int(request.args[b"n"][0])
        data = "x" * int(request.args.get(b"size", [b"100"])[0])
        started = time.time()
        for _ in range(count):
            pubsub.publish("flood", data)
        return json.dumps({"pid": os.getpid(), "started": started}).encode()


class FloodCount(Resource):
    isLeaf = True

    def render_GET(self, request: IRequest) -> bytes:
        return json.dumps({"pid": os.getpid(), **_counts}).encode()


class Publish(Resource):
    isLeaf = True

    def render_POST(self, request: IRequest) -> bytes:
        pubsub.publish("fanout", request.content.read().decode())
        return b"ok"


root = Resource()
root.putChild(b"flood", Flood())
root.putChild(b"flood-count", FloodCount())
root.putChild(b"publish", Publish())
root.putChild(b"events", EventSourceResource("fanout", heartbeat=60.0, limit=100))
