"""The Anthropic-compatible API through the official ``anthropic`` SDK, against a real daemon."""

from __future__ import annotations

import anthropic
import httpx
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
            model="gemma", max_tokens=5, messages=[{"role": "system", "content": "x"}]
        )
    assert "messages[0].role" in err.value.body["error"]["message"]


def test_context_overflow(claude):
    with pytest.raises(anthropic.BadRequestError) as err:
        claude.messages.create(
            model="gemma", max_tokens=5, messages=[{"role": "user", "content": "word " * 3000}]
        )
    assert "context holds 2048" in err.value.body["error"]["message"]
