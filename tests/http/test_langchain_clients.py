"""LangChain's chat models and embeddings against the real daemon, through all three dialects:
langchain-openai (ChatOpenAI, OpenAIEmbeddings), langchain-ollama (ChatOllama, OllamaLLM) and
langchain-anthropic (ChatAnthropic).

This judges the plumbing, not the answers (a 270M base model at temperature 0): the shapes are
forced with ``tool_choice`` and schemas, and what comes back must be what LangChain parses."""

from __future__ import annotations

import json
from typing import Literal

import httpx
import openai
import pytest
from pydantic import BaseModel

from tests.engine.test_reasoning_tools_e2e import TOOLS_TEMPLATE, WEATHER, modelfile

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


class Answer(BaseModel):
    """A city and whether it is sunny there."""

    city: Literal["Paris", "Rome"]
    sunny: bool


@pytest.fixture(scope="module")
def served(daemon, test_model_path):
    """The session daemon with ``caller``, a model that calls tools (qwen-style tool calls)."""
    text = modelfile(
        test_model_path, "TOOLFORMAT style qwen\nCAPABILITY tools true\n", TOOLS_TEMPLATE
    )
    reply = httpx.post(
        f"{daemon.url}/api/create",
        json={"model": "caller", "modelfile": text, "stream": False},
        timeout=120,
    )
    assert reply.status_code == 200, reply.text
    return daemon


def text_of(chunks) -> str:
    return "".join(c.content if isinstance(c.content, str) else c.text for c in chunks)


# ---------------------------------------------------------------- langchain-openai


def chat_openai(served, model="gemma", **kwargs):
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(
        model=model,
        base_url=f"{served.url}/v1",
        api_key="unused",
        temperature=0,
        max_retries=0,
        timeout=300,
        **{"max_tokens": 16, **kwargs},
    )


def test_langchain_openai_chat_and_stream(served):
    llm = chat_openai(served)
    reply = llm.invoke("Say hi")
    assert isinstance(reply.content, str) and reply.content
    assert reply.response_metadata["finish_reason"] in ("stop", "length")
    assert reply.usage_metadata["input_tokens"] > 0 and reply.usage_metadata["output_tokens"] > 0
    chunks = list(llm.stream("Say hi"))
    assert len(chunks) > 1 and text_of(chunks) == reply.content


def test_langchain_openai_forced_tool_call(served):
    llm = chat_openai(served, "caller", max_tokens=60).bind_tools(
        [WEATHER], tool_choice="get_weather"
    )
    reply = llm.invoke("Weather in Paris?")
    (call,) = reply.tool_calls
    assert call["name"] == "get_weather" and isinstance(call["args"]["city"], str)
    assert call["id"]


@pytest.mark.parametrize("method", ["json_schema", "function_calling"])
def test_langchain_openai_structured_output(served, method):
    model = "caller" if method == "function_calling" else "gemma"
    llm = chat_openai(served, model, max_tokens=60).with_structured_output(Answer, method=method)
    answer = llm.invoke("Is it sunny in Paris?")
    assert isinstance(answer, Answer)


def test_langchain_openai_embeddings_as_token_ids_and_as_text(served, monkeypatch):
    """OpenAIEmbeddings tokenizes with tiktoken and sends token-id arrays by default; the
    test stands in a byte-level encoding for tiktoken's (which it would download)."""
    import tiktoken
    from langchain_openai import OpenAIEmbeddings

    bytes_only = tiktoken.Encoding(
        "bytes",
        pat_str=r"[\s\S]+",
        mergeable_ranks={bytes([b]): b for b in range(256)},
        special_tokens={},
    )

    def unknown_model(name):
        raise KeyError(name)

    monkeypatch.setattr(tiktoken, "encoding_for_model", unknown_model)
    monkeypatch.setattr(tiktoken, "get_encoding", lambda name: bytes_only)
    texts = ["The cat sat on the mat.", "Quarterly revenue grew."]
    kwargs = dict(model="gemma", base_url=f"{served.url}/v1", api_key="unused", max_retries=0)
    as_ids = OpenAIEmbeddings(**kwargs).embed_documents(texts)
    assert len(as_ids) == 2 and all(len(v) == 640 for v in as_ids)
    sdk = openai.OpenAI(base_url=f"{served.url}/v1", api_key="unused", max_retries=0)
    same = sdk.embeddings.create(model="gemma", input=[list(t.encode()) for t in texts])
    for mine, theirs in zip(as_ids, same.data):
        assert mine == pytest.approx(theirs.embedding, abs=1e-4)
    as_text = OpenAIEmbeddings(check_embedding_ctx_length=False, **kwargs)
    query = as_text.embed_query(texts[0])
    assert len(query) == 640 and query != pytest.approx(as_ids[0], abs=1e-4)


# ---------------------------------------------------------------- langchain-ollama


def test_langchain_ollama_chat_stream_and_structured_output(served):
    from langchain_ollama import ChatOllama

    llm = ChatOllama(model="gemma", base_url=served.url, temperature=0, num_predict=16)
    reply = llm.invoke("Say hi")
    assert isinstance(reply.content, str) and reply.content
    assert reply.usage_metadata["input_tokens"] > 0
    chunks = list(llm.stream("Say hi"))
    assert len(chunks) > 1 and text_of(chunks) == reply.content
    structured = ChatOllama(model="gemma", base_url=served.url, temperature=0, num_predict=60)
    answer = structured.with_structured_output(Answer).invoke("Is it sunny in Paris?")
    assert isinstance(answer, Answer)


def test_langchain_ollama_llm_format_json_constrains_the_completion(served):
    from langchain_ollama import OllamaLLM

    free = OllamaLLM(model="gemma", base_url=served.url, temperature=0, num_predict=24)
    constrained = OllamaLLM(
        model="gemma", base_url=served.url, temperature=0, num_predict=200, format="json"
    )
    prompt = "Write a sentence about the sea."
    assert not free.invoke(prompt).lstrip().startswith(("{", "["))
    value = json.loads(constrained.invoke(prompt))
    assert isinstance(value, (dict, list))


# ---------------------------------------------------------------- langchain-anthropic


def chat_anthropic(served, model="gemma", **kwargs):
    from langchain_anthropic import ChatAnthropic

    return ChatAnthropic(
        model=model,
        base_url=served.url,
        api_key="unused",
        temperature=0,
        max_retries=0,
        timeout=300,
        **{"max_tokens": 16, **kwargs},
    )


def test_langchain_anthropic_chat_and_stream(served):
    llm = chat_anthropic(served)
    reply = llm.invoke("Say hi")
    assert isinstance(reply.content, str) and reply.content
    assert reply.response_metadata["stop_reason"] in ("end_turn", "max_tokens")
    assert reply.usage_metadata["input_tokens"] > 0
    chunks = list(llm.stream("Say hi"))
    assert len(chunks) > 1 and text_of(chunks) == reply.content


def test_langchain_anthropic_structured_output_through_a_forced_tool(served):
    llm = chat_anthropic(served, "caller", max_tokens=60)
    answer = llm.with_structured_output(Answer).invoke("Is it sunny in Paris?")
    assert isinstance(answer, Answer)
    reply = llm.bind_tools([WEATHER], tool_choice="get_weather").invoke("Weather in Paris?")
    (call,) = reply.tool_calls
    assert call["name"] == "get_weather" and isinstance(call["args"]["city"], str)


def test_langchain_anthropic_structured_output_as_a_json_schema(served):
    # method="json_schema" sends Anthropic's output_config.format: the grammar constrains it
    llm = chat_anthropic(served, max_tokens=60)
    answer = llm.with_structured_output(Answer, method="json_schema").invoke("Sunny in Paris?")
    assert isinstance(answer, Answer)
