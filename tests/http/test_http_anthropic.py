"""The Anthropic-compatible API through the official ``anthropic`` SDK, against a real daemon."""

from __future__ import annotations

import json

import anthropic
import httpx
import pydantic
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

HELLO = [{"role": "user", "content": "Hello"}]


def warm(claude, **kwargs):
    """Answer once so compared calls see the same KV-cache state (see test_http_openai.warm)."""
    claude.messages.create(**kwargs)


def prompt(usage) -> int:
    """All the prompt's tokens: Anthropic splits them into cached and not."""
    return usage.input_tokens + usage.cache_read_input_tokens + usage.cache_creation_input_tokens


def test_message_shape_and_usage(claude):
    m = claude.messages.create(model="gemma", max_tokens=8, messages=HELLO)
    assert m.type == "message" and m.role == "assistant" and m.id.startswith("msg_")
    assert m.model == "gemma"
    assert [b.type for b in m.content] == ["text"] and m.content[0].text
    assert m.stop_reason == "max_tokens" and m.stop_sequence is None
    assert m.usage.output_tokens == 8 and m.usage.input_tokens > 0


def test_streamed_events_and_text_equal_non_streamed(claude):
    kwargs = dict(
        model="gemma",
        max_tokens=16,
        system="Be brief.",
        messages=[{"role": "user", "content": [{"type": "text", "text": "Tell me about dogs"}]}],
    )
    warm(claude, **kwargs)
    whole = claude.messages.create(**kwargs)
    with claude.messages.stream(**kwargs) as stream:
        events = [e.type for e in stream]
        final = stream.get_final_message()
    assert final.content[0].text == whole.content[0].text
    assert final.usage.output_tokens == 16 and prompt(final.usage) == prompt(whole.usage)
    assert final.stop_reason == "max_tokens"
    raw = [e for e in events if e != "text"]  # the SDK adds "text" events and hides pings
    assert raw[:2] == ["message_start", "content_block_start"]
    assert raw[-3:] == ["content_block_stop", "message_delta", "message_stop"]


def test_raw_stream_has_every_event_in_order(api):
    body = {"model": "gemma", "max_tokens": 4, "messages": HELLO, "stream": True}
    with httpx.stream("POST", f"{api.url}/v1/messages", json=body, timeout=120) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        names = [line[7:] for line in r.iter_lines() if line.startswith("event: ")]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert set(names[3:-3]) == {"content_block_delta"}
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]


async def test_async_client(aclaude):
    whole = await aclaude.messages.create(model="gemma", max_tokens=6, messages=HELLO)
    async with aclaude.messages.stream(model="gemma", max_tokens=6, messages=HELLO) as stream:
        text = "".join([t async for t in stream.text_stream])
    assert text == whole.content[0].text


def test_system_blocks_equal_system_string(claude):
    as_string = claude.messages.create(
        model="gemma", max_tokens=6, system="You are terse.", messages=HELLO
    )
    as_blocks = claude.messages.create(
        model="gemma",
        max_tokens=6,
        messages=HELLO,
        system=[{"type": "text", "text": "You are terse."}],
    )
    assert prompt(as_blocks.usage) == prompt(as_string.usage)


def test_stop_sequences(claude):
    warm(claude, model="gemma", max_tokens=12, messages=HELLO)
    free = claude.messages.create(model="gemma", max_tokens=12, messages=HELLO).content[0].text
    word = free.split()[1]
    m = claude.messages.create(model="gemma", max_tokens=12, messages=HELLO, stop_sequences=[word])
    assert m.stop_reason == "stop_sequence" and m.stop_sequence == word
    assert m.content[0].text == free[: free.index(word)]
    with claude.messages.stream(
        model="gemma", max_tokens=12, messages=HELLO, stop_sequences=[word]
    ) as s:
        final = s.get_final_message()
    assert final.stop_reason == "stop_sequence" and final.stop_sequence == word


def test_end_turn_when_the_model_stops(claude):
    # this SDK version no longer offers temperature/top_p/top_k as arguments: send them raw
    m = claude.messages.create(
        model="gemma-line",
        max_tokens=40,
        messages=HELLO,
        metadata={"user_id": "u1"},
        extra_body={"temperature": 0, "top_k": 1, "top_p": 0.9},
    )
    assert m.stop_reason == "end_turn" and m.stop_sequence is None


def test_multi_turn_with_blocks(claude):
    m = claude.messages.create(
        model="gemma",
        max_tokens=4,
        messages=[
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": [{"type": "text", "text": "Hello!"}]},
            {"role": "user", "content": [{"type": "text", "text": "How are you?"}]},
        ],
    )
    assert m.usage.output_tokens == 4


def test_count_tokens_matches_usage(claude):
    m = claude.messages.create(model="gemma", max_tokens=2, messages=HELLO, system="Be kind.")
    counted = claude.messages.count_tokens(model="gemma", messages=HELLO, system="Be kind.")
    assert counted.input_tokens == prompt(m.usage)


def test_usage_reports_prompt_tokens_read_from_the_cache(claude):
    history = [
        {"role": "user", "content": "Count: 1, 2, 3"},
        {"role": "assistant", "content": "4, 5, 6"},
    ]
    first = claude.messages.create(model="gemma", max_tokens=2, messages=history + HELLO)
    again = claude.messages.create(model="gemma", max_tokens=2, messages=history + HELLO)
    assert again.usage.cache_read_input_tokens > 0
    assert again.usage.input_tokens < first.usage.input_tokens + first.usage.cache_read_input_tokens
    assert prompt(again.usage) == prompt(first.usage)
    assert again.usage.cache_creation_input_tokens == 0
    with claude.messages.stream(model="gemma", max_tokens=2, messages=history + HELLO) as stream:
        final = stream.get_final_message()
    assert final.usage.cache_read_input_tokens > 0 and prompt(final.usage) == prompt(first.usage)


def test_errors_in_anthropic_shape(claude, api):
    with pytest.raises(anthropic.NotFoundError) as err:
        claude.messages.create(model="no-such-model", max_tokens=5, messages=HELLO)
    assert err.value.body["type"] == "error"
    assert err.value.body["error"]["type"] == "not_found_error"
    r = httpx.post(
        f"{api.url}/v1/messages",
        json={"model": "gemma", "messages": HELLO},
        headers={"anthropic-version": "2023-06-01"},
    )
    assert r.status_code == 400
    assert r.json() == {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": "max_tokens is required"},
    }
    with pytest.raises(anthropic.BadRequestError) as err:
        claude.messages.create(
            model="gemma", max_tokens=5, messages=HELLO, extra_body={"temperature": 1.5}
        )
    assert "temperature" in err.value.body["error"]["message"]
    with pytest.raises(anthropic.BadRequestError) as err:
        claude.messages.create(
            model="gemma", max_tokens=5, messages=[{"role": "tool", "content": "x"}]
        )
    assert "messages[0].role" in err.value.body["error"]["message"]


def test_context_overflow(claude):
    with pytest.raises(anthropic.BadRequestError) as err:
        claude.messages.create(
            model="gemma", max_tokens=5, messages=[{"role": "user", "content": "word " * 3000}]
        )
    assert "context holds 2048" in err.value.body["error"]["message"]


WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string", "description": "The city"}},
        "required": ["city"],
    },
    "cache_control": {"type": "ephemeral"},
}


def test_count_tokens_counts_the_tools_and_system_turns_as_rendered(claude):
    messages = [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "system", "content": "Answer briefly."},  # a mid-conversation system turn
    ]
    kwargs = dict(model="gemma", messages=messages, system="Be kind.", tools=[WEATHER])
    counted = claude.messages.count_tokens(**kwargs).input_tokens
    bare = claude.messages.count_tokens(model="gemma", messages=messages, system="Be kind.")
    assert counted > bare.input_tokens + 30  # the tool's definition is in the prompt
    m = claude.messages.create(max_tokens=2, **kwargs)
    assert counted == prompt(m.usage)
    with claude.messages.stream(max_tokens=2, **kwargs) as stream:
        opening = next(e for e in stream if e.type == "message_start")
        final = stream.get_final_message()
    assert opening.message.usage.input_tokens == counted == prompt(final.usage)


def test_claude_codes_request_streams_a_reply(api):
    """What Claude Code sends first: beta flags, max_tokens beyond the context (2048 here),
    adaptive thinking on a model that cannot think, an effort, context management, cache
    control, metadata, a system turn in the messages, tools with extra fields."""
    body = {
        "model": "gemma",
        "max_tokens": 32000,
        "stream": True,
        "metadata": {"user_id": '{"device_id":"d"}'},
        "thinking": {"type": "adaptive", "display": "omitted"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        "output_config": {"effort": "high"},
        "system": [
            {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1"},
            {"type": "text", "text": "You are an agent.", "cache_control": {"type": "ephemeral"}},
        ],
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Say hi"}]},
            {
                "role": "system",
                "content": [{"type": "text", "text": "# Env", "cache_control": {"type": "x"}}],
            },
        ],
        "tools": [{**WEATHER, "defer_loading": True}],
    }
    headers = {
        "anthropic-version": "2023-06-01",
        "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14,"
        "context-management-2025-06-27,effort-2025-11-24,no-such-beta-2030-01-01",
        "x-api-key": "unused",
    }
    url = f"{api.url}/v1/messages?beta=true"
    stop = {"stop_sequences": ["\n"]}  # a short answer: max_tokens stops at the context
    with httpx.stream("POST", url, json={**body, **stop}, headers=headers, timeout=120) as r:
        assert r.status_code == 200, r.read()
        events = [json.loads(line[6:]) for line in r.iter_lines() if line.startswith("data: ")]
    assert events[0]["type"] == "message_start" and events[-1]["type"] == "message_stop"
    assert events[0]["message"]["usage"]["input_tokens"] > 100  # the tool is counted
    counted = httpx.post(
        f"{api.url}/v1/messages/count_tokens?beta=true", json=body, headers=headers
    ).json()["input_tokens"]
    assert counted == events[0]["message"]["usage"]["input_tokens"]


def test_max_tokens_beyond_the_context_stops_at_the_context(claude, api, test_model_path):
    from tests.helpers import GEMMA_TEMPLATE

    text = (
        f'FROM {test_model_path}\nTEMPLATE """{GEMMA_TEMPLATE}"""\n'
        "PARAMETER temperature 0\nPARAMETER num_ctx 64\n"
    )
    created = httpx.post(
        f"{api.url}/api/create",
        json={"model": "gemma-64", "modelfile": text, "stream": False},
        timeout=120,
    )
    assert created.status_code == 200, created.text
    # 20000: the SDK refuses more without streaming
    m = claude.messages.create(model="gemma-64", max_tokens=20000, messages=HELLO)
    assert m.stop_reason == "max_tokens" and 48 < prompt(m.usage) + m.usage.output_tokens <= 64


class Answer(pydantic.BaseModel):
    ok: bool
    city: str


ANSWER_SCHEMA = {
    "type": "object",
    "properties": {"ok": {"type": "boolean"}, "city": {"type": "string", "maxLength": 12}},
    "required": ["ok", "city"],
    "additionalProperties": False,
}
QUESTION = [{"role": "user", "content": "Is Paris in France? Answer in JSON."}]


def test_output_config_format_constrains_the_reply(claude):
    parsed = claude.messages.parse(
        model="gemma", max_tokens=80, messages=QUESTION, output_format=Answer
    )
    assert isinstance(parsed.parsed_output, Answer)
    fmt = {"format": {"type": "json_schema", "schema": ANSWER_SCHEMA}}
    m = claude.messages.create(model="gemma", max_tokens=80, messages=QUESTION, output_config=fmt)
    assert set(json.loads(m.content[0].text)) == {"ok", "city"}
    with claude.messages.stream(
        model="gemma", max_tokens=80, messages=QUESTION, output_config=fmt
    ) as stream:
        assert set(json.loads(stream.get_final_message().content[0].text)) == {"ok", "city"}


def test_beta_output_format_constrains_the_reply(claude):
    parsed = claude.beta.messages.parse(
        model="gemma",
        max_tokens=80,
        messages=QUESTION,
        output_format=Answer,
        betas=["structured-outputs-2025-11-13"],
    )
    assert isinstance(parsed.parsed_output, Answer)
    m = claude.beta.messages.create(  # the beta's own field, as older SDKs sent it
        model="gemma",
        max_tokens=80,
        messages=QUESTION,
        betas=["structured-outputs-2025-11-13"],
        extra_body={"output_format": {"type": "json_schema", "schema": ANSWER_SCHEMA}},
    )
    assert set(json.loads(m.content[0].text)) == {"ok", "city"}
