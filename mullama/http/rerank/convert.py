"""A rerank body as the Engine's request."""

from __future__ import annotations

from ...engine import api
from . import protocol


def rerank_request(body: protocol.RerankBody) -> api.RerankRequest:
    return api.RerankRequest(
        model=body.model,
        query=body.query,
        documents=body.docs,
        top_n=body.top_n,
        truncate=body.truncate,
        keep_alive=body.keep_alive,
    )
