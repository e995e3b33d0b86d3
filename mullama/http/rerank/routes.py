"""``POST /v1/rerank``, ``/rerank``, ``/v1/reranking`` (llama-server's routes) and ``/v2/rerank``
(Cohere's current one): a query's documents ordered by a reranking model's scores. Errors are
OpenAI-shaped, as llama-server's."""

from __future__ import annotations

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json

from ..common.protocol import parse
from . import convert, protocol, wire

blueprint = Blueprint("rerank")
PATHS = ("/v1/rerank", "/rerank", "/v1/reranking", "/v2/rerank")


async def rerank(request: Request) -> HTTPResponse:
    body = parse(protocol.RerankBody, request.body)
    result = await request.app.ctx.engine.rerank(convert.rerank_request(body))
    if body.tei:
        return json(wire.tei_reply(result, body.docs, body.return_text))
    return json(wire.reply(result, body.docs, body.model, body.return_documents).wire())


for _path in PATHS:
    blueprint.add_route(rerank, _path, methods=["POST"], name=_path.strip("/").replace("/", "_"))
