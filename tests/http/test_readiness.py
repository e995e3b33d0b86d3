"""Readiness and Retry-After, as a router sees them: the real Sanic app on a loopback socket over
a scripted engine, in each state the daemon passes through (the daemon's own order of states is
tested with a real daemon in tests/http/test_readiness_daemon.py)."""

from __future__ import annotations

import contextlib

import httpx
import pytest

from mullama.config import load_settings
from mullama.engine.api import Interrupted, QueueFull, Unavailable
from mullama.http import readiness
from mullama.http.app import create_app

MESSAGES = [{"role": "user", "content": "hi"}]
# (path, body) of a generation in each dialect
GENERATIONS = [
    ("/v1/chat/completions", {"model": "m", "messages": MESSAGES}),
    ("/v1/chat/completions", {"model": "m", "messages": MESSAGES, "stream": True}),
    ("/v1/completions", {"model": "m", "prompt": "hi"}),
    ("/v1/responses", {"model": "m", "input": "hi"}),
    ("/v1/messages", {"model": "m", "messages": MESSAGES, "max_tokens": 5}),
    ("/v1/messages", {"model": "m", "messages": MESSAGES, "max_tokens": 5, "stream": True}),
    ("/api/chat", {"model": "m", "messages": MESSAGES}),
    ("/api/generate", {"model": "m", "prompt": "hi", "stream": False}),
]


class FailingEngine:
    """Every generation fails with ``error`` before it starts."""

    def __init__(self) -> None:
        self.error: Exception = QueueFull("busy", retry_after=1)

    async def default_model(self) -> str:
        return "m"

    async def count_chat_tokens(self, request) -> int:
        return 1

    async def _fail(self, request):
        raise self.error
        yield  # an async generator, as the engine's streams are

    def chat(self, request):
        return self._fail(request)

    def complete(self, request):
        return self._fail(request)


@contextlib.asynccontextmanager
async def serving(tmp_path, **settings):
    """(engine, app, client) for the app on a loopback port in this event loop."""
    engine = FailingEngine()
    app = create_app(
        engine,  # type: ignore[arg-type]
        load_settings(
            env={},
            cache_dir=tmp_path / "c",
            config_dir=tmp_path / "cf",
            data_dir=tmp_path / "d",
            **settings,
        ),
    )
    app.config.TOUCHUP = False
    server = await app.create_server(
        host="127.0.0.1", port=0, return_asyncio_server=True, asyncio_server_kwargs={}
    )
    assert server is not None
    await server.startup()
    await server.before_start()
    await server.start_serving()
    await server.after_start()
    port = server.server.sockets[0].getsockname()[1]
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            yield engine, app, client
    finally:
        await server.before_stop()
        await server.close()
        await server.after_stop()


def set_state(app, state: str) -> None:
    if state == readiness.DRAINING:
        app.ctx.draining = True
    else:
        app.ctx.readiness.state = state


def error_message(body: dict) -> str:
    """The message of an error in any of the dialects' shapes."""
    error = body["error"]
    return error if isinstance(error, str) else error["message"]


# ---------------------------------------------------------------- /health and /health/ready


async def test_ready_and_alive_when_serving(tmp_path):
    async with serving(tmp_path) as (_, _, client):
        ready = await client.get("/health/ready")
        assert ready.status_code == 200 and ready.json() == {"status": "ok"}
        assert (await client.head("/health/ready")).status_code == 200
        assert (await client.get("/health")).status_code == 200
        head = await client.head("/health")
        assert head.status_code == 200 and head.content == b""


@pytest.mark.parametrize("state", [readiness.STARTING, readiness.LOADING, readiness.DRAINING])
async def test_not_ready_is_503_with_retry_after_and_still_alive(tmp_path, state):
    async with serving(tmp_path) as (_, app, client):
        set_state(app, state)
        ready = await client.get("/health/ready")
        assert ready.status_code == 503
        assert int(ready.headers["retry-after"]) > 0
        body = ready.json()
        assert body["status"] == state and body["error"]["type"] == "unavailable_error"
        head = await client.head("/health/ready")
        assert head.status_code == 503 and head.content == b""
        # liveness: the process answers
        assert (await client.get("/health")).status_code == 200
        assert (await client.head("/health")).status_code == 200


@pytest.mark.parametrize("state", [readiness.STARTING, readiness.LOADING, readiness.DRAINING])
@pytest.mark.parametrize(
    "path, body",
    [("/v1/models", None), ("/api/tags", None), *GENERATIONS],
    ids=lambda v: v if isinstance(v, str) else "",
)
async def test_every_other_route_is_503_with_retry_after_until_ready(tmp_path, state, path, body):
    async with serving(tmp_path) as (_, app, client):
        set_state(app, state)
        if body is None:
            r = await client.get(path)
        else:
            r = await client.post(path, json=body)
        assert r.status_code == 503, r.text
        assert int(r.headers["retry-after"]) > 0
        assert error_message(r.json())  # in the dialect's own error shape
        if path == "/v1/messages":
            assert r.json()["error"]["type"] == "overloaded_error"


async def test_health_routes_need_no_key_and_tell_nothing_else(tmp_path):
    async with serving(tmp_path, api_key="sekret") as (_, app, client):
        assert (await client.get("/v1/models")).status_code == 401
        assert (await client.get("/health/ready")).json() == {"status": "ok"}
        app.ctx.readiness.state = readiness.LOADING
        body = (await client.get("/health/ready")).json()
        assert set(body) == {"status", "error"}
        assert set(body["error"]) == {"code", "message", "type"}
        assert "m" not in body["error"]["message"].split()  # no model named


# ---------------------------------------------------------------- Retry-After on engine 503s


@pytest.mark.parametrize(
    "error, retry_after",
    [
        (QueueFull("m already has 64 requests waiting", retry_after=1), "1"),
        (Interrupted("m was unloaded before this request started"), "5"),
        (Unavailable("the hub cannot be reached"), "5"),
    ],
    ids=["queue-full", "interrupted", "unavailable"],
)
@pytest.mark.parametrize("path, body", GENERATIONS, ids=lambda v: v if isinstance(v, str) else "")
async def test_every_503_says_when_to_retry(tmp_path, error, retry_after, path, body):
    async with serving(tmp_path) as (engine, _, client):
        engine.error = error
        r = await client.post(path, json=body)
        assert r.status_code == 503, r.text
        assert r.headers["retry-after"] == retry_after
        assert error.message in error_message(r.json())
