"""The Anthropic-compatible API: ``/v1/messages`` (streamed and not) and token counting."""

from __future__ import annotations

import json
import uuid

from sanic import Blueprint, Request
from sanic.response import json as json_response

from ..engine.api import ChatRequest, Done, EngineError, TextDelta, ThinkingDelta, ToolCallDelta
from . import anthropic_requests as parse
from .errors import ANTHROPIC, engine_error_body
from .events import Collected, collect, primed
from .fields import get, json_body
from .sse import open_stream, sse

blueprint = Blueprint("anthropic", url_prefix="/v1/messages")


def stop_reason(done: Done, chat: ChatRequest) -> tuple[str, str | None]:
    """Anthropic's ``stop_reason`` and ``stop_sequence`` for how generation ended."""
    if done.finish_reason == "length":
        return "max_tokens", None
    if done.finish_reason == "tool_calls":
        return "tool_use", None
    if done.stop_sequence and done.stop_sequence in (chat.options.stop or []):
        return "stop_sequence", done.stop_sequence
    return "end_turn", None


def _usage(done: Done) -> dict:
    return {"input_tokens": done.usage.prompt_tokens, "output_tokens": done.usage.completion_tokens}


def _tool_input(arguments: str) -> dict:
    try:
        value = json.loads(arguments) if arguments.strip() else {}
    except ValueError:
        return {"_raw": arguments}
    return value if isinstance(value, dict) else {"value": value}


def _content(result: Collected) -> list[dict]:
    content: list[dict] = []
    if result.thinking:
        content.append({"type": "thinking", "thinking": result.thinking, "signature": ""})
    if result.text or not result.tool_calls:
        content.append({"type": "text", "text": result.text})
    for call in result.tool_calls:
        content.append(
            {
                "type": "tool_use",
                "id": call.id,
                "name": call.name,
                "input": _tool_input(call.arguments),
            }
        )
    return content


@blueprint.post("")
async def messages(request: Request):
    body = json_body(request)
    chat = parse.chat_request(body)
    stream = get(body, "stream", bool, default=False)
    engine = request.app.ctx.engine
    message_id = f"msg_{uuid.uuid4().hex[:24]}"
    input_tokens = await engine.count_chat_tokens(chat) if stream else 0
    async with primed(engine.chat(chat)) as events:
        if not stream:
            result = await collect(events)
            reason, sequence = stop_reason(result.done, chat)
            return json_response(
                {
                    "id": message_id,
                    "type": "message",
                    "role": "assistant",
                    "model": chat.model,
                    "content": _content(result),
                    "stop_reason": reason,
                    "stop_sequence": sequence,
                    "usage": _usage(result.done),
                }
            )
        response = await open_stream(request)
        writer = _StreamWriter(response)
        await writer.send(
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": message_id,
                    "type": "message",
                    "role": "assistant",
                    "model": chat.model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {"input_tokens": input_tokens, "output_tokens": 0},
                },
            },
        )
        try:
            async for event in events:
                if isinstance(event, Done):
                    await writer.finish(event, chat)
                else:
                    await writer.delta(event)
        except EngineError as exc:
            await writer.send("error", engine_error_body(ANTHROPIC, exc))
        await response.eof()


class _StreamWriter:
    """Turns engine events into Anthropic content blocks: one block per kind of output."""

    def __init__(self, response):
        self.response = response
        self.index = -1
        self.kind: str | None = None  # text | thinking | tool:<n>
        self.pinged = False

    async def send(self, event: str, data: dict) -> None:
        await self.response.send(sse(data, event=event))

    async def _start(self, kind: str, block: dict) -> None:
        await self._stop()
        self.index += 1
        self.kind = kind
        await self.send(
            "content_block_start",
            {"type": "content_block_start", "index": self.index, "content_block": block},
        )
        if not self.pinged:
            self.pinged = True
            await self.send("ping", {"type": "ping"})

    async def _stop(self) -> None:
        if self.kind is not None:
            await self.send(
                "content_block_stop", {"type": "content_block_stop", "index": self.index}
            )
            self.kind = None

    async def _delta(self, delta: dict) -> None:
        await self.send(
            "content_block_delta",
            {"type": "content_block_delta", "index": self.index, "delta": delta},
        )

    async def delta(self, event) -> None:
        if isinstance(event, TextDelta):
            if not event.text:
                return
            if self.kind != "text":
                await self._start("text", {"type": "text", "text": ""})
            await self._delta({"type": "text_delta", "text": event.text})
        elif isinstance(event, ThinkingDelta):
            if self.kind != "thinking":
                await self._start("thinking", {"type": "thinking", "thinking": "", "signature": ""})
            await self._delta({"type": "thinking_delta", "thinking": event.text})
        elif isinstance(event, ToolCallDelta):
            kind = f"tool:{event.index}"
            if self.kind != kind:
                await self._start(
                    kind,
                    {
                        "type": "tool_use",
                        "id": event.id or f"toolu_{event.index}",
                        "name": event.name or "",
                        "input": {},
                    },
                )
            if event.arguments:
                await self._delta({"type": "input_json_delta", "partial_json": event.arguments})

    async def finish(self, done: Done, chat: ChatRequest) -> None:
        if self.index < 0:  # nothing was generated: still one (empty) text block
            await self._start("text", {"type": "text", "text": ""})
        await self._stop()
        reason, sequence = stop_reason(done, chat)
        await self.send(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": reason, "stop_sequence": sequence},
                "usage": _usage(done),
            },
        )
        await self.send("message_stop", {"type": "message_stop"})


@blueprint.post("/count_tokens")
async def count_tokens(request: Request):
    chat = parse.chat_request(json_body(request), count_only=True)
    return json_response({"input_tokens": await request.app.ctx.engine.count_chat_tokens(chat)})
