"""LocalEngine's embedding and reranking requests: checked, run on the loaded model's runner
(a dedicated :class:`Embedder`, or a chat model's runner for embeddings) and their results
shaped (``dimensions``, ranking)."""

from __future__ import annotations

import asyncio

from .api import (
    ContextOverflow,
    EmbedRequest,
    InvalidRequest,
    RerankRequest,
    RerankScore,
)
from .embedder import Embedder
from .manager import Loaded
from .remote_runner import RemoteRunner
from .runner import Runner
from .token_ids import check_token_ids


def generating_runner(entry: Loaded, what: str) -> Runner | RemoteRunner:
    """The runner that generates with ``entry``: an embedding or reranking model has none
    (a chat, a completion, ... on it is refused naming what it is)."""
    runner = entry.runner
    if isinstance(runner, Embedder):
        raise InvalidRequest(runner.refusal(what), param="model")
    return runner


def check_embed_request(request: EmbedRequest) -> None:
    if not request.inputs:
        raise InvalidRequest("input must not be empty", param="input")
    if not all(isinstance(t, str) or _is_token_ids(t) for t in request.inputs):
        raise InvalidRequest(
            "input must be a string, a list of strings, or token ids "
            "(a non-empty list of integers, or a list of them)",
            param="input",
        )


async def embed_vectors(entry: Loaded, request: EmbedRequest) -> tuple[list[list[float]], int]:
    """The request's vectors (one per input) and the tokens they took."""
    runner = entry.runner
    if isinstance(runner, Embedder):  # a dedicated embedding model
        for i, item in enumerate(request.inputs):
            if isinstance(item, list):
                check_token_ids(item, entry.model.n_vocab, f"input[{i}]", param="input")
        future = runner.embed(request.inputs, request.truncate)
        return await asyncio.wrap_future(future)
    inputs = await asyncio.to_thread(_embed_inputs, entry, request)
    job = runner.submit_embed(inputs)
    try:
        vectors = await asyncio.wrap_future(job.future)
    finally:
        job.cancel()  # nothing when it is done; else the runner drops it
    return vectors, sum(len(tokens) for tokens in inputs)


def _embed_inputs(entry: Loaded, request: EmbedRequest) -> list[list[int]]:
    """Each input as the token ids to embed, checked against the vocabulary and the
    embedding context: one that is longer is cut to it when the request allows
    truncation, else refused (400) with both lengths."""
    model, runner = entry.model, entry.runner
    assert not isinstance(runner, Embedder)  # an Embedder checks its own inputs
    limit = runner.embed_shape.n_ctx
    out = []
    for i, item in enumerate(request.inputs):
        if isinstance(item, list):
            check_token_ids(item, model.n_vocab, f"input[{i}]", param="input")
            tokens = list(item)
        else:
            tokens = model.tokenize(item, add_special=True, parse_special=False)
        if not tokens:
            tokens = [model.bos if model.bos >= 0 else 0]
        if len(tokens) > limit:
            if not request.truncate:
                raise ContextOverflow(
                    f"input[{i}] is {len(tokens)} tokens, but the embedding context of "
                    f"{entry.name} holds {limit}; shorten it (or ask for truncation, "
                    "where the API offers it)",
                    param="input",
                    prompt_tokens=len(tokens),
                    context_length=limit,
                )
            tokens = tokens[:limit]
        out.append(tokens)
    return out


def shorten(vectors: list[list[float]], dimensions: int) -> list[list[float]]:
    """Each vector cut to its first ``dimensions`` and normalised again."""
    if dimensions <= 0 or dimensions > len(vectors[0]):
        raise InvalidRequest(
            f"dimensions must be between 1 and {len(vectors[0])}", param="dimensions"
        )
    out = []
    for v in vectors:
        cut = v[:dimensions]
        norm = sum(x * x for x in cut) ** 0.5 or 1.0
        out.append([x / norm for x in cut])
    return out


def check_rerank_request(request: RerankRequest) -> None:
    if not request.query.strip():
        raise InvalidRequest("query must not be empty", param="query")
    if not request.documents:
        raise InvalidRequest("documents must not be empty", param="documents")
    if not all(isinstance(d, str) for d in request.documents):
        raise InvalidRequest("documents must be strings", param="documents")
    if request.top_n is not None and request.top_n < 1:
        raise InvalidRequest("top_n must be at least 1", param="top_n")


def reranker(entry: Loaded) -> Embedder:
    """The runner that reranks with ``entry``, or the 400 of a chat model."""
    runner = entry.runner
    if not isinstance(runner, Embedder):
        raise InvalidRequest(
            f"{entry.name} is a chat model, not a reranking model (its GGUF has no rank "
            "pooling): it cannot rerank; use a reranker such as bge-reranker-v2-m3",
            param="model",
        )
    return runner


def ranked(scores: list[list[float]], top_n: int | None) -> list[RerankScore]:
    """The documents by score, best first (ties in the request's order), the best ``top_n``."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i][0])  # stable: ties in order
    return [RerankScore(i, scores[i][0]) for i in order[:top_n]]


def _is_token_ids(value: object) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(t, int) and not isinstance(t, bool) for t in value)
    )
