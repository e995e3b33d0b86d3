"""Engine events as a Responses API response: one ``response`` object, or its stream of events
(see the shapes in :mod:`.protocol`).

Streamed, the output is a sequence of items, one per kind of output in the order the model
produces them — a ``reasoning`` item (its thinking as one summary part), a ``message`` (one
``output_text`` part), a ``function_call`` per tool call — each opened with
``response.output_item.added`` and closed with ``response.output_item.done``; the stream starts
with ``response.created`` and ``response.in_progress`` and ends with ``response.completed`` (or
``response.incomplete`` when ``max_output_tokens`` cut it). An engine failure midway is an
``error`` event followed by ``response.failed``. Every event carries a ``sequence_number``
counting from 0."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any, cast

from ...engine.api import (
    Done,
    EngineError,
    Event,
    QueueFull,
    TextDelta,
    ThinkingDelta,
    ToolCallDelta,
)
from ..common.wire import ErrorBody, Writer
from ..errors import OPENAI, engine_error_body, engine_status
from ..events import Collected
from ..sse import sse
from . import protocol as p


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def usage(done: Done) -> p.ResponseUsage:
    u = done.usage
    return {
        "input_tokens": u.prompt_tokens,
        "input_tokens_details": {"cached_tokens": u.cached_tokens, "cache_write_tokens": 0},
        "output_tokens": u.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
        "total_tokens": u.total_tokens,
    }


def failure_code(exc: EngineError) -> str:
    """A failed response's ``error.code``: OpenAI's names, fewer than the engine's (the
    ``error`` event before it carries the engine's own)."""
    if isinstance(exc, QueueFull):
        return "rate_limit_exceeded"
    return "server_error" if engine_status(exc) >= 500 else "invalid_prompt"


def _text_part(text: str) -> p.OutputText:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


class ResponsesWriter(Writer[p.StreamEvent]):
    """One response; ``on_final`` gets the finished response (to store it) before it is sent."""

    def __init__(
        self,
        response_id: str,
        model: str,
        body: p.ResponsesBody,
        *,
        created_at: int | None = None,
        on_final: Callable[[p.Response], None] | None = None,
        ids: Callable[[str], str] = new_id,
    ):
        self.response_id, self.model, self.body = response_id, model, body
        self.created_at = int(time.time()) if created_at is None else created_at
        self.on_final, self.ids = on_final, ids
        self.sequence = 0
        self.output: list[p.OutputItem] = []
        self.kind: str | None = None  # reasoning | message | call:<n>
        self.item_id = ""
        self.text = ""  # the open item's text or arguments
        self.call_id, self.name = "", ""
        self._error: p.ResponseError = {"code": "internal", "message": "the response failed"}

    # ------------------------------------------------------------ the response object

    def response(
        self,
        status: str,
        output: list[p.OutputItem],
        done: Done | None = None,
        error: p.ResponseError | None = None,
    ) -> p.Response:
        body = self.body
        incomplete: p.IncompleteDetails | None = None
        if status == "incomplete":
            incomplete = {"reason": "max_output_tokens"}
        choice = body.tool_choice
        return p.Response(
            id=self.response_id,
            object="response",
            created_at=self.created_at,
            status=status,
            background=False,
            error=error,
            incomplete_details=incomplete,
            instructions=body.instructions,
            max_output_tokens=body.max_output_tokens,
            max_tool_calls=None,
            model=self.model,
            output=output,
            parallel_tool_calls=body.parallel_tool_calls,
            previous_response_id=body.previous_response_id,
            reasoning={"effort": body.reasoning.effort, "summary": body.reasoning.summary},
            service_tier="default",
            store=body.store,
            temperature=body.temperature,
            text={"format": body.text.format.model_dump(by_alias=True, exclude_none=True)},
            tool_choice=choice if isinstance(choice, str) else choice.model_dump(exclude_none=True),
            tools=[tool.model_dump(exclude_none=True) for tool in body.tools],
            top_p=body.top_p,
            truncation=body.truncation,
            usage=usage(done) if done else None,
            user=body.user,
            metadata=body.metadata,
        )

    def _final(self, done: Done, output: list[p.OutputItem]) -> p.Response:
        status = "incomplete" if done.finish_reason == "length" else "completed"
        final = self.response(status, output, done)
        if self.on_final is not None:
            self.on_final(final)
        return final

    # ------------------------------------------------------------ streamed

    def encode(self, chunk: p.StreamEvent | ErrorBody) -> str:
        text = sse(chunk, event=chunk["type"])  # each event is named as its type
        if chunk["type"] == "error":  # the response failed: say so after the error
            failed = self.response("failed", self.output, error=self._error)
            event = self._event({"type": "response.failed", "response": failed.wire()})
            text += sse(event, event="response.failed")
        return text

    def _event(self, event: dict[str, Any]) -> Any:
        event["sequence_number"] = self.sequence
        self.sequence += 1
        return event

    def _lifecycle(self, kind: str, response: p.Response) -> p.Lifecycle:
        return cast(p.Lifecycle, self._event({"type": kind, "response": response.wire()}))

    def opening(self) -> list[p.StreamEvent]:
        start = self.response("in_progress", [])
        return [
            self._lifecycle("response.created", start),
            self._lifecycle("response.in_progress", start),
        ]

    def _item(self, status: str) -> p.OutputItem:
        """The open item as it stands."""
        if self.kind == "reasoning":
            summary: list[p.SummaryText] = (
                [{"type": "summary_text", "text": self.text}] if status != "in_progress" else []
            )
            return {"id": self.item_id, "type": "reasoning", "summary": summary}
        if self.kind == "message":
            content = [_text_part(self.text)] if status != "in_progress" else []
            return {
                "id": self.item_id,
                "type": "message",
                "status": status,
                "role": "assistant",
                "content": content,
            }
        return {
            "id": self.item_id,
            "type": "function_call",
            "status": status,
            "arguments": self.text,
            "call_id": self.call_id,
            "name": self.name,
        }

    def _where(self) -> dict[str, Any]:
        return {"item_id": self.item_id, "output_index": len(self.output)}

    def _open(self, kind: str, event: ToolCallDelta | None = None) -> list[p.StreamEvent]:
        events = self._close()
        self.kind, self.text = kind, ""
        prefix = {"reasoning": "rs", "message": "msg"}.get(kind, "fc")
        self.item_id = self.ids(prefix)
        if event is not None:
            self.call_id = event.id or self.ids("call")
            self.name = event.name or ""
        events.append(
            self._event(
                {
                    "type": "response.output_item.added",
                    "output_index": len(self.output),
                    "item": self._item("in_progress"),
                }
            )
        )
        if kind == "reasoning":
            part: Any = {"type": "summary_text", "text": ""}
            events.append(
                self._event(
                    {
                        "type": "response.reasoning_summary_part.added",
                        **self._where(),
                        "summary_index": 0,
                        "part": part,
                    }
                )
            )
        elif kind == "message":
            events.append(
                self._event(
                    {
                        "type": "response.content_part.added",
                        **self._where(),
                        "content_index": 0,
                        "part": _text_part(""),
                    }
                )
            )
        return events

    def _close(self, status: str = "completed") -> list[p.StreamEvent]:
        if self.kind is None:
            return []
        where, text = self._where(), self.text
        events: list[p.StreamEvent] = []
        if self.kind == "reasoning":
            events.append(
                self._event(
                    {
                        "type": "response.reasoning_summary_text.done",
                        **where,
                        "summary_index": 0,
                        "text": text,
                    }
                )
            )
            part: Any = {"type": "summary_text", "text": text}
            events.append(
                self._event(
                    {
                        "type": "response.reasoning_summary_part.done",
                        **where,
                        "summary_index": 0,
                        "part": part,
                    }
                )
            )
        elif self.kind == "message":
            events.append(
                self._event(
                    {
                        "type": "response.output_text.done",
                        **where,
                        "content_index": 0,
                        "text": text,
                        "logprobs": [],
                    }
                )
            )
            events.append(
                self._event(
                    {
                        "type": "response.content_part.done",
                        **where,
                        "content_index": 0,
                        "part": _text_part(text),
                    }
                )
            )
        else:
            events.append(
                self._event(
                    {
                        "type": "response.function_call_arguments.done",
                        **where,
                        "name": self.name,
                        "arguments": text,
                    }
                )
            )
        item = self._item(status)
        events.append(
            self._event(
                {
                    "type": "response.output_item.done",
                    "output_index": len(self.output),
                    "item": item,
                }
            )
        )
        self.output.append(self._item(status))
        self.kind = None
        return events

    def event(self, event: Event, index: int = 0) -> list[p.StreamEvent]:
        events: list[p.StreamEvent] = []
        if isinstance(event, ThinkingDelta) and event.text:
            if self.kind != "reasoning":
                events += self._open("reasoning")
            self.text += event.text
            events.append(
                self._event(
                    {
                        "type": "response.reasoning_summary_text.delta",
                        **self._where(),
                        "summary_index": 0,
                        "delta": event.text,
                    }
                )
            )
        elif isinstance(event, TextDelta) and event.text:
            if self.kind != "message":
                events += self._open("message")
            self.text += event.text
            events.append(
                self._event(
                    {
                        "type": "response.output_text.delta",
                        **self._where(),
                        "content_index": 0,
                        "delta": event.text,
                        "logprobs": [],
                    }
                )
            )
        elif isinstance(event, ToolCallDelta):
            if event.index > 0 and not self.body.parallel_tool_calls:
                return []
            kind = f"call:{event.index}"
            if self.kind != kind:
                events += self._open(kind, event)
            if event.arguments:
                self.text += event.arguments
                events.append(
                    self._event(
                        {
                            "type": "response.function_call_arguments.delta",
                            **self._where(),
                            "delta": event.arguments,
                        }
                    )
                )
        elif isinstance(event, Done):
            cut = event.finish_reason == "length"
            if not self.output and self.kind is None:  # nothing was generated: an empty message
                events += self._open("message")
            events += self._close("incomplete" if cut else "completed")
            final = self._final(event, self.output)
            kind = "response.incomplete" if cut else "response.completed"
            events.append(self._lifecycle(kind, final))
        return events

    def error(self, exc: EngineError) -> ErrorBody:
        error = engine_error_body(OPENAI, exc)["error"]
        self._error = {"code": failure_code(exc), "message": error["message"]}
        return cast(
            ErrorBody,
            self._event(
                {
                    "type": "error",
                    "code": error["code"],
                    "message": error["message"],
                    "param": error["param"],
                }
            ),
        )

    # ------------------------------------------------------------ whole

    def whole(self, results: list[Collected]) -> p.Response:
        result = results[0]
        cut = result.done.finish_reason == "length"
        output: list[p.OutputItem] = []
        if result.thinking:
            summary: list[p.SummaryText] = [{"type": "summary_text", "text": result.thinking}]
            output.append({"id": self.ids("rs"), "type": "reasoning", "summary": summary})
        calls = result.tool_calls if self.body.parallel_tool_calls else result.tool_calls[:1]
        if result.text or not calls:
            output.append(
                {
                    "id": self.ids("msg"),
                    "type": "message",
                    "status": "incomplete" if cut and not calls else "completed",
                    "role": "assistant",
                    "content": [_text_part(result.text)],
                }
            )
        for call in calls:
            output.append(
                {
                    "id": self.ids("fc"),
                    "type": "function_call",
                    "status": "completed",
                    "arguments": call.arguments,
                    "call_id": call.id or self.ids("call"),
                    "name": call.name,
                }
            )
        return self._final(result.done, output)
