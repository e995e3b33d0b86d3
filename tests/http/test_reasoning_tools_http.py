"""Reasoning, tool calls and JSON output through each API with the official SDKs."""

from __future__ import annotations

import json

import anthropic
import httpx
import ollama
import openai
import pytest

from tests.engine.test_reasoning_tools_e2e import PERSON, TIME, TOOLS_TEMPLATE, WEATHER, modelfile
from tests.helpers import GEMMA_TEMPLATE

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

THINK_GRAMMAR = 'root ::= "<think>" [a-z ]{8,30} "</think>" "\\n" [A-Z] [a-z ]{3,20} "."'


@pytest.fixture(scope="module")
def models(daemon, test_model_path):
    specs = {
        "thinker": modelfile(test_model_path, "THINKING enabled true\n"),
        "opener": modelfile(test_model_path, "THINKING enabled true\n", GEMMA_TEMPLATE + "<think>"),
        "caller": modelfile(
            test_model_path, "TOOLFORMAT style qwen\nCAPABILITY tools true\n", TOOLS_TEMPLATE
        ),
    }
    for name, text in specs.items():
        reply = httpx.post(
            f"{daemon.url}/api/create",
            json={"model": name, "modelfile": text, "stream": False},
            timeout=120,
        )
        assert reply.status_code == 200, reply.text
    return daemon


def oai(daemon):
    return openai.OpenAI(base_url=f"{daemon.url}/v1", api_key="unused", max_retries=0, timeout=300)


def test_openai_reasoning_content_is_separate_streamed_and_not(models):
    client = oai(models)
    kwargs = dict(
        model="thinker",
        max_tokens=60,
        messages=[{"role": "user", "content": "Say hello"}],
        extra_body={"grammar": THINK_GRAMMAR},
    )
    reply = client.chat.completions.create(**kwargs)
    message = reply.choices[0].message
    reasoning = message.model_extra["reasoning_content"]
    assert message.model_extra["thinking"] == reasoning
    assert 8 <= len(reasoning) <= 30 and "<think>" not in message.content
    assert message.content.endswith(".")
    thinking, also, content = "", "", ""
    for chunk in client.chat.completions.create(stream=True, **kwargs):
        if chunk.choices:
            delta = chunk.choices[0].delta
            thinking += (delta.model_extra or {}).get("reasoning_content") or ""
            also += (delta.model_extra or {}).get("thinking") or ""
            content += delta.content or ""
    assert (thinking, content) == (reasoning, message.content) and also == thinking
    none = client.chat.completions.create(reasoning_effort="none", **kwargs)
    assert not (none.choices[0].message.model_extra or {}).get("reasoning_content")
    assert none.choices[0].message.content == message.content  # never leaks into the answer


def test_openai_streamed_tool_call_deltas_assemble_into_valid_json(models):
    client = oai(models)
    stream = client.chat.completions.create(
        model="caller",
        stream=True,
        max_tokens=60,
        tools=[WEATHER, TIME],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        messages=[{"role": "user", "content": "Weather in Paris?"}],
    )
    calls: dict[int, dict] = {}
    finish = None
    for chunk in stream:
        choice = chunk.choices[0]
        finish = choice.finish_reason or finish
        for delta in choice.delta.tool_calls or []:
            call = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
            call["id"] += delta.id or ""
            call["name"] += (delta.function.name or "") if delta.function else ""
            call["arguments"] += (delta.function.arguments or "") if delta.function else ""
    assert finish == "tool_calls"
    assert calls[0]["name"] == "get_weather" and calls[0]["id"].startswith("call_")
    assert isinstance(json.loads(calls[0]["arguments"])["city"], str)


def test_openai_json_schema_output_validates(models):
    reply = oai(models).chat.completions.create(
        model="gemma",
        max_tokens=120,
        seed=3,
        temperature=1.0,
        messages=[{"role": "user", "content": "A person as JSON"}],
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "person", "schema": PERSON},
        },
    )
    value = json.loads(reply.choices[0].message.content)
    assert set(value) == {"name", "age", "pets"}
    with pytest.raises(openai.BadRequestError) as err:
        oai(models).chat.completions.create(
            model="gemma",
            max_tokens=5,
            messages=[{"role": "user", "content": "x"}],
            response_format={
                "type": "json_schema",
                "json_schema": {
                    "name": "x",
                    "schema": {
                        "type": "object",
                        "properties": {"n": {"type": "integer", "minimum": 1}},
                    },
                },
            },
        )
    assert "minimum" in err.value.message


def test_anthropic_tool_use_input_parses(models):
    client = anthropic.Anthropic(base_url=models.url, api_key="unused", max_retries=0, timeout=300)
    tool = {
        "name": "get_weather",
        "description": "Weather",
        "input_schema": WEATHER["function"]["parameters"],
    }
    reply = client.messages.create(
        model="caller",
        max_tokens=60,
        tools=[tool],
        tool_choice={"type": "tool", "name": "get_weather"},
        messages=[{"role": "user", "content": "Weather in Oslo?"}],
    )
    assert reply.stop_reason == "tool_use"
    use = [b for b in reply.content if b.type == "tool_use"][0]
    assert use.name == "get_weather" and isinstance(use.input["city"], str)
    with client.messages.stream(
        model="caller",
        max_tokens=60,
        tools=[tool],
        tool_choice={"type": "tool", "name": "get_weather"},
        messages=[{"role": "user", "content": "Weather in Oslo?"}],
    ) as stream:
        final = stream.get_final_message()
    streamed = [b for b in final.content if b.type == "tool_use"][0]
    assert streamed.input == use.input and final.stop_reason == "tool_use"


def test_anthropic_thinking_blocks_with_a_budget(models):
    client = anthropic.Anthropic(base_url=models.url, api_key="unused", max_retries=0, timeout=300)
    reply = client.messages.create(
        model="opener",
        max_tokens=80,
        thinking={"type": "enabled", "budget_tokens": 6},
        messages=[{"role": "user", "content": "Tell me a story."}],
    )
    kinds = [b.type for b in reply.content]
    assert kinds[0] == "thinking" and "text" in kinds
    assert "</think>" not in "".join(b.text for b in reply.content if b.type == "text")


def test_anthropic_adaptive_thinking_thinks_where_the_model_can(models):
    """Claude Code's ``thinking: {"type": "adaptive"}`` with an effort: a thinking model thinks,
    one that cannot answers (no error)."""
    client = anthropic.Anthropic(base_url=models.url, api_key="unused", max_retries=0, timeout=300)
    kwargs = dict(
        max_tokens=24,
        thinking={"type": "adaptive"},
        output_config={"effort": "high"},
        messages=[{"role": "user", "content": "Tell me a story."}],
    )
    thought = client.messages.create(model="opener", **kwargs)
    assert thought.content[0].type == "thinking" and thought.content[0].thinking
    plain = client.messages.create(model="caller", **kwargs)
    assert [b.type for b in plain.content] == ["text"] and plain.content[0].text


def test_ollama_message_thinking(models):
    client = ollama.Client(host=models.url, timeout=300)
    reply = client.chat(
        model="opener",
        think=True,
        options={"num_predict": 30},
        messages=[{"role": "user", "content": "Hi"}],
    )
    assert reply.message.thinking and "<think>" not in (reply.message.content or "")
    structured = client.chat(
        model="gemma",
        format=PERSON,
        options={"num_predict": 120, "seed": 1},
        messages=[{"role": "user", "content": "A person"}],
    )
    assert set(json.loads(structured.message.content)) == {"name", "age", "pets"}
