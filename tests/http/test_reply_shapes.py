"""Every dialect's writer output checked against its declared reply shapes, in-process: whole
replies against their pydantic models, streamed chunks against their TypedDicts (validated by
pydantic here; at run time they are plain dicts). A round trip must give the same JSON back,
so a key the shape does not declare (dropped by validation) or a changed type fails."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter

from mullama.engine.api import (
    Done,
    LoadedModel,
    ModelDetails,
    ModelInfo,
    PullProgress,
    TextDelta,
    ThinkingDelta,
    Timings,
    ToolCallDelta,
    Usage,
)
from mullama.http.anthropic import protocol as ant
from mullama.http.anthropic.wire import MessagesWriter
from mullama.http.common.protocol import Reply
from mullama.http.common.wire import Writer, stream_chunks
from mullama.http.events import Collected
from mullama.http.ollama import models
from mullama.http.ollama import protocol as oll
from mullama.http.ollama.wire import ChatWriter as OllamaChat
from mullama.http.ollama.wire import GenerateWriter, pull_status
from mullama.http.openai import protocol as oai
from mullama.http.openai.routes import model_card
from mullama.http.openai.wire import ChatWriter, CompletionWriter

LOGPROBS = [{"token": "Hi", "logprob": -0.5, "top_logprobs": [{"token": "Hi", "logprob": -0.5}]}]
DONE = Done("stop", Usage(3, 4, cached_tokens=1), Timings(1, 2, 3, 10), model="m", context=[1])
TEXT = [(0, TextDelta("Hi", logprobs=LOGPROBS)), (0, TextDelta(" there")), (0, DONE)]
EVERYTHING = [
    (0, ThinkingDelta("so")),
    (0, TextDelta("Hi", logprobs=LOGPROBS)),
    (0, ToolCallDelta(0, id="c1", name="f", arguments='{"a"')),
    (0, ToolCallDelta(0, arguments=": 1}")),
    (0, ToolCallDelta(1, id="c2", name="g", arguments="{}")),
    (0, Done("tool_calls", usage=Usage(3, 4))),
]
TWO_PROMPTS = [
    (0, TextDelta("a", logprobs=LOGPROBS)),
    (1, TextDelta("b", logprobs=LOGPROBS)),
    (0, Done("stop", usage=Usage(1, 1))),
    (1, Done("length", usage=Usage(2, 2))),
]


def collected(events: list[tuple[int, Any]], n: int = 1) -> list[Collected]:
    results = [Collected() for _ in range(n)]
    for index, event in events:
        results[index].add(event)
    return results


def same_back(shape: Any, value: Any) -> None:
    """``value`` is a valid ``shape`` and validating it changes nothing."""
    if isinstance(value, Reply):
        value = value.wire()
    if isinstance(shape, type) and issubclass(shape, Reply):
        assert shape.model_validate(value).wire() == value
    else:
        assert TypeAdapter(shape).validate_python(value) == value


def check_stream(writer: Writer[Any], events: list, shape: Any) -> list:
    chunks = stream_chunks(writer, events)
    assert chunks
    for chunk in chunks:
        if chunk != oai.DONE_MARKER:
            same_back(shape, chunk)
    return chunks


# ---------------------------------------------------------------- OpenAI


@pytest.mark.parametrize("events", [TEXT, EVERYTHING], ids=["text", "everything"])
@pytest.mark.parametrize("include_usage", [False, True])
def test_openai_chat(events, include_usage):
    def writer() -> ChatWriter:
        return ChatWriter("gemma", "chatcmpl-1", 7, include_usage, logprobs=True)

    chunks = check_stream(writer(), events, oai.ChatCompletionChunk)
    assert chunks[-1] == "[DONE]" and ("usage" in chunks[0]) is include_usage
    whole = writer().whole(collected(events))
    same_back(oai.ChatCompletion, whole)
    assert whole.choices[0].logprobs is not None


@pytest.mark.parametrize("include_usage", [False, True])
@pytest.mark.parametrize("echo", [False, True])
def test_openai_text_completion(include_usage, echo):
    def writer() -> CompletionWriter:
        return CompletionWriter(
            "gemma", "cmpl-1", 7, include_usage, prompts=["p", "q"], echo=echo, logprobs=True
        )

    check_stream(writer(), TWO_PROMPTS, oai.TextCompletionChunk)
    whole = writer().whole(collected(TWO_PROMPTS, 2))
    same_back(oai.TextCompletion, whole)
    assert [c["index"] for c in whole.choices] == [0, 1]


def test_a_streamed_text_completion_counts_its_cached_prompt_tokens():
    cached = [(0, TextDelta("a")), (0, Done("stop", usage=Usage(9, 1, cached_tokens=7)))]
    chunks = stream_chunks(
        CompletionWriter("gemma", "cmpl-1", 7, True, prompts=["p"], echo=False, logprobs=False),
        cached,
    )
    assert chunks[-2]["usage"]["prompt_tokens_details"] == {"cached_tokens": 7}


def test_openai_whole_leaves_out_what_it_has_not():
    body = ChatWriter("gemma", "chatcmpl-1", 7).whole(collected(TEXT)).wire()
    message = body["choices"][0]["message"]
    assert set(message) == {"role", "content"} and body["choices"][0]["logprobs"] is None


def test_openai_embeddings_and_models():
    same_back(
        oai.EmbeddingList,
        {
            "object": "list",
            "data": [
                {"object": "embedding", "index": 0, "embedding": [0.5, -1.0]},
                {"object": "embedding", "index": 1, "embedding": "AAAAPw=="},
            ],
            "model": "m",
            "usage": {"prompt_tokens": 2, "total_tokens": 2},
        },
    )
    card = model_card(ModelInfo("gemma", 1, capabilities={"tools": True}))
    same_back(oai.ModelCard, card)
    same_back(oai.ModelList, oai.ModelList(object="list", data=[card]))
    with pytest.raises(ValueError):  # the models forbid undeclared keys
        oai.ModelCard.model_validate({**card.wire(), "extra": 1})


# ---------------------------------------------------------------- Anthropic


@pytest.mark.parametrize("events", [TEXT, EVERYTHING, [(0, DONE)]], ids=["text", "all", "none"])
def test_anthropic_message_and_its_events(events):
    chunks = check_stream(MessagesWriter("msg_1", "gemma", [], 5), events, ant.StreamEvent)
    same_back(ant.MessageReply, chunks[0]["message"])  # message_start carries a message
    kinds = [c["type"] for c in chunks]
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]
    whole = MessagesWriter("msg_1", "gemma", []).whole(collected(events))
    same_back(ant.MessageReply, whole)
    same_back(ant.TokenCount, ant.TokenCount(input_tokens=3))


# ---------------------------------------------------------------- Ollama


@pytest.mark.parametrize("events", [TEXT, EVERYTHING], ids=["text", "everything"])
@pytest.mark.parametrize("logprobs", [False, True])
def test_ollama_chat_and_generate(events, logprobs):
    check_stream(OllamaChat("gemma", logprobs), events, oll.ChatChunk)
    same_back(oll.ChatResponse, OllamaChat("gemma", logprobs).whole(collected(events)))
    same_back(oll.ChatResponse, OllamaChat("gemma").loaded("load"))
    check_stream(GenerateWriter("gemma", logprobs), events, oll.GenerateChunk)
    whole = GenerateWriter("gemma", logprobs).whole(collected(events))
    same_back(oll.GenerateResponse, whole)
    same_back(oll.GenerateResponse, GenerateWriter("gemma", raw=True).loaded("unload"))


INFO = ModelInfo(
    "hf:owner/repo:Q4_K_M",
    10,
    "sha256:abc",
    "2024-05-01T10:00:00+00:00",
    "created",
    "gemma3",
    ["gemma3"],
    "270M",
    "Q4_K_M",
    source="gemma:latest",
    capabilities={"completion": True},
)


def test_ollama_model_replies():
    same_back(oll.TagsResponse, oll.TagsResponse(models=[models.tag(INFO)]))
    loaded = LoadedModel("gemma", 5, 2048, gpu_layers=1)
    running = [models.running(loaded, INFO), models.running(loaded, None)]
    same_back(oll.PsResponse, oll.PsResponse(models=running))
    details = ModelDetails(INFO, "FROM x\n", {"stop": ["a"]}, metadata={"a.b": [1, 2]})
    same_back(oll.ShowResponse, models.show(details))
    embed = oll.EmbedResponse(model="m", embeddings=[[0.5]], total_duration=1)
    same_back(oll.EmbedResponse, embed)
    assert set(embed.wire()) == {"model", "embeddings", "total_duration"}
    same_back(oll.EmbeddingResponse, oll.EmbeddingResponse(embedding=[0.5]))
    for progress in (PullProgress("resolving"), PullProgress("downloading", digest="sha256:a")):
        same_back(oll.Status, pull_status(progress))
