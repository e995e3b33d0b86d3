"""Anthropic request models, their conversion and the event → wire path, in-process."""

from __future__ import annotations

import pytest

from mullama.engine.api import Done, InvalidRequest, TextDelta, ThinkingDelta, ToolCallDelta, Usage
from mullama.http.anthropic import convert, protocol
from mullama.http.anthropic.wire import MessagesWriter
from mullama.http.common.protocol import parse
from mullama.http.common.wire import stream_chunks
from mullama.http.errors import ANTHROPIC, engine_error_body
from mullama.http.events import Collected

BASE = {"model": "gemma", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}


@pytest.mark.parametrize(
    "body, param, words",
    [
        ({"max_tokens": None}, "max_tokens", "max_tokens is required"),
        ({"max_tokens": "5"}, "max_tokens", "must be an integer, got string"),
        ({"max_tokens": 0}, "max_tokens", "at least 1"),
        ({"model": None}, "model", "model is required"),
        ({"messages": None}, "messages", "messages is required"),
        ({"messages": []}, "messages", "at least one message"),
        ({"temperature": 1.5}, "temperature", "between 0 and 1"),
        ({"system": 7}, "system", "system must be a string or an array"),
        ({"system": [{"type": "image"}]}, "system[0]", "must be a text block"),
        ({"messages": [{"role": "system", "content": "x"}]}, "messages[0].role", "user or"),
        (
            {"messages": [{"role": "user", "content": [{"type": "video"}]}]},
            "messages[0].content[0].type",
            "'video' is not supported",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "tool_use", "id": "t"}]}]},
            "messages[0].content[0].name",
            "is required",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "image", "source": {"type": "url"}}]}
                ]
            },
            "messages[0].content[0].source.type",
            "must be base64",
        ),
        ({"tool_choice": {"type": "some"}}, "tool_choice.type", "auto, any, tool or none"),
        ({"tool_choice": {"type": "tool"}}, "tool_choice.name", "is required"),
        ({"thinking": {"type": "enabled"}}, "thinking.budget_tokens", "is required"),
        ({"thinking": {"type": "on"}}, "thinking.type", "enabled or disabled"),
        ({"tools": [{"description": "d"}]}, "tools[0].name", "is required"),
    ],
)
def test_bad_bodies_name_the_field(body, param, words):
    with pytest.raises(InvalidRequest) as err:
        parse(protocol.MessagesBody, {**BASE, **body})
    assert err.value.param == param and words in err.value.message
    shape = engine_error_body(ANTHROPIC, err.value)
    assert shape == {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": err.value.message},
    }


def test_conversion_splits_tool_results_and_maps_choices():
    body = parse(
        protocol.MessagesBody,
        {
            **BASE,
            "system": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
            "messages": [
                {
                    "role": "assistant",
                    "content": [
                        {"type": "thinking", "thinking": "hm", "signature": "s"},
                        {"type": "redacted_thinking", "data": "zz"},
                        {"type": "tool_use", "id": "t1", "name": "f", "input": {"a": 1}},
                    ],
                },
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": "t1", "content": "2"},
                        {"type": "text", "text": "and?"},
                        {"type": "image", "source": {"type": "base64", "data": "QUJD"}},
                    ],
                },
            ],
            "stop_sequences": "END",
            "tools": [{"name": "f", "input_schema": {"type": "object"}}],
            "tool_choice": {"type": "any"},
            "thinking": {"type": "enabled", "budget_tokens": 64},
            "metadata": {"user_id": "u"},
        },
    )
    req = convert.chat_request(body)
    assert [m.role for m in req.messages] == ["system", "assistant", "tool", "user"]
    assert req.messages[0].content == "a\nb"
    assert req.messages[1].thinking == "hm" and req.messages[1].tool_calls[0].arguments == (
        '{"a": 1}'
    )
    assert (req.messages[2].content, req.messages[2].tool_call_id) == ("2", "t1")
    assert (req.messages[3].content, req.messages[3].images) == ("and?", ["QUJD"])
    assert req.tools == [
        {
            "type": "function",
            "function": {"name": "f", "description": "", "parameters": {"type": "object"}},
        }
    ]
    assert (req.tool_choice, req.think, req.think_budget) == ("required", True, 64)
    assert (req.options.max_tokens, req.options.stop) == (5, ["END"])
    choice = {"tool_choice": {"type": "tool", "name": "f"}}
    assert convert.chat_request(parse(protocol.MessagesBody, {**BASE, **choice})).tool_choice == {
        "name": "f"
    }


def test_count_tokens_needs_no_max_tokens():
    body = parse(protocol.CountTokensBody, {**BASE, "max_tokens": None, "temperature": 9})
    assert convert.chat_request(body).options.max_tokens is None


def test_stream_has_one_block_per_kind_and_ends_with_the_stop_reason():
    writer = MessagesWriter("msg_1", "gemma", ["END"], input_tokens=3)
    chunks = stream_chunks(
        writer,
        [
            (0, ThinkingDelta("so")),
            (0, TextDelta("")),
            (0, TextDelta("Hi")),
            (0, ToolCallDelta(0, id="t1", name="f", arguments='{"a":1}')),
            (0, Done("stop", usage=Usage(3, 4), stop_sequence="END")),
        ],
    )
    kinds = [c["type"] for c in chunks]
    assert kinds == [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert chunks[0]["message"]["usage"] == {
        "input_tokens": 3,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": 0,
    }
    assert chunks[8]["content_block"] == {"type": "tool_use", "id": "t1", "name": "f", "input": {}}
    assert chunks[9]["delta"] == {"type": "input_json_delta", "partial_json": '{"a":1}'}
    assert chunks[11]["delta"] == {"stop_reason": "stop_sequence", "stop_sequence": "END"}
    assert writer.encode(chunks[2]) == 'event: ping\ndata: {"type":"ping"}\n\n'


def test_empty_answer_still_has_a_text_block():
    chunks = stream_chunks(MessagesWriter("m", "g", []), [(0, Done("length"))])
    assert chunks[1]["content_block"] == {"type": "text", "text": ""}
    assert chunks[-2]["delta"]["stop_reason"] == "max_tokens"


def test_whole_message():
    result = Collected()
    for event in (ToolCallDelta(0, id="t1", name="f", arguments="[1]"), Done("tool_calls")):
        result.add(event)
    body = MessagesWriter("msg_1", "gemma", []).whole([result]).wire()
    assert body["content"] == [
        {"type": "tool_use", "id": "t1", "name": "f", "input": {"value": [1]}}
    ]
    assert (body["stop_reason"], body["type"], body["id"]) == ("tool_use", "message", "msg_1")
