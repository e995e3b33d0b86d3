"""Dedicated embedding and reranking models over HTTP, on a real daemon: the tiny fixtures
(tests/gguf_fixtures.py) created as models by an HTTP client (their folder is an
``allowed_model_dirs`` entry), the rerank routes in llama-server's, Jina's, Cohere's and TEI's
shapes, the embedding routes of every dialect on an embedding model, the errors in each
dialect's shape, and real clients: LangChain's OpenAI and Ollama embeddings, LiteLLM's
Cohere-style rerank."""

from __future__ import annotations

import base64
import os
import struct

import httpx
import numpy as np
import pytest

from tests.gguf_fixtures import build_bert
from tests.http.conftest import http_daemon_at

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # LiteLLM stays offline

DOCS = ["the cat sat on the mat", "paris is the capital of france", "hello world", "a dog"]
QUERY = "where is the cat"


@pytest.fixture(scope="module")
def served(tmp_path_factory, test_model_path):
    fixtures = tmp_path_factory.mktemp("encoders")
    build_bert(fixtures / "embed.gguf", pooling="mean")
    build_bert(fixtures / "rerank.gguf", reranker=True)
    allowed = f"{test_model_path.parent},{fixtures}"
    root = tmp_path_factory.mktemp("rerank-http")
    with http_daemon_at(root, test_model_path, MULLAMA_ALLOWED_MODEL_DIRS=allowed) as daemon:
        for name in ("embed", "rerank"):
            reply = httpx.post(
                f"{daemon.url}/api/create",
                json={"model": name, "modelfile": f"FROM {fixtures / name}.gguf", "stream": False},
                timeout=120,
            )
            assert reply.status_code == 200, reply.text
        yield daemon


def post(served, path: str, body: dict) -> httpx.Response:
    return httpx.post(f"{served.url}{path}", json=body, timeout=60)


# ---------------------------------------------------------------- rerank


@pytest.mark.parametrize("path", ["/v1/rerank", "/rerank", "/v1/reranking", "/v2/rerank"])
def test_each_route_ranks_the_documents_best_first(served, path):
    reply = post(served, path, {"model": "rerank", "query": QUERY, "documents": DOCS})
    assert reply.status_code == 200, reply.text
    data = reply.json()
    assert data["object"] == "list" and data["model"] == "rerank"
    results = data["results"]
    assert sorted(r["index"] for r in results) == [0, 1, 2, 3]
    scores = [r["relevance_score"] for r in results]
    assert scores == sorted(scores, reverse=True)
    assert all(set(r) == {"index", "relevance_score"} for r in results)
    assert data["usage"]["prompt_tokens"] == data["usage"]["total_tokens"] > len(DOCS) * 4


def test_objects_top_n_and_return_documents(served):
    plain = post(served, "/v1/rerank", {"model": "rerank", "query": QUERY, "documents": DOCS})
    objects = [{"text": d} for d in DOCS]
    body = {"model": "rerank", "query": QUERY, "documents": objects, "top_n": 2}
    best = post(served, "/v1/rerank", {**body, "return_documents": True}).json()
    expected = plain.json()["results"][:2]
    assert [r["index"] for r in best["results"]] == [r["index"] for r in expected]
    assert [r["document"] for r in best["results"]] == [
        {"text": DOCS[r["index"]]} for r in expected
    ]


def test_teis_texts_get_teis_bare_array(served):
    reply = post(
        served, "/rerank", {"query": QUERY, "texts": DOCS, "return_text": True, "model": "rerank"}
    )
    assert reply.status_code == 200, reply.text
    items = reply.json()
    assert isinstance(items, list) and len(items) == 4
    assert all(item["text"] == DOCS[item["index"]] for item in items)
    scores = [item["score"] for item in items]
    assert scores == sorted(scores, reverse=True)


@pytest.mark.parametrize(
    ("body", "status", "param", "words"),
    [
        ({"model": "rerank", "query": QUERY, "documents": []}, 400, "documents", "not be empty"),
        ({"model": "rerank", "query": QUERY}, 400, "documents", "documents is required"),
        ({"model": "rerank", "query": "", "documents": DOCS}, 400, "query", "not be empty"),
        ({"model": "rerank", "query": QUERY, "documents": [1]}, 400, "documents", "documents[0]"),
        ({"model": "rerank", "query": QUERY, "documents": DOCS, "top_n": 0}, 400, "top_n", "1"),
        (
            {"model": "gemma", "query": QUERY, "documents": DOCS},
            400,
            "model",
            "gemma:latest is a chat model",
        ),
        (
            {"model": "embed", "query": QUERY, "documents": DOCS},
            400,
            "model",
            "embed:latest is an embedding model",
        ),
        ({"model": "nope", "query": QUERY, "documents": DOCS}, 404, "model", "nope"),
    ],
)
def test_bad_rerank_requests_get_openai_shaped_errors(served, body, status, param, words):
    reply = post(served, "/v1/rerank", body)
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert words in error["message"]
    assert error["param"] == param or status == 404


@pytest.mark.parametrize("provider", ["cohere", "jina_ai", "hosted_vllm"])
def test_a_rerank_through_litellms_providers(served, provider):
    """Cohere's client posts to /v2/rerank, Jina's to /v1/rerank, vLLM's to /rerank."""
    import litellm

    litellm.telemetry = False
    reply = litellm.rerank(
        model=f"{provider}/rerank",
        query=QUERY,
        documents=DOCS,
        top_n=3,
        return_documents=True,
        api_base=served.url,
        api_key="unused",
    )
    assert len(reply.results) == 3
    scores = [r["relevance_score"] for r in reply.results]
    assert scores == sorted(scores, reverse=True)
    assert all(r["document"]["text"] == DOCS[r["index"]] for r in reply.results)


# ---------------------------------------------------------------- embeddings


def test_the_embedding_routes_of_each_dialect_use_the_embedding_model(served):
    openai_reply = post(served, "/v1/embeddings", {"model": "embed", "input": ["the cat", "a dog"]})
    assert openai_reply.status_code == 200, openai_reply.text
    data = openai_reply.json()
    vectors = [d["embedding"] for d in data["data"]]
    assert [len(v) for v in vectors] == [32, 32]
    assert all(np.linalg.norm(v) == pytest.approx(1.0, abs=1e-5) for v in vectors)
    assert data["usage"]["prompt_tokens"] == 8  # [CLS] w w [SEP], twice
    packed = post(
        served,
        "/v1/embeddings",
        {"model": "embed", "input": "the cat", "encoding_format": "base64"},
    ).json()["data"][0]["embedding"]
    assert np.allclose(struct.unpack("<32f", base64.b64decode(packed)), vectors[0], atol=1e-6)
    ollama = post(served, "/api/embed", {"model": "embed", "input": ["the cat"], "dimensions": 8})
    assert ollama.status_code == 200, ollama.text
    assert len(ollama.json()["embeddings"][0]) == 8 and ollama.json()["prompt_eval_count"] == 4
    legacy = post(served, "/api/embeddings", {"model": "embed", "prompt": "the cat"}).json()
    assert np.allclose(legacy["embedding"], vectors[0], atol=1e-6)


def test_a_reranker_cannot_embed(served):
    reply = post(served, "/v1/embeddings", {"model": "rerank", "input": "the cat"})
    assert reply.status_code == 400
    assert "rerank:latest is a reranking model: it cannot embed" in reply.json()["error"]["message"]
    ollama = post(served, "/api/embed", {"model": "rerank", "input": "the cat"})
    assert ollama.status_code == 400 and "reranking model" in ollama.json()["error"]


def test_langchain_embeds_with_the_embedding_model(served):
    from langchain_ollama import OllamaEmbeddings
    from langchain_openai import OpenAIEmbeddings

    openai_embeddings = OpenAIEmbeddings(
        model="embed",
        base_url=f"{served.url}/v1",
        api_key="unused",
        check_embedding_ctx_length=False,
        max_retries=0,
    )
    docs = openai_embeddings.embed_documents(DOCS)
    query = openai_embeddings.embed_query(QUERY)
    assert [len(v) for v in docs] == [32] * 4 and len(query) == 32
    ollama_embeddings = OllamaEmbeddings(model="embed", base_url=served.url)
    assert np.allclose(ollama_embeddings.embed_documents(DOCS), docs, atol=1e-5)


# ---------------------------------------------------------------- what they cannot do


CHAT = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    ("path", "body", "error_of"),
    [
        ("/v1/chat/completions", {"messages": CHAT}, lambda j: j["error"]["message"]),
        (
            "/v1/chat/completions",
            {"messages": CHAT, "stream": True},
            lambda j: j["error"]["message"],
        ),
        ("/v1/completions", {"prompt": "hi"}, lambda j: j["error"]["message"]),
        ("/v1/responses", {"input": "hi"}, lambda j: j["error"]["message"]),
        ("/v1/messages", {"messages": CHAT, "max_tokens": 8}, lambda j: j["error"]["message"]),
        ("/api/chat", {"messages": CHAT}, lambda j: j["error"]),
        ("/api/generate", {"prompt": "hi"}, lambda j: j["error"]),
    ],
)
def test_chat_on_an_embedding_model_is_a_clear_400_in_each_dialect(served, path, body, error_of):
    reply = post(served, path, {"model": "embed", **body})
    assert reply.status_code == 400, reply.text
    message = error_of(reply.json())
    assert "embed:latest is an embedding model: it cannot" in message
    assert "/v1/embeddings" in message


def test_capabilities_in_show_and_models(served):
    embed = post(served, "/api/show", {"model": "embed"}).json()
    rerank = post(served, "/api/show", {"model": "rerank"}).json()
    assert embed["capabilities"] == ["embedding"]
    assert rerank["capabilities"] == ["rerank"]
    cards = {m["id"]: m for m in httpx.get(f"{served.url}/v1/models").json()["data"]}
    assert cards["embed:latest"]["capabilities"]["completion"] is False
    assert cards["rerank:latest"]["capabilities"]["rerank"] is True
    assert cards["gemma:latest"]["capabilities"]["completion"] is True


def test_the_chat_model_still_embeds(served):
    reply = post(served, "/v1/embeddings", {"model": "gemma", "input": "hello"})
    assert reply.status_code == 200, reply.text
    assert len(reply.json()["data"][0]["embedding"]) == 640
