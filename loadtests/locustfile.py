"""Realistic users of the example site, for Locust.

    .venv/bin/hive run examples.site:root --bind 127.0.0.1:8080 --workers 2 --no-access-log &
    .venv/bin/locust -f loadtests/locustfile.py --headless -u 50 -r 10 -t 60s \\
        --host http://127.0.0.1:8080

Each simulated user browses pages, reads the clock, signs the guestbook (a form POST that
redirects), asks the async weather resource, and now and then waits for a slow streaming
countdown.  A response with the wrong status or body counts as a failure.
"""

from __future__ import annotations

import random

from locust import FastHttpUser, between, task


class Visitor(FastHttpUser):
    """A person reading the site: a page every half second or so."""

    wait_time = between(0.1, 1.0)

    @task(10)
    def pages(self) -> None:
        for path, expected in (("/", b"hive example site"), ("/about", b"resource model")):
            with self.client.get(path, catch_response=True) as response:
                if expected not in (response.content or b""):
                    response.failure(f"{path}: unexpected body")

    @task(10)
    def hello(self) -> None:
        with self.client.get("/hello", catch_response=True) as response:
            if response.content != b"Hello, world!":
                response.failure("wrong hello")

    @task(5)
    def clock(self) -> None:
        self.client.get("/clock")

    @task(3)
    def sign_guestbook(self) -> None:
        name = f"visitor{random.randrange(10_000)}"
        with self.client.post(
            "/guestbook",
            data={"name": name, "text": "hello from locust"},
            allow_redirects=False,
            catch_response=True,
        ) as response:
            if response.status_code != 302:
                response.failure(f"guestbook POST: {response.status_code}")
        self.client.get("/guestbook")

    @task(3)
    def weather(self) -> None:
        with self.client.get("/weather?city=Lyon", catch_response=True) as response:
            if b"sunny" not in (response.content or b""):
                response.failure("no forecast")

    @task(1)
    def countdown(self) -> None:
        """A slow streaming response: five lines over half a second."""
        with self.client.get("/countdown?from=5", catch_response=True) as response:
            if not (response.content or b"").endswith(b"liftoff!\n"):
                response.failure("countdown cut short")

    @task(1)
    def missing(self) -> None:
        with self.client.get("/no/such/page", catch_response=True) as response:
            if response.status_code == 404:
                response.success()
            else:
                response.failure(f"expected 404, got {response.status_code}")
