"""Engine events as Ollama's ``/api/chat`` and ``/api/generate`` objects, and pull progress."""

from __future__ import annotations

import datetime as dt
import json
from abc import abstractmethod

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
from ..common.wire import Chunk, NdjsonWriter
from ..events import Collected

# Ollama reports a finished tool call turn as a plain stop.
DONE_REASONS = {"tool_calls": "stop", "cancelled": "stop"}


def created_at() -> str:
    return dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")


def stats(done: Done) -> dict:
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


def tool_calls(calls: list[ToolCall]) -> list[dict]:
    """Tool calls with their arguments as an object, as Ollama clients read them."""
    out = []
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


class OllamaWriter(NdjsonWriter):
    """One response's objects: NDJSON lines, or the whole answer; an error ends a stream as
    its last line, ``{"error": "..."}``, as Ollama sends it."""

    def __init__(self, model: str, logprobs: bool = False):
        self.model = model
        self.logprobs = logprobs
        self.calls = Collected()  # tool-call deltas, sent whole when the turn ends

    def head(self) -> dict:
        return {"model": self.model, "created_at": created_at()}

    def error(self, exc: EngineError) -> Chunk:
        return {"error": exc.message}

    def event(self, event: Event, index: int = 0) -> list[Chunk]:
        if isinstance(event, TextDelta):
            extra = {"logprobs": event.logprobs or []} if self.logprobs else {}
            return [{**self.chunk(text=event.text), **extra}]
        if isinstance(event, ThinkingDelta):
            return [self.chunk(thinking=event.text)]
        if isinstance(event, ToolCallDelta):
            self.calls.add(event)
            return []
        if isinstance(event, Done):
            calls = tool_calls(self.calls.tool_calls)
            lines = [self.chunk(calls=calls)] if calls else []
            return lines + [{**self.chunk(), "done": True, **stats(event), **self.final(event)}]
        return []

    def whole(self, results: list[Collected]) -> dict:
        result = results[0]
        body = {
            **self.chunk(
                text=result.text, thinking=result.thinking, calls=tool_calls(result.tool_calls)
            ),
            "done": True,
            **stats(result.done),
            **self.final(result.done),
        }
        if self.logprobs:
            body["logprobs"] = result.logprobs
        return body

    def loaded(self, reason: str) -> dict:
        """The answer to an empty request that only loads or unloads the model."""
        return {**self.chunk(), "done": True, "done_reason": reason}

    @abstractmethod
    def chunk(self, text: str = "", thinking: str = "", calls: list[dict] | None = None) -> dict:
        """A streamed object carrying these pieces (``done`` false)."""

    def final(self, done: Done) -> dict:
        return {}


class ChatWriter(OllamaWriter):
    def chunk(self, text: str = "", thinking: str = "", calls: list[dict] | None = None) -> dict:
        message: dict = {"role": "assistant", "content": text}
        if thinking:
            message["thinking"] = thinking
        if calls:
            message["tool_calls"] = calls
        return {**self.head(), "message": message, "done": False}


class GenerateWriter(OllamaWriter):
    def __init__(self, model: str, logprobs: bool = False, raw: bool = False):
        super().__init__(model, logprobs)
        self.raw = raw

    def chunk(self, text: str = "", thinking: str = "", calls: list[dict] | None = None) -> dict:
        body = {**self.head(), "response": text, "done": False}
        if thinking:
            body["thinking"] = thinking
        return body

    def final(self, done: Done) -> dict:
        # Ollama returns no context in raw mode: it would not match a templated prompt.
        return {"context": done.context} if done.context is not None and not self.raw else {}


def pull_status(progress: PullProgress) -> dict | None:
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
