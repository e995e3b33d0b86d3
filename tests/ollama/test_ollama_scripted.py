"""Event shapes the test model cannot be made to produce through the Ollama API (thinking,
tool calls, an engine failure halfway through a stream), sent by a scripted engine through
the real Sanic app and read by the official ``ollama`` client."""

from __future__ import annotations

import httpx
import ollama
import pytest

from mullama.config import load_settings
from mullama.engine.api import (
    Cancelled,
    ChatRequest,
    CompletionRequest,
    Done,
    TextDelta,
    ThinkingDelta,
    Timings,
    ToolCallDelta,
    Usage,
)
from mullama.http.app import create_app
from tests.ollama.asgi import asgi_transport

DONE = Done(
    "stop",
    Usage(7, 3),
    Timings(load_ns=5, prompt_eval_ns=20, eval_ns=30, total_ns=60),
    model="scripted:latest",
    context=[1, 2, 3],
)


class ScriptedEngine:
    """Answers every chat/complete request with ``events`` (an exception is raised there)."""

    async def default_model(self) -> str:
        return ""

    def __init__(self, events):
        self.events = events
        self.requests: list = []

    async def _play(self, request):
        self.requests.append(request)
        for event in self.events:
            if isinstance(event, Exception):
                raise event
            yield event

    def chat(self, request: ChatRequest):
        return self._play(request)

    def complete(self, request: CompletionRequest):
        return self._play(request)


@pytest.fixture
def scripted(tmp_path):
    async def make(events):
        engine = ScriptedEngine(events)
        app = create_app(
            engine,
            load_settings(
                env={},
                cache_dir=tmp_path / "c",
                config_dir=tmp_path / "cf",
                data_dir=tmp_path / "d",
            ),
        )
        app.config.TOUCHUP = False  # Sanic rewrites its classes once per process, not per app
        return engine, app

    return make


THINK_AND_CALL = [
    ThinkingDelta("The user wants "),
    ThinkingDelta("the weather."),
    ToolCallDelta(0, id="call_1", name="get_weather", arguments='{"city": '),
    ToolCallDelta(0, arguments='"Paris"}'),
    ToolCallDelta(1, id="call_2", name="get_time", arguments="{}"),
    Done("tool_calls", DONE.usage, DONE.timings, model=DONE.model),
]


async def test_chat_thinking_and_tool_calls_whole(scripted):
    engine, app = await scripted(THINK_AND_CALL)
    async with asgi_transport(app) as transport:
        client = ollama.AsyncClient(host="http://localhost", transport=transport)
        tools = [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
                },
            }
        ]
        reply = await client.chat(
            model="scripted",
            think=True,
            tools=tools,
            messages=[{"role": "user", "content": "Weather in Paris?"}],
        )
    assert reply.message.thinking == "The user wants the weather."
    assert reply.message.content == ""
    calls = reply.message.tool_calls
    assert [c.function.name for c in calls] == ["get_weather", "get_time"]
    assert calls[0].function.arguments == {"city": "Paris"}
    assert calls[1].function.arguments == {}
    assert reply.done_reason == "stop"  # Ollama reports a tool-call turn as a stop
    request = engine.requests[0]
    assert request.think is True
    assert request.tools[0]["function"]["name"] == "get_weather"


async def test_chat_tool_calls_streamed_whole_before_the_final_chunk(scripted):
    _, app = await scripted(THINK_AND_CALL)
    async with asgi_transport(app) as transport:
        client = ollama.AsyncClient(host="http://localhost", transport=transport)
        parts = [
            p
            async for p in await client.chat(
                model="scripted", stream=True, messages=[{"role": "user", "content": "hi"}]
            )
        ]
    assert "".join(p.message.thinking or "" for p in parts) == "The user wants the weather."
    with_calls = [p for p in parts if p.message.tool_calls]
    assert len(with_calls) == 1 and not with_calls[0].done
    assert with_calls[0].message.tool_calls[0].function.arguments == {"city": "Paris"}
    assert parts[-1].done and parts[-1].done_reason == "stop"
    assert [p.done for p in parts].count(True) == 1


async def test_tool_history_reaches_the_engine(scripted):
    engine, app = await scripted([TextDelta("18 degrees"), DONE])
    messages = [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}],
        },
        {"role": "tool", "content": "18", "tool_name": "get_weather"},
    ]
    async with asgi_transport(app) as transport:
        client = ollama.AsyncClient(host="http://localhost", transport=transport)
        reply = await client.chat(model="scripted", messages=messages)
    assert reply.message.content == "18 degrees"
    sent = engine.requests[0].messages
    assert sent[1].tool_calls[0].name == "get_weather"
    assert sent[1].tool_calls[0].arguments == '{"city": "Paris"}'
    assert (sent[2].role, sent[2].name, sent[2].content) == ("tool", "get_weather", "18")


async def test_generate_thinking_stats_and_context(scripted):
    _, app = await scripted([ThinkingDelta("hmm"), TextDelta("Paris"), DONE])
    async with asgi_transport(app) as transport:
        client = ollama.AsyncClient(host="http://localhost", transport=transport)
        reply = await client.generate(model="scripted", prompt="Capital of France?", think=True)
        raw = await client.generate(model="scripted", prompt="x", raw=True)
    assert (reply.thinking, reply.response) == ("hmm", "Paris")
    assert (reply.total_duration, reply.load_duration) == (60, 5)
    assert (reply.prompt_eval_count, reply.prompt_eval_duration) == (7, 20)
    assert (reply.eval_count, reply.eval_duration) == (3, 30)
    assert reply.context == [1, 2, 3]
    assert raw.context is None  # raw mode has no template context, as in Ollama


async def test_engine_error_mid_stream_is_the_last_ndjson_line(scripted):
    _, app = await scripted([TextDelta("Once upon"), Cancelled("the model was unloaded")])
    async with asgi_transport(app) as transport:
        client = ollama.AsyncClient(host="http://localhost", transport=transport)
        received = []
        with pytest.raises(ollama.ResponseError, match="the model was unloaded"):
            async for part in await client.generate(model="scripted", prompt="story", stream=True):
                received.append(part.response)
        assert received == ["Once upon"]
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as http:
            r = await http.post(
                "/api/chat",
                json={"model": "scripted", "messages": [{"role": "user", "content": "x"}]},
            )
    assert r.status_code == 200
    lines = r.text.strip().split("\n")
    assert lines[-1] == '{"error": "the model was unloaded"}'
    assert '"content": "Once upon"' in lines[0]


async def test_engine_error_before_the_first_event_is_an_http_status(scripted):
    _, app = await scripted([Cancelled("the model was unloaded")])
    async with asgi_transport(app) as transport:
        client = ollama.AsyncClient(host="http://localhost", transport=transport)
        with pytest.raises(ollama.ResponseError) as err:
            async for _ in await client.chat(
                model="scripted", stream=True, messages=[{"role": "user", "content": "x"}]
            ):
                pass
    assert err.value.status_code == 503
    assert err.value.error == "the model was unloaded"
