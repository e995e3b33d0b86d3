"""Engine events as Anthropic Messages: one message, or its stream of content-block events
(see the reply shapes in :mod:`.protocol`)."""

from __future__ import annotations

import json
from typing import Any

from ...engine.api import Done, EngineError, Event, TextDelta, ThinkingDelta, ToolCallDelta
from ..common.wire import ErrorBody, Writer
from ..errors import ANTHROPIC, engine_error_body
from ..events import Collected
from ..sse import sse
from . import protocol as p


def stop_reason(done: Done, stops: list[str]) -> tuple[str, str | None]:
    """Anthropic's ``stop_reason`` and ``stop_sequence`` for how generation ended."""
    if done.finish_reason == "length":
        return "max_tokens", None
    if done.finish_reason == "tool_calls":
        return "tool_use", None
    if done.stop_sequence and done.stop_sequence in stops:
        return "stop_sequence", done.stop_sequence
    return "end_turn", None


def usage(done: Done) -> p.MessageUsage:
    """Anthropic's split of the prompt: tokens read from the prompt cache (the KV cache a
    conversation's earlier turns left) and the rest; the cache is automatic here, so nothing
    counts as written to it on request."""
    u = done.usage
    return {
        "input_tokens": u.prompt_tokens - u.cached_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": u.cached_tokens,
        "output_tokens": u.completion_tokens,
    }


def opening_usage(input_tokens: int) -> p.MessageUsage:
    return {
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": 0,
    }


def tool_input(arguments: str) -> dict[str, Any]:
    try:
        value = json.loads(arguments) if arguments.strip() else {}
    except ValueError:
        return {"_raw": arguments}
    return value if isinstance(value, dict) else {"value": value}


class MessagesWriter(Writer[p.StreamEvent]):
    """Streamed, one content block per kind of output (text, thinking, each tool call)."""

    def __init__(self, message_id: str, model: str, stops: list[str], input_tokens: int = 0):
        self.message_id, self.model, self.stops = message_id, model, stops
        self.input_tokens = input_tokens
        self.index = -1
        self.kind: str | None = None  # text | thinking | tool:<n>
        self.pinged = False

    def encode(self, chunk: p.StreamEvent | ErrorBody) -> str:
        return sse(chunk, event=chunk["type"])  # each event is named as its type

    def keepalive(self) -> str:
        return self.encode({"type": "ping"})  # as Anthropic's API keeps a stream alive

    def error(self, exc: EngineError) -> ErrorBody:
        return engine_error_body(ANTHROPIC, exc)

    def _message(self, content: list[p.ContentBlock], done: Done | None) -> p.MessageReply:
        reason, sequence = stop_reason(done, self.stops) if done else (None, None)
        return p.MessageReply(
            id=self.message_id,
            type="message",
            role="assistant",
            model=self.model,
            content=content,
            stop_reason=reason,
            stop_sequence=sequence,
            usage=usage(done) if done else opening_usage(self.input_tokens),
        )

    def opening(self) -> list[p.StreamEvent]:
        return [{"type": "message_start", "message": self._message([], None).wire()}]

    def _start(self, kind: str, block: p.ContentBlock) -> list[p.StreamEvent]:
        chunks = self._stop()
        self.index += 1
        self.kind = kind
        chunks.append({"type": "content_block_start", "index": self.index, "content_block": block})
        if not self.pinged:
            self.pinged = True
            chunks.append({"type": "ping"})
        return chunks

    def _stop(self) -> list[p.StreamEvent]:
        if self.kind is None:
            return []
        self.kind = None
        return [{"type": "content_block_stop", "index": self.index}]

    def _delta(self, delta: p.TextDelta | p.ThinkingDelta | p.InputJsonDelta) -> p.StreamEvent:
        return {"type": "content_block_delta", "index": self.index, "delta": delta}

    def event(self, event: Event, index: int = 0) -> list[p.StreamEvent]:
        chunks: list[p.StreamEvent] = []
        if isinstance(event, TextDelta) and event.text:
            if self.kind != "text":
                chunks += self._start("text", {"type": "text", "text": ""})
            chunks.append(self._delta({"type": "text_delta", "text": event.text}))
        elif isinstance(event, ThinkingDelta):
            if self.kind != "thinking":
                chunks += self._start(
                    "thinking", {"type": "thinking", "thinking": "", "signature": ""}
                )
            chunks.append(self._delta({"type": "thinking_delta", "thinking": event.text}))
        elif isinstance(event, ToolCallDelta):
            kind = f"tool:{event.index}"
            if self.kind != kind:
                tool_id, name = event.id or f"toolu_{event.index}", event.name or ""
                chunks += self._start(
                    kind, {"type": "tool_use", "id": tool_id, "name": name, "input": {}}
                )
            if event.arguments:
                chunks.append(
                    self._delta({"type": "input_json_delta", "partial_json": event.arguments})
                )
        elif isinstance(event, Done):
            if self.index < 0:  # nothing was generated: still one (empty) text block
                chunks += self._start("text", {"type": "text", "text": ""})
            chunks += self._stop()
            reason, sequence = stop_reason(event, self.stops)
            chunks.append(
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": reason, "stop_sequence": sequence},
                    "usage": usage(event),
                }
            )
            chunks.append({"type": "message_stop"})
        return chunks

    def whole(self, results: list[Collected]) -> p.MessageReply:
        result = results[0]
        content: list[p.ContentBlock] = []
        if result.thinking:
            content.append({"type": "thinking", "thinking": result.thinking, "signature": ""})
        if result.text or not result.tool_calls:
            content.append({"type": "text", "text": result.text})
        for call in result.tool_calls:
            input_ = tool_input(call.arguments)
            content.append({"type": "tool_use", "id": call.id, "name": call.name, "input": input_})
        return self._message(content, result.done)
