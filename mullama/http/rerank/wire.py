"""The engine's rerank result as each client family expects its reply."""

from __future__ import annotations

import os

from ...engine.api import RerankResult
from . import protocol


def reply(
    result: RerankResult, documents: list[str], model: str, with_documents: bool
) -> protocol.RerankReply:
    """llama-server's and Jina's reply (Cohere's too: ``results``, ``id``, ``meta``), best
    first; ``document`` as Cohere and Jina return it, when asked for."""
    results: list[protocol.Result] = []
    for r in result.results:
        item: protocol.Result = {"index": r.index, "relevance_score": r.relevance_score}
        if with_documents:
            item["document"] = {"text": documents[r.index]}
        results.append(item)
    n = result.prompt_tokens
    return protocol.RerankReply(
        id=f"rerank-{os.urandom(12).hex()}",
        object="list",
        model=model or result.model,
        results=results,
        usage={"prompt_tokens": n, "total_tokens": n},
        meta={"tokens": {"input_tokens": n, "output_tokens": 0}},
    )


def tei_reply(
    result: RerankResult, documents: list[str], with_text: bool
) -> list[protocol.TEIResult]:
    """Hugging Face TEI's reply: a bare array of ``{index, score}`` (and ``text``)."""
    out: list[protocol.TEIResult] = []
    for r in result.results:
        item: protocol.TEIResult = {"index": r.index, "score": r.relevance_score}
        if with_text:
            item["text"] = documents[r.index]
        out.append(item)
    return out
