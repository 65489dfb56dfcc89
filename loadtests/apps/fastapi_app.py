"""The FastAPI JSON endpoint of the "fastapi" scenario: GET /fastapi/json.

Mounted at /fastapi: hive puts an ASGIResource there (root_path "/fastapi"); the other
servers reach it through loadtests.apps.asgi_app, which sets the same root_path.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)


@app.get("/json")
async def json() -> dict[str, Any]:
    return {"message": "Hello, world!"}
