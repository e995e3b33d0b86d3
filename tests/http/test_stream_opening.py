"""What a streamed answer sends while the engine prefills, and disconnects during it: a scripted
engine behind the real Sanic app on a loopback socket, read with raw sockets and the official
SDKs. The engine's script waits on what the server has sent (headers, keep-alives), never on a
clock, so the order asserted is the only order possible."""

from __future__ import annotations

import asyncio
import contextlib
import json

import anthropic
import httpx
import openai
import pytest

from mullama.config import load_settings
from mullama.engine.api import (
    ChatRequest,
    CompletionRequest,
    ContextOverflow,
    Done,
    Interrupted,
    ModelNotFound,
    QueueFull,
    Started,
    TextDelta,
    Usage,
)
from mullama.http.app import create_app
from mullama.http.common import wire

DEADLINE = 60  # generous: only a broken server gets near it

PROMPT = [{"role": "user", "content": "hi"}]


class Prefill:
    """One scripted generation: ``Started``, then a 'prefill' that lasts until the test says so
    (``go``), then ``events``; ``closed`` is set when the stream is closed, as the engine's
    generation is cancelled then."""

    def __init__(self, events: list, before: Exception | None = None, started: bool = True):
        self.events, self.before, self.started = events, before, started
        self.go = asyncio.Event()
        self.closed = asyncio.Event()
        self.requests: list = []

    async def play(self, request):
        self.requests.append(request)
        try:
            if self.before is not None:
                raise self.before
            if self.started:
                yield Started(3)
            await self.go.wait()
            for event in self.events:
                if isinstance(event, Exception):
                    raise event
                yield event
        finally:
            self.closed.set()


class ScriptedEngine:
    def __init__(self):
        self.script = Prefill([])

    async def default_model(self) -> str:
        return ""

    async def count_chat_tokens(self, request) -> int:
        return 3

    def chat(self, request: ChatRequest):
        return self.script.play(request)

    def complete(self, request: CompletionRequest):
        return self.script.play(request)


@contextlib.asynccontextmanager
async def serving(tmp_path, pause_reading: bool = False):
    """The app on a loopback port, in this event loop; yields (engine, base url).
    ``pause_reading``: each request's connection stops reading before its handler runs."""
    engine = ScriptedEngine()
    settings = load_settings(
        env={}, cache_dir=tmp_path / "c", config_dir=tmp_path / "cf", data_dir=tmp_path / "d"
    )
    app = create_app(engine, settings)  # type: ignore[arg-type]
    app.config.TOUCHUP = False
    if pause_reading:

        @app.on_request
        async def pause(request):
            await request.receive_body()
            request.transport.pause_reading()

    server = await app.create_server(
        host="127.0.0.1",
        port=0,
        return_asyncio_server=True,
        asyncio_server_kwargs={"start_serving": False},
    )
    assert server is not None
    await server.startup()
    await server.before_start()
    await server.start_serving()
    await server.after_start()
    port = server.server.sockets[0].getsockname()[1]
    try:
        yield engine, f"http://127.0.0.1:{port}"
    finally:
        await server.before_stop()
        await server.close()
        await server.after_stop()


@pytest.fixture
def keepalives(monkeypatch):
    """Keep-alives at once whenever the server waits, and an event each time one is sent."""
    counter: asyncio.Queue[str | None] = asyncio.Queue()
    original = wire._Sender.keepalive

    async def counted(self):
        await original(self)
        counter.put_nowait(self.writer.keepalive())

    monkeypatch.setattr(wire, "KEEPALIVE_SECONDS", 0.001)
    monkeypatch.setattr(wire._Sender, "keepalive", counted)
    return counter


async def release_after(script: Prefill, counter: asyncio.Queue, n: int = 2) -> None:
    """Let the 'prefill' end once ``n`` keep-alives went out."""
    for _ in range(n):
        await asyncio.wait_for(counter.get(), DEADLINE)
    script.go.set()


DONE = Done("stop", Usage(3, 1), model="scripted")


def chunks_of(raw: str, separator: str = "\n\n") -> list[str]:
    return [c for c in raw.split(separator) if c]


# ---------------------------------------------------------------- what is sent, in order


@pytest.mark.parametrize(
    "path, body, opening, keepalive",
    [
        ("/v1/chat/completions", {"messages": PROMPT}, '"role":"assistant"', ": keep-alive"),
        ("/v1/messages", {"messages": PROMPT, "max_tokens": 5}, "event: message_start", "ping"),
        ("/v1/responses", {"input": "hi"}, "event: response.created", ": keep-alive"),
    ],
)
async def test_headers_and_opening_go_out_before_prefill_ends(
    tmp_path, keepalives, path, body, opening, keepalive
):
    async with serving(tmp_path) as (engine, url):
        engine.script = script = Prefill([TextDelta("Hello"), DONE])
        async with httpx.AsyncClient(base_url=url, timeout=DEADLINE) as client:
            body = {"model": "scripted", "stream": True, **body}
            async with client.stream("POST", path, json=body) as r:
                # the status line and headers came while the engine is still 'prefilling'
                assert r.status_code == 200 and not script.go.is_set()
                received = ""
                async for text in r.aiter_text():
                    received += text
                    if not script.go.is_set() and received.count(keepalive) >= 2:
                        script.go.set()  # the prefill ends after the opening and keep-alives
    first_token = received.index("Hello")
    assert received.index(opening) < received.index(keepalive) < first_token
    assert script.closed.is_set()


async def test_ollama_ndjson_sends_headers_and_no_blank_lines(tmp_path, keepalives):
    counter = keepalives
    async with serving(tmp_path) as (engine, url):
        engine.script = script = Prefill([TextDelta("Hello"), DONE])
        async with httpx.AsyncClient(base_url=url, timeout=DEADLINE) as client:
            body = {"model": "scripted", "messages": PROMPT}
            async with client.stream("POST", "/api/chat", json=body) as r:
                assert r.status_code == 200 and not script.go.is_set()
                script.go.set()
                lines = [line async for line in r.aiter_lines()]
    sent = [counter.get_nowait() for _ in range(counter.qsize())]
    assert not any(sent)  # NDJSON has no keep-alive a client could choke on
    assert all(lines) and [json.loads(line)["done"] for line in lines] == [False, True]


async def test_the_sdks_skip_the_keep_alives(tmp_path, keepalives):
    counter = keepalives
    async with serving(tmp_path) as (engine, url):
        sdk = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)
        engine.script = script = Prefill([TextDelta("Hel"), TextDelta("lo"), DONE])
        release = asyncio.create_task(release_after(script, counter))
        stream = await sdk.chat.completions.create(model="scripted", messages=PROMPT, stream=True)
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        await release
        assert text == "Hello"

        engine.script = script = Prefill([TextDelta("Hello"), DONE])
        release = asyncio.create_task(release_after(script, counter))
        events = [
            e async for e in await sdk.responses.create(model="scripted", input="hi", stream=True)
        ]
        await release
        assert events[0].type == "response.created" and events[-1].type == "response.completed"
        assert events[-1].response.output_text == "Hello"

        claude = anthropic.AsyncAnthropic(base_url=url, api_key="x", max_retries=0)
        engine.script = script = Prefill([TextDelta("Hello"), DONE])
        release = asyncio.create_task(release_after(script, counter))
        async with claude.messages.stream(
            model="scripted", max_tokens=5, messages=PROMPT
        ) as stream:
            kinds = [event.type async for event in stream]
            message = await stream.get_final_message()
        await release
        assert kinds[0] == "message_start" and message.content[0].text == "Hello"


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "error, status",
    [
        (ModelNotFound("no model 'scripted'"), 404),
        (ContextOverflow("the prompt is too long"), 400),
        (QueueFull("busy", retry_after=1), 503),
    ],
)
async def test_an_error_before_the_engine_starts_is_a_status(tmp_path, error, status):
    async with serving(tmp_path) as (engine, url):
        sdk = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)
        engine.script = Prefill([], before=error)
        with pytest.raises(openai.APIStatusError) as err:
            await sdk.chat.completions.create(model="scripted", messages=PROMPT, stream=True)
        assert err.value.status_code == status


async def test_an_error_during_prefill_is_the_streamed_error(tmp_path, keepalives):
    counter = keepalives
    async with serving(tmp_path) as (engine, url):
        sdk = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)
        engine.script = script = Prefill([Interrupted("the model was unloaded")])
        release = asyncio.create_task(release_after(script, counter, 1))
        stream = await sdk.chat.completions.create(model="scripted", messages=PROMPT, stream=True)
        with pytest.raises(openai.APIError, match="unloaded"):
            async for _ in stream:
                pass
        await release

        claude = anthropic.AsyncAnthropic(base_url=url, api_key="x", max_retries=0)
        engine.script = script = Prefill([Interrupted("the model was unloaded")])
        release = asyncio.create_task(release_after(script, counter, 1))
        with pytest.raises(anthropic.APIStatusError, match="unloaded"):
            async with claude.messages.stream(model="m", max_tokens=5, messages=PROMPT) as s:
                async for _ in s:
                    pass
        await release


async def test_an_engine_that_never_starts_still_opens_after_the_priming_window(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(wire, "PRIME_SECONDS", 0)
    async with serving(tmp_path) as (engine, url):
        engine.script = script = Prefill([TextDelta("Hello"), DONE], started=False)
        async with httpx.AsyncClient(base_url=url, timeout=DEADLINE) as client:
            body = {"model": "scripted", "stream": True, "messages": PROMPT}
            async with client.stream("POST", "/v1/chat/completions", json=body) as r:
                assert r.status_code == 200 and not script.go.is_set()
                script.go.set()
                received = "".join([t async for t in r.aiter_text()])
    assert received.index('"role":"assistant"') < received.index("Hello")


# ---------------------------------------------------------------- disconnects

BIG = "lorem ipsum " * 20_000


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "whole"])
@pytest.mark.parametrize(
    "content, paused",
    [("hi", False), (BIG, False), (BIG, True)],
    ids=["small", "big", "reading-paused"],
)
async def test_a_client_that_hangs_up_during_prefill_cancels_the_generation(
    tmp_path, stream, content, paused
):
    # Sanic stops reading a connection while its buffer holds REQUEST_BUFFER_SIZE (64 KiB), and
    # a large body that arrives in one piece (an agent's prompt on a busy server) leaves it so
    # for the whole request: no read sees the client go. ``paused`` puts a connection in that
    # state for certain.
    async with serving(tmp_path, pause_reading=paused) as (engine, url):
        engine.script = script = Prefill([TextDelta("never"), DONE])
        port = int(url.rsplit(":", 1)[1])
        body = json.dumps(
            {"model": "m", "stream": stream, "messages": [{"role": "user", "content": content}]}
        ).encode()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n%b" % (len(body), body)
        )
        await writer.drain()
        async with asyncio.timeout(DEADLINE):
            while not script.requests:  # the engine has the request: it 'prefills' from now on
                await asyncio.sleep(0.01)
        if stream:
            assert (await reader.readline()).startswith(b"HTTP/1.1 200")
        writer.close()  # the client goes during the prefill; nothing is being sent to it
        await writer.wait_closed()
        await asyncio.wait_for(script.closed.wait(), DEADLINE)
        assert not script.go.is_set()
