"""The OpenAI-compatible API: chat completions, completions, embeddings, models."""

from __future__ import annotations

import base64
import contextlib
import struct
import time
import uuid
from datetime import datetime

from sanic import Blueprint, Request
from sanic.response import json

from ...engine.api import ModelInfo
from ..common.images import fetch_image_urls
from ..common.protocol import parse_body
from ..common.wire import answer
from . import convert, protocol
from .wire import ChatWriter, CompletionWriter

blueprint = Blueprint("openai", url_prefix="/v1")


# ---------------------------------------------------------------- chat completions


@blueprint.post("/chat/completions")
async def chat_completions(request: Request):
    body = await parse_body(protocol.ChatCompletionBody, request.body)
    chats = convert.chat_requests(body)
    await fetch_image_urls(request, chats)
    engine = request.app.ctx.engine
    model = chats[0].model or await engine.default_model()
    request_id, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
    include_usage = body.stream_options.include_usage
    writer = ChatWriter(
        model, request_id, created, include_usage, logprobs=body.logprobs, choices=len(chats)
    )
    return await answer(request, [engine.chat(chat) for chat in chats], writer, body.stream)


# ---------------------------------------------------------------- completions


@blueprint.post("/completions")
async def completions(request: Request):
    body = await parse_body(protocol.CompletionBody, request.body)
    requests = convert.completion_requests(body)
    engine = request.app.ctx.engine
    model = requests[0].model or await engine.default_model()
    request_id, created = f"cmpl-{uuid.uuid4().hex[:24]}", int(time.time())
    writer = CompletionWriter(
        model,
        request_id,
        created,
        body.stream_options.include_usage,
        prompts=[r.prompt for r in requests],
        echo=body.echo,
        logprobs=requests[0].options.logprobs,
        choices_per_prompt=body.n,
    )
    return await answer(request, [engine.complete(r) for r in requests], writer, body.stream)


# ---------------------------------------------------------------- embeddings


@blueprint.post("/embeddings")
async def embeddings(request: Request):
    body = await parse_body(protocol.EmbeddingBody, request.body)
    embed = convert.embed_request(body)
    result = await request.app.ctx.engine.embed(embed)
    data = []
    for i, vector in enumerate(result.embeddings):
        value = (
            base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
            if body.encoding_format == "base64"
            else vector
        )
        data.append(protocol.EmbeddingData(object="embedding", index=i, embedding=value))
    reply = protocol.EmbeddingList(
        object="list",
        data=data,
        model=embed.model or result.model,
        usage=protocol.EmbeddingUsage(
            prompt_tokens=result.prompt_tokens, total_tokens=result.prompt_tokens
        ),
    )
    return json(reply.wire())


# ---------------------------------------------------------------- models


def model_card(info: ModelInfo) -> protocol.ModelCard:
    created = 0
    if info.modified_at:
        with contextlib.suppress(ValueError):
            created = int(datetime.fromisoformat(info.modified_at).timestamp())
    flags = dict.fromkeys(("json", "tools", "thinking", "vision"), False)
    return protocol.ModelCard(
        id=info.name,
        object="model",
        created=created,
        owned_by="mullama",
        capabilities={**flags, **{k: bool(v) for k, v in info.capabilities.items()}},
        details=protocol.ModelCardDetails(
            family=info.family,
            parameter_size=info.parameter_size,
            quantization=info.quantization,
            size=info.size,
            kind=info.kind,
        ),
    )


@blueprint.route("/models", methods=["GET", "HEAD"])
async def list_models(request: Request):
    models = await request.app.ctx.engine.list_models()
    cards = [model_card(m) for m in models]
    return json(protocol.ModelList(object="list", data=cards).wire())


@blueprint.route("/models/<name:path>", methods=["GET", "HEAD"])
async def get_model(request: Request, name: str):
    for info in await request.app.ctx.engine.list_models():
        if info.name == name:
            return json(model_card(info).wire())
    details = await request.app.ctx.engine.show_model(name)  # resolves aliases, or raises 404
    return json(model_card(details.info).wire())
