"""The operations' codec, in-process: every declared operation's types through msgspec,
the generated RemoteEngine methods and daemon handlers, malformed requests."""

from __future__ import annotations

import abc
import dataclasses
import inspect
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from mullama.engine.api import (
    OPERATIONS,
    AliasInfo,
    ChatRequest,
    CompletionRequest,
    Done,
    EmbedRequest,
    EmbedResult,
    Engine,
    EngineStatus,
    HubModel,
    InvalidRequest,
    Liveness,
    LoadedModel,
    Message,
    ModelDetails,
    ModelInfo,
    PruneResult,
    PullProgress,
    QuantFile,
    RerankRequest,
    RerankResult,
    RerankScore,
    SamplingOptions,
    Started,
    TextDelta,
    ThinkingDelta,
    Timings,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from mullama.ipc import RemoteEngine
from mullama.ipc.codec import decode_args, decode_result, decode_value, encode_args, encode_result
from mullama.ipc.handlers import Handlers
from mullama.ipc.protocol import REQUEST_KINDS, TRANSPORT_KINDS, decode, encode
from mullama.ipc.streams import Streams

# the guide's request kinds, then what the CLI and TUI need: the wire names stay
WIRE_KINDS = {
    "Ping", "Status", "ListModels", "LoadModel", "UnloadModel", "SetDefaultModel",
    "ChatCompletion", "Completion", "Embeddings", "Tokenize", "Cancel", "Shutdown", "Pull",
    "Create", "Copy", "Delete", "Show", "Ps", "CountTokens", "Metrics", "StreamNext",
}  # fmt: skip

INFO = ModelInfo("gemma:latest", 7, "sha256:ab", "2026-01-01T00:00:00Z", families=["gemma3"])
LOADED = LoadedModel("gemma:latest", 100, 2048, busy_slots=1)
CHAT = ChatRequest(
    "gemma",
    [
        Message("system", "be brief"),
        Message("assistant", "", tool_calls=[ToolCall("c1", "add", '{"a": 1}')]),
        Message("tool", "2", tool_call_id="c1", images=["aGk="]),
    ],
    SamplingOptions(
        temperature=0.0,
        top_k=4,
        stop=["</s>"],
        logprobs=True,
        logit_bias={"15043": 2.0, "Hello": False},
    ),
    tools=[{"type": "function", "function": {"name": "add"}}],
    tool_choice={"name": "add"},
    format={"type": "object"},
    think="low",
    keep_alive="5m",
)

# one call of every operation: (arguments, the result a LocalEngine would give)
CASES: dict[str, tuple[dict[str, Any], Any]] = {
    "ListModels": ({}, [INFO, dataclasses.replace(INFO, name="other", kind="created")]),
    "Show": ({"name": "gemma"}, ModelDetails(INFO, "FROM x\n", {"temperature": 0.0})),
    "Pull": ({"ref": "hf:o/r"}, PullProgress("downloading", "f.gguf", "sha256:1", 5, 10, 2.5)),
    "Create": (
        {"name": "n", "modelfile": "FROM x", "base_dir": None, "allowed_dirs": ["/srv/models"]},
        INFO,
    ),
    "Copy": ({"source": "a", "destination": "b", "overwrite": True}, INFO),
    "Delete": ({"name": "gemma"}, None),
    "BlobPath": ({"digest": "sha256:ab"}, "/blobs/sha256-ab"),
    "PruneStore": ({}, PruneResult(2, 1024)),
    "ListAliases": (
        {},
        [AliasInfo("tiny:1m", "acme/Tiny-GGUF", "tiny", tags=["chat"], size=5, origin="user")],
    ),
    "SearchHub": (
        {"query": "tiny", "limit": 5},
        [HubModel("acme/Tiny-GGUF", 500, 7, "2025-01-01T00:00:00+00:00", "text-generation")],
    ),
    "ListQuants": (
        {"repo": "acme/Tiny-GGUF"},
        [QuantFile("Q4_K_M", "hf:acme/Tiny-GGUF:Q4_K_M", ["t-Q4_K_M.gguf"], 9, preferred=True)],
    ),
    "LoadModel": ({"name": "gemma", "keep_alive": -1}, LOADED),
    "UnloadModel": ({"name": "gemma"}, None),
    "Ps": ({}, [LOADED]),
    "ChatCompletion": ({"request": CHAT}, ToolCallDelta(0, "c1", "add", '{"a"')),
    "Completion": (
        {"request": CompletionRequest("gemma", "hi", raw=False, context=[1, 2])},
        Done("stop", Usage(3, 4, 1), Timings(1, 2, 3, 6), "</s>", "gemma:latest", [1, 2]),
    ),
    "Embeddings": (
        {"request": EmbedRequest("gemma", ["a", [2, 651]], dimensions=2)},
        EmbedResult("gemma:latest", [[0.5, 1.0], [1.0, 0.0]], 2, Timings(total_ns=9)),
    ),
    "Rerank": (
        {"request": RerankRequest("bge", "where?", ["paris", ""], top_n=1, truncate=False)},
        RerankResult("bge:latest", [RerankScore(0, -1.25)], 9, Timings(total_ns=4)),
    ),
    "Tokenize": (
        {"model": "gemma", "text": "hi", "add_special": False, "parse_special": True},
        [2, 1000],
    ),
    "Detokenize": ({"model": "gemma", "tokens": [2, 1000]}, "hi"),
    "TokenPieces": ({"model": "gemma", "tokens": [2, 1000]}, [b"", b"\xe2\x82"]),
    "CountTokens": ({"request": CHAT}, 42),
    "Ping": ({}, Liveness("0.1.0", 99, "abc", 1.5, protocol=1)),
    "Status": (
        {},
        EngineStatus("0.1.0", 3.5, "local", [LOADED], endpoints={"http": "x"}, default_model="g"),
    ),
    "DefaultModel": ({}, "gemma:latest"),
    "SetDefaultModel": ({"name": "gemma"}, None),
    "Metrics": ({}, {"exposition": "# HELP x\n"}),
}


def wire(data: Any) -> Any:
    """``data`` as it arrives on the other side of the socket."""
    return decode(encode("Result", data))["data"]


def test_every_operation_is_an_abstract_engine_method_with_a_wire_kind():
    assert WIRE_KINDS <= REQUEST_KINDS
    assert set(CASES) == set(OPERATIONS)
    assert not set(OPERATIONS) & set(TRANSPORT_KINDS)
    for op in OPERATIONS.values():
        assert op.method in Engine.__abstractmethods__
        assert op.stream == (op.kind in ("Pull", "ChatCompletion", "Completion"))
    assert {"add_blob", "close", "mode"} <= Engine.__abstractmethods__
    assert not RemoteEngine.__abstractmethods__


@pytest.mark.parametrize("kind", sorted(CASES))
def test_arguments_and_results_round_trip_through_msgspec(kind):
    op = OPERATIONS[kind]
    args, result = CASES[kind]
    assert [p.name for p in op.params] == list(args)
    assert decode_args(kind, op.params, wire({"x": 1, **encode_args(args)})) == args
    if op.stream:
        assert decode_value(wire(encode_result(op, result)), op.result) == result
    else:
        assert decode_result(op, wire(encode_result(op, result))) == result


@pytest.mark.parametrize(
    "event",
    [
        Started(17),
        TextDelta("hi", [{"token": "hi", "logprob": -0.5}]),
        ThinkingDelta("hm"),
        Done("length"),
    ],
)
def test_stream_events_decode_to_their_own_class(event):
    op = OPERATIONS["ChatCompletion"]
    got = decode_value(wire(encode_result(op, event)), op.result)
    assert type(got) is type(event) and got == event


@pytest.mark.parametrize(
    "kind, data, words, param",
    [
        ("Show", {}, "missing required field `name`", "name"),
        ("Show", {"name": 5}, "Expected `str`, got `int` - at `$.name`", "name"),
        ("Tokenize", {"model": "m", "text": "t", "add_special": "yes"}, "`bool`", "add_special"),
        ("ChatCompletion", {"request": "hi"}, "Expected `object`, got `str`", "request"),
        (
            "ChatCompletion",
            {"request": {"model": "gemma", "messages": [3]}},
            "at `$.request.messages[0]`",
            "request.messages[0]",
        ),
        (
            "ChatCompletion",
            {"request": {"model": "gemma", "messages": [{"content": "x"}]}},
            "missing required field `role`",
            "request.messages[0].role",
        ),
        (
            "Embeddings",
            {"request": {"model": "m", "inputs": ["a"], "dimensions": 1.5}},
            "Expected `int | null`, got `float`",
            "request.dimensions",
        ),
    ],
)
def test_malformed_arguments_name_what_is_wrong(kind, data, words, param):
    op = OPERATIONS[kind]
    with pytest.raises(InvalidRequest) as info:
        decode_args(kind, op.params, data)
    assert info.value.message.startswith(f"malformed {kind} request: ")
    assert words in info.value.message and info.value.param == param


def test_an_event_of_an_unknown_type_is_refused():
    with pytest.raises(InvalidRequest, match="'Nope' is not one of Started, TextDelta"):
        decode_value({"__type__": "Nope"}, OPERATIONS["Completion"].result)


def _recording(op):
    signature = inspect.signature(getattr(Engine, op.method))

    def record(self, *args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        self.calls.append((op.kind, {p.name: bound.arguments[p.name] for p in op.params}))
        result = CASES[op.kind][1]

        async def events() -> AsyncIterator[Any]:
            yield result

        async def answer() -> Any:
            return result

        return events() if op.stream else answer()

    return record


class Recorder(Engine):
    """Answers every operation from CASES and records the arguments it was called with."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def add_blob(self, digest: str, chunks: Any) -> str:
        return digest

    @property
    def mode(self) -> str:
        return "local"

    async def close(self) -> None:
        pass


for _op in OPERATIONS.values():
    setattr(Recorder, _op.method, _recording(_op))
abc.update_abstractmethods(Recorder)


class Loopback(RemoteEngine):
    """A RemoteEngine whose requests go through encode/decode straight to Handlers."""

    def __init__(self, engine: Engine) -> None:
        super().__init__("inproc://loopback")
        self.handlers = Handlers(engine, Streams())

    async def _exchange(self, kind, data, *, liveness=True, timeout=None):
        request = decode(encode(kind, data, 1))
        try:
            result = await self.handlers.table[request["type"]](request["data"], None)
        except InvalidRequest as exc:
            from mullama.engine.api import error_to_wire

            return decode(encode("Error", error_to_wire(exc), 1))
        return decode(encode("Result", result, 1))


@pytest.mark.parametrize("kind", sorted(CASES))
async def test_generated_client_and_handlers_carry_every_operation(kind):
    op = OPERATIONS[kind]
    args, result = CASES[kind]
    engine = Recorder()
    remote = Loopback(engine)
    method = getattr(remote, op.method)
    if op.stream:
        got = [e async for e in method(**args)]
        assert got == [result]
    elif kind == "Ping":
        assert await method() == result
    else:
        assert await method(**args) == result
    assert engine.calls == [(kind, args)]
    await remote.handlers.streams.close()


async def test_positional_and_default_arguments_are_bound_like_the_engine_method():
    engine = Recorder()
    remote = Loopback(engine)
    await remote.tokenize("gemma", "hi")
    await remote.create_model("n", "FROM x")
    assert engine.calls == [
        ("Tokenize", {"model": "gemma", "text": "hi", "add_special": True, "parse_special": True}),
        ("Create", {"name": "n", "modelfile": "FROM x", "base_dir": None, "allowed_dirs": None}),
    ]


async def test_a_malformed_request_gets_an_invalid_request_error():
    remote = Loopback(Recorder())
    with pytest.raises(InvalidRequest, match="missing required field `name`") as info:
        await remote._call("Show", {})
    assert info.value.param == "name"
    with pytest.raises(InvalidRequest, match="Expected `int`, got `str`"):
        await remote._call("StreamNext", {"stream": "s", "after": "0"})


def test_envelopes_are_json_with_the_kind_data_id_and_version():
    raw = encode("ChatCompletion", encode_args({"request": CHAT}), "x")
    envelope = json.loads(raw)
    assert envelope["type"] == "ChatCompletion" and envelope["id"] == "x"
    assert envelope["data"]["request"]["messages"][1]["tool_calls"][0]["name"] == "add"
