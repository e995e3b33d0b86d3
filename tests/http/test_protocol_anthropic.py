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
        (
            {"messages": [{"role": "tool", "content": "x"}]},
            "messages[0].role",
            "user, assistant or system",
        ),
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
                    {"role": "user", "content": [{"type": "image", "source": {"type": "file"}}]}
                ]
            },
            "messages[0].content[0].source.type",
            "must be base64 or url",
        ),
        ({"tool_choice": {"type": "some"}}, "tool_choice.type", "auto, any, tool or none"),
        ({"tool_choice": {"type": "tool"}}, "tool_choice.name", "is required"),
        ({"thinking": {"type": "enabled"}}, "thinking.budget_tokens", "is required"),
        ({"thinking": {"type": "on"}}, "thinking.type", "enabled, disabled or adaptive"),
        ({"output_config": {"effort": "huge"}}, "output_config.effort", "low, medium, high"),
        ({"output_config": {"format": {"type": "json"}}}, "output_config.format.type", "json_sc"),
        ({"output_format": {"type": "json_schema"}}, "output_format.schema", "is required"),
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


# the shape of Claude Code 2.1's first request (its texts shortened)
CLAUDE_CODE = {
    "model": "gemma",
    "max_tokens": 32000,
    "stream": True,
    "metadata": {"user_id": '{"device_id":"d","session_id":"s"}'},
    "thinking": {"type": "adaptive", "display": "omitted"},
    "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
    "output_config": {"effort": "high"},
    "system": [
        {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1"},
        {"type": "text", "text": "You are a Claude agent.", "cache_control": {"type": "ephemeral"}},
    ],
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "<system-reminder>r</system-reminder>"},
                {"type": "text", "text": "Say hi", "cache_control": {"type": "ephemeral"}},
            ],
        },
        {
            "role": "system",
            "content": [
                {"type": "text", "text": "# Environment", "cache_control": {"type": "ephemeral"}}
            ],
        },
    ],
    "tools": [
        {"name": "Bash", "description": "Run", "input_schema": {"type": "object"}},
        {
            "name": "Later",
            "description": "d",
            "input_schema": {"type": "object"},
            "defer_loading": True,
            "cache_control": {"type": "ephemeral"},
        },
    ],
}


def test_claude_codes_request_is_accepted():
    req = convert.chat_request(parse(protocol.MessagesBody, CLAUDE_CODE))
    assert [(m.role, m.content) for m in req.messages] == [
        ("system", "x-anthropic-billing-header: cc_version=2.1\nYou are a Claude agent."),
        ("user", "<system-reminder>r</system-reminder>\nSay hi"),
        ("system", "# Environment"),  # at its place: the engine renders or merges it
    ]
    assert (req.think, req.think_budget, req.options.max_tokens) == ("high", None, 32000)
    assert [t["function"]["name"] for t in req.tools or []] == ["Bash", "Later"]
    assert req.format is None


@pytest.mark.parametrize(
    "thinking, effort, think",
    [
        ({"type": "adaptive"}, None, True),
        ({"type": "adaptive"}, "max", "high"),
        ({"type": "enabled", "budget_tokens": 9}, "low", "low"),
        ({"type": "disabled"}, "high", False),
        (None, "high", None),  # effort alone leaves thinking to the model's default
    ],
)
def test_thinking_and_effort(thinking, effort, think):
    body = {**BASE, "thinking": thinking, "output_config": {"effort": effort}}
    assert convert.chat_request(parse(protocol.MessagesBody, body)).think == think


SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}


@pytest.mark.parametrize(
    "extra",
    [
        {"output_config": {"format": {"type": "json_schema", "schema": SCHEMA}}},
        {"output_format": {"type": "json_schema", "schema": SCHEMA}},  # the older beta name
    ],
)
def test_output_format_is_the_engines_format(extra):
    assert convert.chat_request(parse(protocol.MessagesBody, {**BASE, **extra})).format == SCHEMA


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
