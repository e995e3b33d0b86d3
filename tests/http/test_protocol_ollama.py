"""Ollama and management request models, their conversion and the event → NDJSON path,
in-process. (tests/ollama/test_ollama_translation.py covers options and models.)"""

from __future__ import annotations

import json

import pytest

from mullama.engine.api import (
    Done,
    InvalidRequest,
    QueueFull,
    TextDelta,
    ThinkingDelta,
    ToolCallDelta,
    Usage,
)
from mullama.http.common.protocol import parse
from mullama.http.common.wire import stream_chunks
from mullama.http.errors import OLLAMA, engine_error_body
from mullama.http.events import Collected
from mullama.http.manage import ModelAction
from mullama.http.ollama import convert, protocol
from mullama.http.ollama.wire import ChatWriter, GenerateWriter


@pytest.mark.parametrize(
    "model, body, param, words",
    [
        (protocol.ChatBody, {"messages": []}, "model", "model is required"),
        (protocol.ChatBody, {"model": "  "}, "model", "model is required"),
        (protocol.ChatBody, {"model": "m", "stream": 1}, "stream", "boolean"),
        (protocol.ChatBody, {"model": "m", "options": {"top_k": "many"}}, "options.top_k", "top_k"),
        (protocol.GenerateBody, {"model": "m", "context": ["a"]}, "context[0]", "integer"),
        (protocol.GenerateBody, {"model": "m", "images": [1]}, "images[0]", "string"),
        (protocol.ChatBody, {"model": "m", "tools": [{"name": "f"}]}, "tools[0]", "a function"),
        (
            protocol.ChatBody,
            {"model": "m", "messages": [{"role": "user", "tool_calls": ["f"]}]},
            "messages[0].tool_calls[0]",
            "with a function",
        ),
        (protocol.EmbedBody, {"model": "m", "input": [1]}, "input[0]", "string"),
        (protocol.CopyBody, {"source": "a"}, "destination", "destination is required"),
        (ModelAction, {"stream": False}, "model", "model is required"),
    ],
)
def test_bad_bodies_are_400s_naming_the_field(model, body, param, words):
    with pytest.raises(InvalidRequest) as err:
        parse(model, body)
    assert err.value.param == param and words in err.value.message
    assert engine_error_body(OLLAMA, err.value) == {"error": err.value.message}


def test_aliases_and_defaults():
    chat = parse(protocol.ChatBody, {"name": "gemma", "unknown": 1})
    assert (chat.model, chat.stream, chat.messages) == ("gemma", True, [])
    assert parse(protocol.ChatBody, {"model": "a", "name": "b"}).model == "a"
    assert parse(ModelAction, {"model": "a", "name": "b"}).target == "b"  # name first, as before
    assert parse(protocol.GenerateBody, {"model": "m", "format": ""}).format is None
    assert parse(protocol.EmbedBody, {"model": "m", "input": ""}).inputs == []
    legacy = convert.embed_request(parse(protocol.EmbeddingsBody, {"model": "m", "prompt": "p"}))
    assert legacy.inputs == ["p"] and legacy.truncate is True


def test_generate_conversion():
    req = convert.generate_request(
        parse(
            protocol.GenerateBody,
            {
                "model": "m",
                "prompt": "p",
                "system": "",
                "raw": True,
                "options": {"num_predict": "4", "stop": "END", "tfs_z": 1, "temperature": None},
                "think": "low",
                "keep_alive": 0,
                "logprobs": True,
            },
        )
    )
    assert (req.prompt, req.system, req.raw, req.think, req.keep_alive) == (
        "p",
        None,
        True,
        "low",
        0,
    )
    assert (req.options.max_tokens, req.options.stop, req.options.logprobs) == (4, ["END"], True)
    assert req.options.temperature is None and convert.unloads(req.keep_alive)


EVENTS = [
    (0, ThinkingDelta("so")),
    (0, TextDelta("Hi", logprobs=[{"token": "Hi", "logprob": -0.1}])),
    (0, ToolCallDelta(0, id="c1", name="f", arguments='{"a"')),
    (0, ToolCallDelta(0, arguments=": 1}")),
    (0, Done("tool_calls", usage=Usage(3, 4))),
]


def test_chat_stream_sends_tool_calls_whole_at_the_end():
    writer = ChatWriter("gemma", logprobs=True)
    lines = stream_chunks(writer, EVENTS)
    assert [line["message"].get("thinking") for line in lines[:1]] == ["so"]
    assert lines[1]["message"]["content"] == "Hi" and lines[1]["logprobs"][0]["token"] == "Hi"
    assert lines[2]["message"]["tool_calls"] == [
        {"id": "c1", "function": {"index": 0, "name": "f", "arguments": {"a": 1}}}
    ]
    last = lines[-1]
    assert last["done"] is True and last["done_reason"] == "stop"
    assert (last["prompt_eval_count"], last["eval_count"]) == (3, 4)
    assert json.loads(writer.encode(last)) == last and writer.encode(last).endswith("}\n")
    assert writer.error(QueueFull("busy")) == {"error": "busy"}


def test_generate_whole_has_context_unless_raw():
    result = Collected()
    for event in (TextDelta("ok"), Done("stop", context=[1, 2])):
        result.add(event)
    assert GenerateWriter("m").whole([result]).wire()["context"] == [1, 2]
    raw = GenerateWriter("m", raw=True).whole([result]).wire()
    assert "context" not in raw and raw["response"] == "ok" and raw["done"] is True


def test_reported_ollama_version_is_semver_and_new_enough_for_codex():
    from mullama.http.ollama.routes import OLLAMA_API_VERSION

    # Codex CLI parses it as semver (a leading "v" trimmed) and its --oss mode refuses
    # anything older than 0.13.4, the first Ollama with a Responses API it can use.
    parts = OLLAMA_API_VERSION.removeprefix("v").split(".")
    assert len(parts) == 3 and all(p.isdigit() and str(int(p)) == p for p in parts)
    assert tuple(map(int, parts)) >= (0, 13, 4)
