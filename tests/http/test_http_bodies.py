"""Big and hostile bodies: a large body is parsed, and a long prompt tokenized, off the event
loop (``/health`` answers meanwhile); JSON bodies have their own size limit, answered with a 413
the client can read; nesting too deep is a 400, each in the dialect of its route.

The event-loop tests hold the parse (or the tokenizer) in a worker thread until ``/health`` has
answered and record the order things happened in: work done on the loop could only come first."""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading

import httpx
import pytest

from mullama.config import load_settings
from mullama.engine.api import InvalidRequest
from mullama.http.app import create_app
from mullama.http.common import protocol
from tests.http.conftest import served
from tests.http.test_http_raw import assert_dialect
from tests.http.test_stream_opening import Prefill, ScriptedEngine

DEADLINE = 60  # only a blocked event loop gets near it

ROUTES = {
    "openai": "/v1/chat/completions",
    "anthropic": "/v1/messages",
    "ollama": "/api/chat",
    "responses": "/v1/responses",
}
DIALECT = {"responses": "openai"}


def chat_body(content: str) -> dict:
    return {"model": "gemma", "max_tokens": 4, "messages": [{"role": "user", "content": content}]}


def app_of(tmp_path, engine=None, **values):
    settings = load_settings(
        env={},
        cache_dir=tmp_path / "c",
        config_dir=tmp_path / "cf",
        data_dir=tmp_path / "d",
        **values,
    )
    if engine is None:
        engine = ScriptedEngine()
        engine.script = Prefill([], before=InvalidRequest("scripted"))
    return create_app(engine, settings)


class Gate:
    """Holds a worker thread until released; ``order`` records what happened when."""

    def __init__(self) -> None:
        self.entered, self.release = threading.Event(), threading.Event()
        self.order: list[str] = []

    def hold(self) -> None:
        self.entered.set()
        self.release.wait(DEADLINE)
        self.order.append("work done")


async def health_during(gate: Gate, url: str, path: str, body: dict) -> httpx.Response:
    """POST ``body``; once its work is held, GET /health, then let the work finish."""
    async with httpx.AsyncClient(base_url=url, timeout=2 * DEADLINE) as client:
        big = asyncio.create_task(client.post(path, json=body))
        assert await asyncio.to_thread(gate.entered.wait, DEADLINE), "the work never started"
        assert (await client.get("/health")).status_code == 200
        gate.order.append("health answered")
        gate.release.set()
        reply = await big
    assert gate.order == ["health answered", "work done"]
    return reply


async def test_health_answers_while_a_big_body_is_parsed(tmp_path, monkeypatch):
    gate, load_json = Gate(), protocol.load_json

    def held(raw: bytes) -> dict:
        if len(raw) > protocol.OFF_LOOP_BYTES:
            gate.hold()
        return load_json(raw)

    monkeypatch.setattr(protocol, "load_json", held)
    async with served(app_of(tmp_path)) as url:
        body = chat_body("x" * (2 * protocol.OFF_LOOP_BYTES))
        reply = await health_during(gate, url, "/v1/chat/completions", body)
    assert "scripted" in assert_dialect("openai", reply, 400)


@pytest.mark.slow
async def test_health_answers_while_a_long_prompt_is_tokenized(tmp_path, engine, monkeypatch):
    from mullama.engine.llm import Model

    gate, tokenize = Gate(), Model.tokenize

    def held(self, text: str, **kwargs):
        if len(text) > 100_000:
            gate.hold()
        return tokenize(self, text, **kwargs)

    monkeypatch.setattr(Model, "tokenize", held)
    async with served(app_of(tmp_path, engine)) as url:
        reply = await health_during(gate, url, "/v1/chat/completions", chat_body("hi " * 50_000))
    assert "context" in assert_dialect("openai", reply, 400)  # longer than its 2048 tokens


@pytest.mark.parametrize("route", ROUTES)
async def test_json_bodies_over_max_json_mb_are_413(tmp_path, route):
    body = json.dumps(chat_body("x" * (3 * 2**19))).encode()  # 1.5 MiB
    async with served(app_of(tmp_path, max_json_mb=1)) as url:
        async with httpx.AsyncClient(base_url=url, timeout=DEADLINE) as client:
            reply = await client.post(
                ROUTES[route], content=body, headers={"content-type": "application/json"}
            )
            message = assert_dialect(DIALECT.get(route, route), reply, 413)
            assert "limit of 1 MB" in message and "max_json_mb" in message
            assert (await client.get("/health")).status_code == 200  # same connection, intact


class BlobEngine(ScriptedEngine):
    def __init__(self) -> None:
        super().__init__()
        self.received = 0

    async def add_blob(self, digest: str, chunks) -> str:
        async for chunk in chunks:
            self.received += len(chunk)
        return digest


async def test_blob_uploads_are_not_json_bodies(tmp_path):
    """The Ollama client uploads GGUFs as application/octet-stream, far above max_json_mb."""
    engine, blob = BlobEngine(), b"\0" * (2 * 2**20)
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    async with served(app_of(tmp_path, engine, max_json_mb=1)) as url:
        async with httpx.AsyncClient(base_url=url, timeout=DEADLINE) as client:
            reply = await client.post(
                f"/api/blobs/{digest}",
                content=blob,
                headers={"content-type": "application/octet-stream", "origin": url},
            )
    assert reply.status_code == 201 and engine.received == len(blob)


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("where", ["top", "content"])
async def test_nesting_too_deep_is_400(tmp_path, route, where):
    deep = "[" * 10_000 + "]" * 10_000
    if where == "top":
        body = '{"model": "gemma", "messages": [], "extra": ' + deep + "}"
    else:
        body = '{"model": "gemma", "messages": [{"role": "user", "content": ' + deep + "}]}"
    async with served(app_of(tmp_path)) as url:
        async with httpx.AsyncClient(base_url=url, timeout=DEADLINE) as client:
            reply = await client.post(
                ROUTES[route], content=body, headers={"content-type": "application/json"}
            )
    assert "nests arrays or objects too deeply" in assert_dialect(
        DIALECT.get(route, route), reply, 400
    )


class RecursingEngine(ScriptedEngine):
    def chat(self, request):
        raise RecursionError("maximum recursion depth exceeded")


@pytest.mark.parametrize("route", ["openai", "anthropic", "ollama"])
async def test_a_recursion_error_while_handling_a_body_is_400(tmp_path, route):
    """Nesting that JSON decoding allows can still be too deep for a later walk over it."""
    async with served(app_of(tmp_path, RecursingEngine())) as url:
        async with httpx.AsyncClient(base_url=url, timeout=DEADLINE) as client:
            reply = await client.post(ROUTES[route], json=chat_body("hi"))
    assert "too deeply" in assert_dialect(route, reply, 400)


@pytest.mark.parametrize("route", ROUTES)
async def test_a_lone_surrogate_escape_is_400_and_a_pair_is_accepted(tmp_path, route):
    # json.loads makes "\ud800" a lone surrogate no UTF-8 encoder (the tokenizer's) accepts
    lone = '{"model": "gemma", "messages": [{"role": "user", "content": "\\ud800 hi"}]}'
    async with served(app_of(tmp_path)) as url:
        async with httpx.AsyncClient(base_url=url, timeout=DEADLINE) as client:
            reply = await client.post(
                ROUTES[route], content=lone, headers={"content-type": "application/json"}
            )
    assert "lone UTF-16 surrogate" in assert_dialect(DIALECT.get(route, route), reply, 400)
    from mullama.http.common.protocol import load_json

    paired = '{"content": "\\ud83d\\ude00"}'
    assert load_json(paired.encode()) == {"content": "\U0001f600"}


async def test_a_nul_byte_in_the_path_is_400(tmp_path):
    async with served(app_of(tmp_path)) as url:
        async with httpx.AsyncClient(base_url=url, timeout=DEADLINE) as client:
            reply = await client.get("/ui/static/%00")
    assert reply.status_code == 400
    assert "NUL byte" in reply.json()["error"]["message"]


@pytest.mark.parametrize("method", ["GET", "HEAD"])
async def test_a_static_file_name_too_long_for_the_file_system_is_404(tmp_path, method):
    async with served(app_of(tmp_path)) as url:
        async with httpx.AsyncClient(base_url=url, timeout=DEADLINE) as client:
            reply = await client.request(method, "/ui/static/" + "a" * 300)
    assert reply.status_code == 404


async def test_utf8_encoded_surrogates_in_a_body_are_400(tmp_path):
    body = b'{"model": "gemma", "prompt": "\xed\xa0\x80"}'  # what json.loads(bytes) lets through
    async with served(app_of(tmp_path)) as url:
        async with httpx.AsyncClient(base_url=url, timeout=DEADLINE) as client:
            reply = await client.post(
                "/v1/completions", content=body, headers={"content-type": "application/json"}
            )
    assert reply.status_code == 400
    assert "not valid UTF-8" in reply.json()["error"]["message"]
