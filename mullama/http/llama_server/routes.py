"""``POST /tokenize`` and ``POST /detokenize``, as llama-server answers them."""

from __future__ import annotations

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json

from ..common.protocol import parse_body
from . import protocol

blueprint = Blueprint("llama_server")


def piece(data: bytes) -> str | list[int]:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return list(data)


@blueprint.post("/tokenize")
async def tokenize(request: Request) -> HTTPResponse:
    body = await parse_body(protocol.TokenizeBody, request.body)
    engine = request.app.ctx.engine
    model = body.model or await engine.default_model()
    tokens = await engine.tokenize(model, body.content, body.add_special, body.parse_special)
    if not body.with_pieces:
        return json(protocol.TokenizeReply(tokens=tokens).wire())
    pieces = await engine.token_pieces(model, tokens)
    entries: list[protocol.TokenPiece] = [
        {"id": t, "piece": piece(p)} for t, p in zip(tokens, pieces, strict=True)
    ]
    return json(protocol.TokenizeReply(tokens=entries).wire())


@blueprint.post("/detokenize")
async def detokenize(request: Request) -> HTTPResponse:
    body = await parse_body(protocol.DetokenizeBody, request.body)
    engine = request.app.ctx.engine
    text = await engine.detokenize(body.model or await engine.default_model(), body.tokens)
    return json(protocol.DetokenizeReply(content=text).wire())
