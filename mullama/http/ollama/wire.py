"""Engine events as Ollama's ``/api/chat`` and ``/api/generate`` objects, and pull progress
(see the reply shapes in :mod:`.protocol`)."""

from __future__ import annotations

import datetime as dt
import json
from abc import abstractmethod
from typing import Any, Generic, TypeVar

from ...engine.api import (
    Done,
    EngineError,
    Event,
    PullProgress,
    TextDelta,
    ThinkingDelta,
    ToolCall,
    ToolCallDelta,
)
from ..common.wire import ErrorBody, NdjsonWriter
from ..errors import OLLAMA, engine_error_body
from ..events import Collected
from . import protocol as p

# Ollama reports a finished tool call turn as a plain stop.
DONE_REASONS = {"tool_calls": "stop", "cancelled": "stop"}

C = TypeVar("C", p.ChatChunk, p.GenerateChunk)


def created_at() -> str:
    return dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")


def stats(done: Done) -> dict[str, Any]:
    """The last line's (and a whole answer's) ``done_reason`` and counters, in wire order."""
    t, u = done.timings, done.usage
    return {
        "done_reason": DONE_REASONS.get(done.finish_reason, done.finish_reason),
        "total_duration": t.total_ns,
        "load_duration": t.load_ns,
        "prompt_eval_count": u.prompt_tokens,
        "prompt_eval_duration": t.prompt_eval_ns,
        "eval_count": u.completion_tokens,
        "eval_duration": t.eval_ns,
    }


def tool_calls(calls: list[ToolCall]) -> list[p.ReplyToolCall]:
    """Tool calls with their arguments as an object, as Ollama clients read them."""
    out: list[p.ReplyToolCall] = []
    for index, call in enumerate(calls):
        try:
            arguments = json.loads(call.arguments or "{}")
        except ValueError:
            arguments = None
        if not isinstance(arguments, dict):
            raise EngineError(
                f"the model's call of tool {call.name!r} has arguments that are "
                f"not a JSON object: {call.arguments!r}"
            )
        out.append(
            {"id": call.id, "function": {"index": index, "name": call.name, "arguments": arguments}}
        )
    return out


class OllamaWriter(NdjsonWriter[C], Generic[C]):
    """One response's objects: NDJSON lines, or the whole answer; an error ends a stream as
    its last line, ``{"error": "..."}``, as Ollama sends it."""

    def __init__(self, model: str, logprobs: bool = False):
        self.model = model
        self.logprobs = logprobs
        self.calls = Collected()  # tool-call deltas, sent whole when the turn ends

    def error(self, exc: EngineError) -> ErrorBody:
        return {"error": engine_error_body(OLLAMA, exc)["error"]}

    def event(self, event: Event, index: int = 0) -> list[C]:
        if isinstance(event, TextDelta):
            line = self.chunk(text=event.text)
            if self.logprobs:
                line["logprobs"] = event.logprobs or []
            return [line]
        if isinstance(event, ThinkingDelta):
            return [self.chunk(thinking=event.text)]
        if isinstance(event, ToolCallDelta):
            self.calls.add(event)
            return []
        if isinstance(event, Done):
            calls = tool_calls(self.calls.tool_calls)
            lines: list[C] = [self.chunk(calls=calls)] if calls else []
            last = self.chunk()
            last["done"] = True
            last.update(stats(event))  # type: ignore[typeddict-item]  # the NotRequired stats
            last.update(self.final(event))  # type: ignore[typeddict-item]
            lines.append(last)
            return lines
        return []

    @abstractmethod
    def chunk(
        self, text: str = "", thinking: str = "", calls: list[p.ReplyToolCall] | None = None
    ) -> C:
        """A streamed object carrying these pieces (``done`` false)."""

    def final(self, done: Done) -> dict[str, Any]:
        return {}

    @abstractmethod
    def loaded(self, reason: str) -> p.ChatResponse | p.GenerateResponse:
        """The answer to an empty request that only loads or unloads the model."""


class ChatWriter(OllamaWriter[p.ChatChunk]):
    def message(
        self, text: str = "", thinking: str = "", calls: list[p.ReplyToolCall] | None = None
    ) -> p.ReplyMessage:
        message: p.ReplyMessage = {"role": "assistant", "content": text}
        if thinking:
            message["thinking"] = thinking
        if calls:
            message["tool_calls"] = calls
        return message

    def chunk(
        self, text: str = "", thinking: str = "", calls: list[p.ReplyToolCall] | None = None
    ) -> p.ChatChunk:
        return {
            "model": self.model,
            "created_at": created_at(),
            "message": self.message(text, thinking, calls),
            "done": False,
        }

    def whole(self, results: list[Collected]) -> p.ChatResponse:
        result = results[0]
        reply = p.ChatResponse(
            model=self.model,
            created_at=created_at(),
            message=self.message(result.text, result.thinking, tool_calls(result.tool_calls)),
            done=True,
            **stats(result.done),
        )
        if self.logprobs:
            reply.logprobs = result.logprobs
        return reply

    def loaded(self, reason: str) -> p.ChatResponse:
        """The answer to an empty request that only loads or unloads the model."""
        return p.ChatResponse(
            model=self.model,
            created_at=created_at(),
            message=self.message(),
            done=True,
            done_reason=reason,
        )


class GenerateWriter(OllamaWriter[p.GenerateChunk]):
    def __init__(self, model: str, logprobs: bool = False, raw: bool = False):
        super().__init__(model, logprobs)
        self.raw = raw

    def chunk(
        self, text: str = "", thinking: str = "", calls: list[p.ReplyToolCall] | None = None
    ) -> p.GenerateChunk:
        line: p.GenerateChunk = {
            "model": self.model,
            "created_at": created_at(),
            "response": text,
            "done": False,
        }
        if thinking:
            line["thinking"] = thinking
        return line

    def final(self, done: Done) -> dict[str, Any]:
        # Ollama returns no context in raw mode: it would not match a templated prompt.
        return {"context": done.context} if done.context is not None and not self.raw else {}

    def whole(self, results: list[Collected]) -> p.GenerateResponse:
        result = results[0]
        reply = p.GenerateResponse(
            model=self.model,
            created_at=created_at(),
            response=result.text,
            done=True,
            **stats(result.done),
            **self.final(result.done),
        )
        if result.thinking:
            reply.thinking = result.thinking
        if self.logprobs:
            reply.logprobs = result.logprobs
        return reply

    def loaded(self, reason: str) -> p.GenerateResponse:
        """The answer to an empty request that only loads or unloads the model."""
        return p.GenerateResponse(
            model=self.model, created_at=created_at(), response="", done=True, done_reason=reason
        )


def pull_status(progress: PullProgress) -> p.Status | None:
    """One Ollama pull status line (``None`` for steps Ollama does not report)."""
    if progress.status == "resolving":
        return {"status": "pulling manifest"}
    if progress.status == "downloading":
        digest = progress.digest or ""
        label = digest.split(":", 1)[-1][:12] if digest else progress.file
        return {
            "status": f"pulling {label}",
            "digest": digest,
            "total": progress.total,
            "completed": progress.completed,
        }
    if progress.status == "verifying":
        return {"status": "verifying sha256 digest"}
    if progress.status == "writing":
        return {"status": "writing manifest"}
    if progress.status == "success":
        return {"status": "success"}
    return None
