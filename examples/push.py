"""Push to the browser: a chat whose lines reach every open page, whichever worker (or
host, with --pubsub redis://...) took them: hive.pubsub carries them, hive.sse serves them."""

from __future__ import annotations

import json

from hive import pubsub
from hive.iweb import IRequest
from hive.resource import Resource
from hive.sse import EventSourceResource

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Chat</title>
<link rel="stylesheet" href="/static/style.css">
</head><body><h1>Chat</h1>
<form id="say"><input name="line" placeholder="say something" autocomplete="off">
<button>Send</button></form>
<ul id="lines"></ul>
<p><a href="/">home</a></p>
<script>
const lines = document.getElementById("lines");
const events = new EventSource("/chat/events");
events.onmessage = (event) => {
  const item = document.createElement("li");
  item.textContent = JSON.parse(event.data).line;
  lines.prepend(item);
};
document.getElementById("say").onsubmit = (submit) => {
  submit.preventDefault();
  const form = submit.target;
  fetch("/chat", {method: "POST", body: new URLSearchParams(new FormData(form))});
  form.reset();
};
</script></body></html>
"""


class Chat(Resource):
    """GET: the page; POST line=...: publish it; /chat/events: the stream of lines."""

    def __init__(self) -> None:
        super().__init__()
        self.putChild(b"events", EventSourceResource("chat", retry=1000))

    def render_GET(self, request: IRequest) -> bytes:
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        return PAGE.encode("utf-8")

    def render_POST(self, request: IRequest) -> bytes:
        line = request.args.get(b"line", [b""])[0].decode("utf-8", "replace").strip()[:500]
        if not line:
            request.setResponseCode(400)
            return b"say something\n"
        pubsub.publish("chat", json.dumps({"line": line}))  # the page sets it as text
        return b"sent\n"
