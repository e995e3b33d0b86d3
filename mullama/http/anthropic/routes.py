"""The Anthropic-compatible API: ``/v1/messages`` (streamed and not) and token counting."""

from __future__ import annotations

import uuid

from sanic import Blueprint, Request
from sanic.response import json

from ..common.images import fetch_image_urls
from ..common.protocol import parse_body
from ..common.wire import answer
from . import convert, protocol
from .wire import MessagesWriter

blueprint = Blueprint("anthropic", url_prefix="/v1/messages")


@blueprint.post("")
async def messages(request: Request):
    body = await parse_body(protocol.MessagesBody, request.body)
    chat = convert.chat_request(body)
    await fetch_image_urls(request, [chat])
    engine = request.app.ctx.engine
    input_tokens = await engine.count_chat_tokens(chat) if body.stream else 0
    message_id = f"msg_{uuid.uuid4().hex[:24]}"
    writer = MessagesWriter(message_id, chat.model, chat.options.stop or [], input_tokens)
    return await answer(request, [engine.chat(chat)], writer, body.stream)


@blueprint.post("/count_tokens")
async def count_tokens(request: Request):
    chat = convert.chat_request(await parse_body(protocol.CountTokensBody, request.body))
    await fetch_image_urls(request, [chat])
    count = await request.app.ctx.engine.count_chat_tokens(chat)
    return json(protocol.TokenCount(input_tokens=count).wire())
