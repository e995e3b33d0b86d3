"""OpenAI request models, their conversion to engine requests and the event → wire path,
in-process (no daemon, no model)."""

from __future__ import annotations

import pytest

from mullama.engine.api import (
    Done,
    InvalidRequest,
    TextDelta,
    ThinkingDelta,
    ToolCallDelta,
    Unavailable,
    Usage,
)
from mullama.http.common.protocol import parse
from mullama.http.common.wire import stream_chunks
from mullama.http.errors import OPENAI, engine_error_body
from mullama.http.events import Collected
from mullama.http.openai import convert, protocol
from mullama.http.openai.wire import ChatWriter, CompletionWriter

HI = [{"role": "user", "content": "hi"}]


def chat(**body):
    return convert.chat_request(parse(protocol.ChatCompletionBody, {"messages": HI, **body}))


@pytest.mark.parametrize(
    "body, param, words",
    [
        ({"messages": "hi"}, "messages", "messages must be an array, got string"),
        ({"messages": []}, "messages", "messages must not be empty"),
        ({"model": 3}, "model", "model must be a string, got integer"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content", "a string or"),
        ({"messages": [{"role": "robot"}]}, "messages[0].role", "got 'robot'"),
        ({"max_tokens": "ten"}, "max_tokens", "must be an integer, got string"),
        ({"max_completion_tokens": 0}, "max_completion_tokens", "at least 1"),
        ({"temperature": True}, "temperature", "must be a number, got boolean"),
        ({"temperature": 500}, "temperature", "between 0 and 100, got 500"),
        ({"top_p": 5}, "top_p", "between 0 and 1"),
        ({"stop": [1, 2]}, "stop", "a string or an array of strings"),
        ({"stream": "yes"}, "stream", "boolean"),
        ({"stream_options": {"include_usage": 1}}, "stream_options.include_usage", "boolean"),
        ({"n": 0}, "n", "n must be at least 1"),
        ({"n": 65}, "n", "n must be at most 64"),
        ({"messages": [{"role": "user"}]}, "messages[0].content", "content is required"),
        (
            {"messages": [{"role": "system", "content": None}]},
            "messages[0].content",
            "content is required",
        ),
        ({"logit_bias": {"x": "y"}}, "logit_bias", "numbers as biases"),
        ({"logit_bias": 5}, "logit_bias", "an object of token ids or strings"),
        ({"top_logprobs": 3}, "top_logprobs", "requires logprobs"),
        ({"response_format": {"type": "xml"}}, "response_format.type", "json_schema"),
        ({"response_format": {"type": "json_schema"}}, "response_format.json_schema", "required"),
        ({"reasoning_effort": "max"}, "reasoning_effort", "none, minimal, low"),
        (
            {"messages": [{"role": "user", "content": [{"type": "video"}]}]},
            "messages[0].content[0].type",
            "'video' is not supported",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "text"}]}]},
            "messages[0].content[0].text",
            "messages[0].content[0].text is required",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "image_url", "image_url": "ftp://x"}]}
                ]
            },
            "messages[0].content[0].image_url.url",
            "base64 data URL (data:image/...;base64,...) or an http(s) URL",
        ),
        (
            {"messages": [{"role": "assistant", "tool_calls": [{"function": {}}]}]},
            "messages[0].tool_calls[0].function.name",
            "is required",
        ),
    ],
)
def test_bad_chat_bodies_name_the_parameter(body, param, words):
    with pytest.raises(InvalidRequest) as err:
        parse(protocol.ChatCompletionBody, {"messages": HI, **body})
    assert err.value.param == param and words in err.value.message
    shape = engine_error_body(OPENAI, err.value)["error"]
    assert shape["param"] == param and shape["type"] == "invalid_request_error"
    assert shape["code"] == "invalid_request"


@pytest.mark.parametrize(
    "raw, words",
    [(b"", "body is empty"), (b"{x", "not valid JSON"), (b"[1]", "must be a JSON object")],
)
def test_malformed_bodies(raw, words):
    with pytest.raises(InvalidRequest, match=words):
        parse(protocol.ChatCompletionBody, raw)


def test_chat_conversion_keeps_every_alias_and_quirk():
    req = chat(
        model="gemma",
        messages=[
            {"role": "developer", "content": "be brief"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "look"},
                    {"type": "input_text", "text": "here"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,QUJD"}},
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "reasoning_content": "hmm",
                "tool_calls": [{"function": {"name": "f", "arguments": {"a": 1}}}],
            },
            {"role": "function", "content": "2", "tool_call_id": "call_0", "name": "f"},
        ],
        max_tokens=7,
        max_completion_tokens=5,
        stop="END",
        temperature=1,
        seed=None,  # null is the same as absent
        response_format={"type": "json_schema", "json_schema": {"schema": {"type": "object"}}},
        reasoning_effort="minimal",
        logprobs=True,
        top_logprobs=2,
        ignore_eos=True,
        unknown_field={"kept": True},
    )
    assert [m.role for m in req.messages] == ["system", "user", "assistant", "tool"]
    assert req.messages[1].content == "look\nhere" and req.messages[1].images == ["QUJD"]
    assert req.messages[2].content == "" and req.messages[2].thinking == "hmm"
    call = req.messages[2].tool_calls[0]
    assert (call.id, call.name, call.arguments) == ("call_0", "f", '{"a": 1}')
    assert req.messages[3].tool_call_id == "call_0" and req.messages[3].name == "f"
    opts = req.options
    assert (opts.max_tokens, opts.stop, opts.temperature, opts.seed) == (5, ["END"], 1.0, None)
    assert (opts.logprobs, opts.top_logprobs, opts.ignore_eos) == (True, 2, True)
    assert (req.format, req.think, req.model) == ({"type": "object"}, "low", "gemma")
    assert chat(response_format={"type": "json_object"}).format == "json"
    assert chat(reasoning_effort="none").think is False
    assert chat(response_format={"type": "text"}).format is None


def test_completion_prompts_become_one_request_each():
    body = parse(protocol.CompletionBody, {"prompt": ["ab", [1, 2]], "logprobs": 2, "suffix": "z"})
    first, second = convert.completion_requests(body)
    assert (first.prompt, first.context, first.suffix, first.raw) == ("ab", None, "z", True)
    assert (second.prompt, second.context) == ("", [1, 2])
    assert first.options is not second.options and first.options.top_logprobs == 2
    assert len(convert.completion_requests(parse(protocol.CompletionBody, {"prompt": [5]}))) == 1
    for bad in ({"prompt": {"a": 1}}, {"prompt": []}, {"prompt": [True]}):
        with pytest.raises(InvalidRequest) as err:
            parse(protocol.CompletionBody, bad)
        assert err.value.param == "prompt"
    with pytest.raises(InvalidRequest, match="logprobs must be at most 20"):
        parse(protocol.CompletionBody, {"prompt": "x", "logprobs": 21})


def test_embedding_inputs_and_encoding():
    body = parse(protocol.EmbeddingBody, {"input": "a", "dimensions": 8})
    req = convert.embed_request(body)
    assert (req.inputs, req.dimensions, body.encoding_format) == (["a"], 8, "float")
    for bad, param in (({"input": 42}, "input"), ({"input": "x", "encoding_format": "hex"}, None)):
        with pytest.raises(InvalidRequest) as err:
            parse(protocol.EmbeddingBody, bad)
        assert err.value.param == (param or "encoding_format")


@pytest.mark.parametrize(
    "given, inputs",
    [
        ([1, 2, 3], [[1, 2, 3]]),  # one input as token ids
        ([[1, 2], [3]], [[1, 2], [3]]),  # several (langchain-openai's default)
        (["a", [4, 5]], ["a", [4, 5]]),  # texts and token ids mixed
        (["a", "b"], ["a", "b"]),
    ],
)
def test_embedding_input_takes_token_ids(given, inputs):
    req = convert.embed_request(parse(protocol.EmbeddingBody, {"model": "m", "input": given}))
    assert req.inputs == inputs
    assert all(type(t) is int for item in req.inputs if isinstance(item, list) for t in item)


@pytest.mark.parametrize("bad", [[], [[]], [1.5, 2], [True], [[1, "a"]], [[1], {}], [[[1]]]])
def test_embedding_input_rejects_what_is_neither_text_nor_token_ids(bad):
    with pytest.raises(InvalidRequest) as err:
        parse(protocol.EmbeddingBody, {"model": "m", "input": bad})
    assert err.value.param == "input"


EVENTS = [
    (0, ThinkingDelta("so")),
    (0, TextDelta("Hi")),
    (0, ToolCallDelta(0, id="call_1", name="f", arguments='{"a"')),
    (0, ToolCallDelta(0, arguments=": 1}")),
    (0, Done("tool_calls", usage=Usage(3, 4, 1))),
]


def test_chat_events_stream_as_chunks_then_done():
    writer = ChatWriter("gemma", "chatcmpl-1", 7, include_usage=True)
    chunks = stream_chunks(writer, EVENTS)
    deltas = [c["choices"][0]["delta"] for c in chunks[:-2]]
    assert deltas[0] == {"role": "assistant", "content": ""}
    assert deltas[1] == {"reasoning_content": "so", "thinking": "so"}
    assert deltas[2] == {"content": "Hi"}
    assert deltas[3]["tool_calls"][0] == {
        "index": 0,
        "id": "call_1",
        "type": "function",
        "function": {"arguments": '{"a"', "name": "f"},
    }
    assert deltas[4]["tool_calls"][0] == {"index": 0, "function": {"arguments": ": 1}"}}
    assert chunks[5]["choices"][0]["finish_reason"] == "tool_calls" and deltas[5] == {}
    assert all(c["object"] == "chat.completion.chunk" and c["usage"] is None for c in chunks[:6])
    assert chunks[6]["choices"] == [] and chunks[6]["usage"]["total_tokens"] == 7
    assert chunks[7] == "[DONE]"
    assert writer.encode(chunks[2]).startswith('data: {"id":"chatcmpl-1"')


def test_chat_events_as_one_completion():
    result = Collected()
    for _, event in EVENTS:
        result.add(event)
    body = ChatWriter("", "chatcmpl-1", 7).whole([result]).wire()
    assert body["object"] == "chat.completion" and body["model"] == ""
    message = body["choices"][0]["message"]
    assert (message["content"], message["reasoning_content"]) == ("Hi", "so")
    assert message["tool_calls"][0]["function"] == {"name": "f", "arguments": '{"a": 1}'}
    assert body["choices"][0]["finish_reason"] == "tool_calls"
    assert body["usage"]["prompt_tokens_details"] == {"cached_tokens": 1}
    error = ChatWriter("", "x", 0).error(Unavailable("gone"))
    assert error["error"]["message"] == "gone" and error["error"]["type"] == "server_error"


def test_completion_events_echo_and_sum_usage():
    writer = CompletionWriter(
        "m", "cmpl-1", 7, True, prompts=["ab", "cd"], echo=True, logprobs=False
    )
    chunks = stream_chunks(
        writer,
        [
            (1, TextDelta("x")),
            (0, ThinkingDelta("ignored")),
            (0, Done("length", usage=Usage(2, 1))),
            (1, Done("stop", usage=Usage(2, 1))),
        ],
    )
    texts = [(c["choices"][0]["index"], c["choices"][0]["text"]) for c in chunks[:3]]
    assert texts == [(0, "ab"), (1, "cd"), (1, "x")]
    assert [c["choices"][0]["finish_reason"] for c in chunks[3:5]] == ["length", "stop"]
    assert chunks[5]["usage"]["total_tokens"] == 6 and chunks[6] == "[DONE]"


def test_n_choices_are_requests_of_their_own_with_their_own_seeds():
    body = parse(protocol.ChatCompletionBody, {"messages": HI, "n": 3, "seed": 10})
    requests = convert.chat_requests(body)
    assert [r.options.seed for r in requests] == [10, 11, 12]
    assert (
        len({id(r.options) for r in requests}) == 3 and requests[0].messages == requests[2].messages
    )
    unseeded = convert.chat_requests(parse(protocol.ChatCompletionBody, {"messages": HI, "n": 4}))
    assert all(r.options.seed is not None for r in unseeded)
    assert (
        convert.chat_requests(parse(protocol.ChatCompletionBody, {"messages": HI}))[0].options.seed
        is None
    )
    prompts = parse(protocol.CompletionBody, {"prompt": ["a", "b"], "n": 2, "seed": 1})
    assert [(r.prompt, r.options.seed) for r in convert.completion_requests(prompts)] == [
        ("a", 1),
        ("a", 2),
        ("b", 1),
        ("b", 2),
    ]


def test_n_choices_stream_by_index_and_count_the_prompt_once():
    writer = ChatWriter("gemma", "chatcmpl-1", 7, include_usage=True, choices=2)
    chunks = stream_chunks(
        writer,
        [
            (1, TextDelta("b")),
            (0, TextDelta("a")),
            (1, Done("stop", usage=Usage(5, 1, 2))),
            (0, Done("length", usage=Usage(5, 3, 2))),
        ],
    )
    choices = [c["choices"][0] for c in chunks[:6]]
    assert [(c["index"], c["delta"]) for c in choices[:4]] == [
        (0, {"role": "assistant", "content": ""}),
        (1, {"role": "assistant", "content": ""}),
        (1, {"content": "b"}),
        (0, {"content": "a"}),
    ]
    assert [(c["index"], c["finish_reason"]) for c in choices[4:]] == [(1, "stop"), (0, "length")]
    assert chunks[6]["usage"] == {
        "prompt_tokens": 5,
        "completion_tokens": 4,
        "total_tokens": 9,
        "prompt_tokens_details": {"cached_tokens": 2},
    }
    results = [Collected(), Collected()]
    results[0].add(TextDelta("a"))
    results[0].add(Done("length", usage=Usage(5, 3)))
    results[1].add(TextDelta("b"))
    results[1].add(Done("stop", usage=Usage(5, 1)))
    whole = ChatWriter("gemma", "x", 0, choices=2).whole(results).wire()
    assert [(c["index"], c["message"]["content"]) for c in whole["choices"]] == [(0, "a"), (1, "b")]
    assert whole["usage"]["prompt_tokens"] == 5 and whole["usage"]["completion_tokens"] == 4


def test_llama_server_schema_fields_become_the_format():
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    assert chat(json_schema=schema).format == schema
    assert chat(response_format={"type": "json_object", "schema": schema}).format == schema
    assert chat(response_format={"type": "json_object"}).format == "json"
    assert chat().format is None
    body = parse(protocol.CompletionBody, {"prompt": "x", "json_schema": schema})
    assert convert.completion_requests(body)[0].format == schema


def test_logit_bias_passes_through_in_both_shapes():
    assert chat(logit_bias={"15": -100, "Hi": 2}).options.logit_bias == {"15": -100, "Hi": 2}
    assert chat(logit_bias=[[15, False], ["Hi", 1.5]]).options.logit_bias == [
        [15, False],
        ["Hi", 1.5],
    ]
