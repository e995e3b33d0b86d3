"""The Responses API in-process: validation errors, conversion of every input item kind, a
scripted event sequence to the exact stream of events, whole responses, the store."""

from __future__ import annotations

import itertools
import json
import os
import time

import pytest
from openai.types.responses import Response as SDKResponse
from openai.types.responses import ResponseStreamEvent
from pydantic import TypeAdapter

from mullama.engine.api import (
    ContextOverflow,
    Done,
    InvalidRequest,
    Message,
    TextDelta,
    ThinkingDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from mullama.http.common.protocol import parse
from mullama.http.common.wire import stream_chunks
from mullama.http.errors import OPENAI, dialect_for
from mullama.http.events import Collected
from mullama.http.responses import convert, protocol
from mullama.http.responses.store import ResponseStore
from mullama.http.responses.wire import ResponsesWriter

BASE = {"model": "gemma", "input": "hi"}
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    "strict": True,
}
EVENTS = TypeAdapter(ResponseStreamEvent)


def body(**fields):
    return parse(protocol.ResponsesBody, {**BASE, **fields})


@pytest.mark.parametrize(
    "fields, param, words",
    [
        ({"input": 7}, "input", "must be"),
        ({"input": []}, "input", "must not be empty"),
        ({"input": [{"type": "bogus"}]}, "input[0].type", "'bogus' is not supported"),
        ({"input": [{"role": "robot", "content": "x"}]}, "input[0].role", "must be one of"),
        ({"input": [{"role": "user"}]}, "input[0].content", "is required"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_audio"}]}]},
            "input[0].content[0].type",
            "'input_audio' is not supported",
        ),
        (
            {"input": [{"role": "user", "content": [{"type": "input_text"}]}]},
            "input[0].content[0].text",
            "is required",
        ),
        (
            {
                "input": [
                    {
                        "role": "user",
                        "content": [{"type": "input_image", "image_url": "file:///y.png"}],
                    }
                ]
            },
            "input[0].content[0].image_url",
            "base64 data URL",
        ),
        (
            {"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]},
            "input[0].content[0].type",
            "files are not read",
        ),
        (
            {"input": [{"type": "function_call", "name": "f", "arguments": "{}"}]},
            "input[0].call_id",
            "is required",
        ),
        (
            {"input": [{"type": "function_call_output", "call_id": "c"}]},
            "input[0].output",
            "is required",
        ),
        ({"tools": [{"type": "function"}]}, "tools[0].name", "is required"),
        ({"tool_choice": "any"}, "tool_choice", "must be auto, none, required"),
        ({"tool_choice": {"type": "web_search"}}, "tool_choice.type", "must be function"),
        ({"tool_choice": {"type": "function"}}, "tool_choice.name", "is required"),
        ({"text": {"format": {"type": "yaml"}}}, "text.format.type", "must be text, json_object"),
        ({"text": {"format": {"type": "json_schema"}}}, "text.format.schema", "is required"),
        ({"reasoning": {"effort": "max"}}, "reasoning.effort", "must be one of"),
        ({"max_output_tokens": 0}, "max_output_tokens", "at least 1"),
        ({"max_output_tokens": "5"}, "max_output_tokens", "must be an integer"),
        ({"temperature": -1.0}, "temperature", "temperature"),
        ({"top_p": 2.0}, "top_p", "top_p"),
        ({"store": "yes"}, "store", "must be a boolean"),
        ({"metadata": {"k": 1}}, "metadata.k", "must be a string"),
        ({"background": True}, "background", "is not supported"),
    ],
)
def test_bad_bodies_name_the_field(fields, param, words):
    with pytest.raises(InvalidRequest) as err:
        body(**fields)
    assert err.value.param == param and words in err.value.message, err.value.message


def test_what_codex_sends_is_accepted():
    """The shape of a `codex exec` request (0.171.0): developer messages with input_text
    parts, hosted and namespace tools, include, store false, prompt_cache_key…"""
    chat = convert.chat_request(
        body(
            stream=True,
            input=[
                {
                    "type": "message",
                    "id": "msg_1",
                    "role": "developer",
                    "content": [{"type": "input_text", "text": "You are Codex."}],
                },
                {
                    "type": "message",
                    "role": "developer",
                    "content": [
                        {"type": "input_text", "text": "<permissions>"},
                        {"type": "input_text", "text": "<skills>"},
                    ],
                },
                {
                    "type": "message",
                    "role": "user",
                    "content": [{"type": "input_text", "text": "Hi"}],
                },
            ],
            tools=[
                {**WEATHER, "strict": False},
                {"type": "namespace", "name": "agents", "tools": [WEATHER]},
                {"type": "web_search", "external_web_access": True},
            ],
            tool_choice="auto",
            parallel_tool_calls=True,
            reasoning={"summary": "auto"},
            store=False,
            include=["reasoning.encrypted_content"],
            prompt_cache_key="abc",
            client_metadata={"thread_id": "t"},
        )
    )
    assert [m.role for m in chat.messages] == ["system", "user"]
    assert chat.messages[0].content == "You are Codex.\n\n<permissions>\n<skills>"
    assert [t["function"]["name"] for t in chat.tools or []] == ["get_weather"]
    assert chat.tool_choice == "auto" and chat.think is None


def test_every_input_item_kind_converts():
    chat = convert.chat_request(
        body(
            instructions="Be brief.",
            input=[
                {"role": "system", "content": "Tools are fine."},
                {"role": "user", "content": "Weather in Paris and Oslo?"},
                {
                    "type": "reasoning",
                    "id": "rs_1",
                    "summary": [{"type": "summary_text", "text": "Use the tool."}],
                },
                {
                    "type": "message",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": "Checking.", "annotations": []}],
                },
                {
                    "type": "function_call",
                    "call_id": "c1",
                    "name": "get_weather",
                    "arguments": '{"city":"Paris"}',
                },
                {
                    "type": "function_call",
                    "call_id": "c2",
                    "name": "get_weather",
                    "arguments": '{"city":"Oslo"}',
                },
                {"type": "function_call_output", "call_id": "c1", "output": "Sunny"},
                {
                    "type": "function_call_output",
                    "call_id": "c2",
                    "output": [{"type": "input_text", "text": "Rain"}],
                },
                {
                    "type": "reasoning",
                    "summary": [],
                    "content": [{"type": "reasoning_text", "text": "Sum up."}],
                },
                {
                    "type": "function_call",
                    "call_id": "c3",
                    "name": "get_weather",
                    "arguments": "{}",
                },
                {
                    "role": "user",
                    "content": [
                        {"type": "input_text", "text": "And this?"},
                        {"type": "input_image", "image_url": "data:image/png;base64,AAAA"},
                    ],
                },
            ],
        )
    )
    assert chat.messages == [
        Message("system", "Be brief.\n\nTools are fine."),
        Message("user", "Weather in Paris and Oslo?"),
        Message(
            "assistant",
            "Checking.",
            thinking="Use the tool.",
            tool_calls=[
                ToolCall("c1", "get_weather", '{"city":"Paris"}'),
                ToolCall("c2", "get_weather", '{"city":"Oslo"}'),
            ],
        ),
        Message("tool", "Sunny", tool_call_id="c1", name="get_weather"),
        Message("tool", "Rain", tool_call_id="c2", name="get_weather"),
        Message(
            "assistant", "", thinking="Sum up.", tool_calls=[ToolCall("c3", "get_weather", "{}")]
        ),
        Message("user", "And this?", images=["AAAA"]),
    ]


def test_history_comes_before_the_input():
    history = [parse(protocol.Item, {"role": "user", "content": "first"})]
    chat = convert.chat_request(body(input="second", instructions="sys"), history)
    assert [(m.role, m.content) for m in chat.messages] == [
        ("system", "sys"),
        ("user", "first"),
        ("user", "second"),
    ]


@pytest.mark.parametrize(
    "fields, expected",
    [
        ({}, {"tools": None, "tool_choice": None, "format": None, "think": None}),
        ({"tools": [WEATHER]}, {"tool_choice": "auto"}),
        ({"tools": [WEATHER], "tool_choice": "required"}, {"tool_choice": "required"}),
        ({"tools": [WEATHER], "tool_choice": "none"}, {"tool_choice": "none"}),
        (
            {"tools": [WEATHER], "tool_choice": {"type": "function", "name": "get_weather"}},
            {"tool_choice": {"type": "function", "function": {"name": "get_weather"}}},
        ),
        ({"text": {"format": {"type": "text"}}}, {"format": None}),
        ({"text": {"format": {"type": "json_object"}}}, {"format": "json"}),
        (
            {
                "text": {
                    "format": {
                        "type": "json_schema",
                        "name": "p",
                        "schema": {"type": "object"},
                        "strict": True,
                    }
                }
            },
            {"format": {"type": "object"}},
        ),
        ({"reasoning": {"effort": "none"}}, {"think": False}),
        ({"reasoning": {"effort": "minimal"}}, {"think": "low"}),
        ({"reasoning": {"effort": "medium"}}, {"think": "medium"}),
        ({"reasoning": {"effort": "xhigh"}}, {"think": "high"}),
    ],
)
def test_request_fields_convert(fields, expected):
    chat = convert.chat_request(body(**fields))
    for name, value in expected.items():
        assert getattr(chat, name) == value, name


def test_tools_and_sampling_convert():
    chat = convert.chat_request(
        body(tools=[WEATHER], max_output_tokens=9, temperature=0.5, top_p=0.9, seed=3, stop="x")
    )
    assert chat.tools == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather for a city",
                "parameters": WEATHER["parameters"],
            },
        }
    ]
    o = chat.options
    assert (o.max_tokens, o.temperature, o.top_p, o.seed, o.stop) == (9, 0.5, 0.9, 3, ["x"])


def test_the_route_prefixes_answer_in_openais_shape():
    assert dialect_for("/v1/responses") == OPENAI == dialect_for("/responses")
    assert dialect_for("/v1/responses/resp_1/input_items") == OPENAI


# ---------------------------------------------------------------- the writer


def writer(**fields):
    counter = itertools.count()
    kept = []
    w = ResponsesWriter(
        "resp_1",
        "gemma",
        body(**fields),
        created_at=100,
        on_final=kept.append,
        ids=lambda prefix: f"{prefix}_{next(counter)}",
    )
    return w, kept


DONE = Done(
    "stop",
    Usage(prompt_tokens=7, completion_tokens=6, cached_tokens=2, reasoning_tokens=1),
    model="gemma",
)


def test_a_scripted_stream_is_the_exact_event_sequence():
    w, kept = writer(tools=[WEATHER])
    events = [
        ThinkingDelta("Hm"),
        ThinkingDelta("m."),
        TextDelta("Hel"),
        TextDelta("lo"),
        ToolCallDelta(0, id="call_a", name="get_weather"),
        ToolCallDelta(0, arguments='{"city":'),
        ToolCallDelta(0, arguments='"Oslo"}'),
        DONE,
    ]
    chunks = stream_chunks(w, [(0, e) for e in events])
    assert [c["sequence_number"] for c in chunks] == list(range(len(chunks)))
    where = {"output_index": 0, "item_id": "rs_0"}
    text = {"output_index": 1, "item_id": "msg_1", "content_index": 0}
    call = {"output_index": 2, "item_id": "fc_2"}
    part = {"type": "output_text", "annotations": [], "logprobs": []}
    expected = [
        {"type": "response.created"},
        {"type": "response.in_progress"},
        {
            "type": "response.output_item.added",
            "output_index": 0,
            "item": {"id": "rs_0", "type": "reasoning", "summary": []},
        },
        {
            "type": "response.reasoning_summary_part.added",
            **where,
            "summary_index": 0,
            "part": {"type": "summary_text", "text": ""},
        },
        {
            "type": "response.reasoning_summary_text.delta",
            **where,
            "summary_index": 0,
            "delta": "Hm",
        },
        {
            "type": "response.reasoning_summary_text.delta",
            **where,
            "summary_index": 0,
            "delta": "m.",
        },
        {
            "type": "response.reasoning_summary_text.done",
            **where,
            "summary_index": 0,
            "text": "Hmm.",
        },
        {
            "type": "response.reasoning_summary_part.done",
            **where,
            "summary_index": 0,
            "part": {"type": "summary_text", "text": "Hmm."},
        },
        {
            "type": "response.output_item.done",
            "output_index": 0,
            "item": {
                "id": "rs_0",
                "type": "reasoning",
                "summary": [{"type": "summary_text", "text": "Hmm."}],
            },
        },
        {
            "type": "response.output_item.added",
            "output_index": 1,
            "item": {
                "id": "msg_1",
                "type": "message",
                "status": "in_progress",
                "role": "assistant",
                "content": [],
            },
        },
        {"type": "response.content_part.added", **text, "part": {**part, "text": ""}},
        {"type": "response.output_text.delta", **text, "delta": "Hel", "logprobs": []},
        {"type": "response.output_text.delta", **text, "delta": "lo", "logprobs": []},
        {"type": "response.output_text.done", **text, "text": "Hello", "logprobs": []},
        {"type": "response.content_part.done", **text, "part": {**part, "text": "Hello"}},
        {
            "type": "response.output_item.done",
            "output_index": 1,
            "item": {
                "id": "msg_1",
                "type": "message",
                "status": "completed",
                "role": "assistant",
                "content": [{**part, "text": "Hello"}],
            },
        },
        {
            "type": "response.output_item.added",
            "output_index": 2,
            "item": {
                "id": "fc_2",
                "type": "function_call",
                "status": "in_progress",
                "arguments": "",
                "call_id": "call_a",
                "name": "get_weather",
            },
        },
        {"type": "response.function_call_arguments.delta", **call, "delta": '{"city":'},
        {"type": "response.function_call_arguments.delta", **call, "delta": '"Oslo"}'},
        {
            "type": "response.function_call_arguments.done",
            **call,
            "name": "get_weather",
            "arguments": '{"city":"Oslo"}',
        },
        {
            "type": "response.output_item.done",
            "output_index": 2,
            "item": {
                "id": "fc_2",
                "type": "function_call",
                "status": "completed",
                "arguments": '{"city":"Oslo"}',
                "call_id": "call_a",
                "name": "get_weather",
            },
        },
        {"type": "response.completed"},
    ]
    assert len(chunks) == len(expected)
    for chunk, want in zip(chunks, expected):
        assert {k: chunk[k] for k in want if k != "response"} == want
    created, completed = chunks[0]["response"], chunks[-1]["response"]
    assert (
        created["status"] == "in_progress" and created["output"] == [] and created["usage"] is None
    )
    assert completed["status"] == "completed" and completed["incomplete_details"] is None
    assert completed["output"] == [
        c["item"] for c in chunks if c["type"] == "response.output_item.done"
    ]
    assert completed["usage"] == {
        "input_tokens": 7,
        "input_tokens_details": {"cached_tokens": 2, "cache_write_tokens": 0},
        "output_tokens": 6,
        "output_tokens_details": {"reasoning_tokens": 1},  # as the engine counted them
        "total_tokens": 13,
    }
    assert kept[0].wire() == completed  # stored before response.completed is sent
    for chunk in chunks:  # the official SDK's types accept every event
        assert EVENTS.validate_python(chunk).type == chunk["type"]
    SDKResponse.model_validate(completed)
    encoded = w.encode(chunks[4])
    assert encoded.startswith("event: response.reasoning_summary_text.delta\ndata: {")


def test_a_cut_stream_is_incomplete_and_an_empty_one_has_an_empty_message():
    w, _ = writer(max_output_tokens=2)
    chunks = stream_chunks(w, [(0, TextDelta("ab")), (0, Done("length", Usage(3, 2)))])
    last = chunks[-1]
    assert last["type"] == "response.incomplete"
    assert last["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    assert last["response"]["output"][0]["status"] == "incomplete"
    w, _ = writer()
    chunks = stream_chunks(w, [(0, Done("stop"))])
    assert [c["type"] for c in chunks][2:] == [
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert chunks[-1]["response"]["output"][0]["content"][0]["text"] == ""


def test_parallel_tool_calls_false_keeps_the_first_call():
    w, _ = writer(tools=[WEATHER], parallel_tool_calls=False)
    events = [
        ToolCallDelta(0, id="c0", name="get_weather", arguments="{}"),
        ToolCallDelta(1, id="c1", name="get_weather", arguments="{}"),
        Done("tool_calls"),
    ]
    chunks = stream_chunks(w, [(0, e) for e in events])
    assert [i["call_id"] for i in chunks[-1]["response"]["output"]] == ["c0"]
    collected = Collected()
    for event in events:
        collected.add(event)
    w, _ = writer(tools=[WEATHER], parallel_tool_calls=False)
    assert [i["call_id"] for i in w.whole([collected]).wire()["output"]] == ["c0"]


def test_an_engine_failure_midway_is_an_error_event_then_response_failed():
    w, kept = writer()
    chunks = stream_chunks(w, [(0, TextDelta("a"))])
    error = w.error(ContextOverflow("the context is full", param="input"))
    text = w.encode(error)
    lines = [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]
    assert [e["type"] for e in lines] == ["error", "response.failed"]
    assert lines[0] == {
        "type": "error",
        "code": "context_length_exceeded",
        "message": "the context is full",
        "param": "input",
        "sequence_number": len(chunks),
    }
    assert lines[1]["sequence_number"] == len(chunks) + 1
    failed = lines[1]["response"]
    assert failed["status"] == "failed" and failed["error"]["code"] == "invalid_prompt"
    assert text.startswith("event: error\n") and "event: response.failed\n" in text
    assert not kept  # a failed response is not stored
    for event in lines:
        EVENTS.validate_python(event)


def test_a_whole_response():
    w, kept = writer(tools=[WEATHER], instructions="sys", metadata={"k": "v"}, store=False)
    collected = Collected()
    for event in [
        ThinkingDelta("why"),
        TextDelta("ok"),
        ToolCallDelta(0, id="call_x", name="get_weather", arguments='{"city":"Rome"}'),
        DONE,
    ]:
        collected.add(event)
    reply = w.whole([collected]).wire()
    assert [i["type"] for i in reply["output"]] == ["reasoning", "message", "function_call"]
    assert reply["output"][0]["summary"] == [{"type": "summary_text", "text": "why"}]
    assert reply["output"][1]["content"][0]["text"] == "ok"
    assert reply["output"][2] == {
        "id": "fc_2",
        "type": "function_call",
        "status": "completed",
        "arguments": '{"city":"Rome"}',
        "call_id": "call_x",
        "name": "get_weather",
    }
    assert (reply["id"], reply["object"], reply["created_at"]) == ("resp_1", "response", 100)
    assert reply["instructions"] == "sys" and reply["metadata"] == {"k": "v"}
    assert reply["store"] is False and reply["tools"][0]["name"] == "get_weather"
    assert reply["usage"]["output_tokens_details"]["reasoning_tokens"] == 1
    parsed = SDKResponse.model_validate(reply)
    assert parsed.output_text == "ok" and kept


# ---------------------------------------------------------------- the store


def record(response_id: str, output=()):
    return {
        "response": {"id": response_id, "output": list(output)},
        "input": [{"id": "i"}],
        "history": [],
    }


def test_the_store_keeps_loads_and_deletes(tmp_path):
    store = ResponseStore(tmp_path / "responses")
    assert store.load("resp_x") is None and not store.delete("resp_x")
    store.save(record("resp_a", [{"id": "o"}]))
    assert store.load("resp_a") == record("resp_a", [{"id": "o"}])
    assert store.conversation(store.load("resp_a")) == [{"id": "i"}, {"id": "o"}]
    assert store.delete("resp_a") and store.load("resp_a") is None
    for bad in ("../etc/passwd", "a/b", "", "x" * 200):
        assert store.load(bad) is None and not store.delete(bad)
    with pytest.raises(ValueError):
        store.save(record("../escape"))


def test_the_store_is_bounded_by_count_and_age(tmp_path):
    store = ResponseStore(tmp_path, max_count=3, max_age=1000)
    now = time.time()
    for i in range(5):
        store.save(record(f"resp_{i}"))
        os.utime(tmp_path / f"resp_{i}.json", (now - 100 + i, now - 100 + i))
    store.prune()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "resp_2.json",
        "resp_3.json",
        "resp_4.json",
    ]
    os.utime(tmp_path / "resp_2.json", (now - 2000, now - 2000))
    assert store.load("resp_2") is None  # too old to be found, even before it is pruned
    store.save(record("resp_5"))
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "resp_3.json",
        "resp_4.json",
        "resp_5.json",
    ]


def test_the_store_writes_atomically(tmp_path, monkeypatch):
    store = ResponseStore(tmp_path)
    store.save(record("resp_a", [{"id": "old"}]))

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(json, "dump", broken)
    with pytest.raises(OSError):
        store.save(record("resp_a", [{"id": "new"}]))
    monkeypatch.undo()
    assert store.load("resp_a")["response"]["output"] == [{"id": "old"}]  # the old one intact
    assert [p.name for p in tmp_path.iterdir()] == ["resp_a.json"]  # no temporary file left
    stale = tmp_path / ".left.tmp"
    stale.write_text("{")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    store.prune()
    assert not stale.exists()
