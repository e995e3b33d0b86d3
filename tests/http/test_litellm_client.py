"""LiteLLM against the real daemon through each provider route it has for a local server:
``openai/…`` (/v1/chat/completions, /v1/embeddings), ``ollama/…`` (/api/generate, /api/embed),
``ollama_chat/…`` (/api/chat) and ``anthropic/…`` (/v1/messages): chat, streaming, a forced
tool call, ``response_format`` schema output and embeddings, wherever LiteLLM maps them.

Plumbing, not answers: the test model is a 270M base model at temperature 0, so shapes are
forced with ``tool_choice`` and schemas. ``LITELLM_LOCAL_MODEL_COST_MAP`` keeps LiteLLM from
fetching its model list from the network."""

from __future__ import annotations

import json
import os

import httpx
import pytest

from tests.engine.test_reasoning_tools_e2e import TOOLS_TEMPLATE, WEATHER, modelfile

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

ANSWER = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "enum": ["Paris", "Rome"]},
        "sunny": {"type": "boolean"},
    },
    "required": ["city", "sunny"],
    "additionalProperties": False,
}
RESPONSE_FORMAT = {
    "type": "json_schema",
    "json_schema": {"name": "answer", "schema": ANSWER, "strict": True},
}
HI = [{"role": "user", "content": "Say hi"}]


@pytest.fixture(scope="module")
def litellm(daemon, test_model_path):
    """LiteLLM, offline, and the session daemon with ``caller`` (a model that calls tools)."""
    import litellm

    litellm.telemetry = False
    text = modelfile(
        test_model_path, "TOOLFORMAT style qwen\nCAPABILITY tools true\n", TOOLS_TEMPLATE
    )
    reply = httpx.post(
        f"{daemon.url}/api/create",
        json={"model": "caller", "modelfile": text, "stream": False},
        timeout=120,
    )
    assert reply.status_code == 200, reply.text
    litellm.mullama_url = daemon.url
    return litellm


def base(litellm, provider: str) -> dict:
    url = litellm.mullama_url
    return {
        "api_base": f"{url}/v1" if provider == "openai" else url,
        "api_key": "unused",
        "temperature": 0,
        "timeout": 300,
    }


def chat_and_stream(litellm, model: str, provider: str) -> None:
    kwargs = {**base(litellm, provider), "max_tokens": 16, "messages": HI}
    reply = litellm.completion(model=f"{provider}/{model}", **kwargs)
    text = reply.choices[0].message.content
    assert isinstance(text, str) and text
    assert reply.choices[0].finish_reason in ("stop", "length")
    assert reply.usage.prompt_tokens > 0 and reply.usage.completion_tokens > 0
    chunks = list(litellm.completion(model=f"{provider}/{model}", stream=True, **kwargs))
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert len(chunks) > 1 and streamed == text


def schema_output(litellm, model: str, provider: str) -> None:
    reply = litellm.completion(
        model=f"{provider}/{model}",
        messages=[{"role": "user", "content": "Is it sunny in Paris?"}],
        response_format=RESPONSE_FORMAT,
        max_tokens=60,
        **base(litellm, provider),
    )
    value = json.loads(reply.choices[0].message.content)
    assert value["city"] in ("Paris", "Rome") and isinstance(value["sunny"], bool)


def forced_tool_call(litellm, provider: str) -> None:
    reply = litellm.completion(
        model=f"{provider}/caller",
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=[WEATHER],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        max_tokens=60,
        **base(litellm, provider),
    )
    (call,) = reply.choices[0].message.tool_calls
    assert call.function.name == "get_weather" and call.id
    assert isinstance(json.loads(call.function.arguments)["city"], str)


def embeddings(litellm, provider: str) -> None:
    reply = litellm.embedding(
        model=f"{provider}/gemma", input=["hello", "world"], **base(litellm, provider)
    )
    vectors = [item["embedding"] for item in reply.data]
    assert len(vectors) == 2 and all(len(v) == 640 for v in vectors) and vectors[0] != vectors[1]


def test_litellm_openai(litellm):
    chat_and_stream(litellm, "gemma", "openai")
    forced_tool_call(litellm, "openai")
    schema_output(litellm, "gemma", "openai")
    embeddings(litellm, "openai")


def test_litellm_ollama_generate(litellm):
    """``ollama/…`` sends /api/generate; ``response_format`` becomes its ``format``."""
    chat_and_stream(litellm, "gemma", "ollama")
    schema_output(litellm, "gemma", "ollama")
    embeddings(litellm, "ollama")
    # json_object is format "json": its strings once took raw newlines from this very prompt
    reply = litellm.completion(
        model="ollama/gemma",
        messages=HI,
        response_format={"type": "json_object"},
        max_tokens=30,
        **base(litellm, "ollama"),
    )
    text = reply.choices[0].message.content
    assert text.startswith("{") and not any(c < " " for c in text), repr(text)


def test_litellm_ollama_chat(litellm):
    chat_and_stream(litellm, "gemma", "ollama_chat")
    schema_output(litellm, "gemma", "ollama_chat")


def test_litellm_anthropic(litellm):
    chat_and_stream(litellm, "gemma", "anthropic")
    forced_tool_call(litellm, "anthropic")
    schema_output(litellm, "caller", "anthropic")  # LiteLLM turns the schema into a forced tool
