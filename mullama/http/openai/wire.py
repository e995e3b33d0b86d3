"""Engine events as OpenAI chat completion and text completion objects (see the reply shapes
in :mod:`.protocol`)."""

from __future__ import annotations

from typing import Any

from ... import __version__
from ...engine.api import Done, EngineError, Event, TextDelta, ThinkingDelta, ToolCallDelta
from ..common.wire import ErrorBody, Writer
from ..errors import OPENAI, engine_error_body
from ..events import Collected
from . import protocol as p

FINISH_REASONS = {"stop": "stop", "length": "length", "tool_calls": "tool_calls"}
FINGERPRINT = f"fp_mullama_{__version__}"


def finish_reason(done: Done) -> str:
    return FINISH_REASONS.get(done.finish_reason, "stop")


def usage(done: Done) -> p.CompletionUsage:
    u = done.usage
    return {
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.total_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cached_tokens},
    }


def chat_logprobs(entries: list[dict]) -> p.ChatLogprobs:
    def one(e: dict) -> p.TokenLogprob:
        return {
            "token": e["token"],
            "logprob": e["logprob"],
            "bytes": list(e["token"].encode()),
            "top_logprobs": [
                {"token": t["token"], "logprob": t["logprob"], "bytes": list(t["token"].encode())}
                for t in e.get("top_logprobs") or []
            ],
        }

    return {"content": [one(e) for e in entries]}


def text_logprobs(entries: list[dict], offset: int) -> p.TextLogprobs:
    offsets = []
    for e in entries:
        offsets.append(offset)
        offset += len(e["token"])
    return {
        "tokens": [e["token"] for e in entries],
        "token_logprobs": [e["logprob"] for e in entries],
        "top_logprobs": [
            {t["token"]: t["logprob"] for t in e.get("top_logprobs") or []} for e in entries
        ],
        "text_offset": offsets,
    }


def tool_call_delta(event: ToolCallDelta) -> p.ChunkToolCall:
    function: p.ChunkFunction = {"arguments": event.arguments}
    if event.name is not None:
        function["name"] = event.name
    if event.id is None:
        return {"index": event.index, "function": function}
    return {"index": event.index, "id": event.id, "type": "function", "function": function}


class OpenAIWriter(Writer[p.Chunk]):
    def __init__(self, model: str, request_id: str, created: int, include_usage: bool = False):
        self.model, self.request_id, self.created = model, request_id, created
        self.include_usage = include_usage

    def head(self, model: str) -> dict[str, Any]:
        """The fields every object starts with (``object`` comes second, from the caller)."""
        return {
            "id": self.request_id,
            "created": self.created,
            "model": model,
            "system_fingerprint": FINGERPRINT,
        }

    def error(self, exc: EngineError) -> ErrorBody:
        return engine_error_body(OPENAI, exc)


class ChatWriter(OpenAIWriter):
    """``chat.completion`` (whole) and ``chat.completion.chunk`` objects (streamed)."""

    def __init__(self, *args: Any, logprobs: bool = False, choices: int = 1, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.logprobs = logprobs
        self.choices = choices  # n: one stream per choice, all of the same prompt
        self.finished: list[Done | None] = [None] * choices

    def _chunk(
        self,
        choices: list[p.ChunkChoice],
        usage: p.CompletionUsage | None = None,
    ) -> p.ChatCompletionChunk:
        chunk: p.ChatCompletionChunk = {
            "id": self.request_id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": FINGERPRINT,
            "choices": choices,
        }
        if self.include_usage:
            chunk["usage"] = usage
        return chunk

    def _delta(
        self,
        delta: p.ChunkDelta,
        finish: str | None = None,
        logprobs: p.ChatLogprobs | None = None,
        index: int = 0,
    ) -> p.ChatCompletionChunk:
        return self._chunk(
            [{"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish}]
        )

    def opening(self) -> list[p.Chunk]:
        return [
            self._delta({"role": "assistant", "content": ""}, index=i) for i in range(self.choices)
        ]

    def event(self, event: Event, index: int = 0) -> list[p.Chunk]:
        if isinstance(event, TextDelta):
            logprobs = chat_logprobs(event.logprobs) if event.logprobs else None
            return [self._delta({"content": event.text}, logprobs=logprobs, index=index)]
        if isinstance(event, ThinkingDelta):
            delta: p.ChunkDelta = {"reasoning_content": event.text, "thinking": event.text}
            return [self._delta(delta, index=index)]
        if isinstance(event, ToolCallDelta):
            return [self._delta({"tool_calls": [tool_call_delta(event)]}, index=index)]
        if not isinstance(event, Done):
            return []
        self.finished[index] = event
        return [self._delta({}, finish=finish_reason(event), index=index)]

    def closing(self) -> list[p.Chunk]:
        done = [d for d in self.finished if d is not None]
        if self.include_usage and done:
            return [self._chunk([], usage(shared_prompt(done))), p.DONE_MARKER]
        return [p.DONE_MARKER]

    def whole(self, results: list[Collected]) -> p.ChatCompletion:
        return p.ChatCompletion(
            object="chat.completion",
            **self.head(self.model or results[0].done.model),
            choices=[self._choice(i, result) for i, result in enumerate(results)],
            usage=usage(shared_prompt([r.done for r in results])),
        )

    def _choice(self, index: int, result: Collected) -> p.ChatChoice:
        message = p.AssistantMessage(role="assistant", content=result.text)
        if result.thinking:
            message.reasoning_content = message.thinking = result.thinking
        if result.tool_calls:
            message.tool_calls = [
                p.AssistantToolCall(
                    id=c.id,
                    type="function",
                    function=p.AssistantFunction(name=c.name, arguments=c.arguments),
                )
                for c in result.tool_calls
            ]
        return p.ChatChoice(
            index=index,
            message=message,
            logprobs=chat_logprobs(result.logprobs) if self.logprobs else None,
            finish_reason=finish_reason(result.done),
        )


def shared_prompt(done: list[Done]) -> Done:
    """Usage of several choices of one prompt: the prompt counted once, every completion."""
    total = Done("stop", model=done[0].model)
    total.usage.prompt_tokens = done[0].usage.prompt_tokens
    total.usage.cached_tokens = done[0].usage.cached_tokens
    total.usage.completion_tokens = sum(d.usage.completion_tokens for d in done)
    return total


class CompletionWriter(OpenAIWriter):
    """``text_completion`` objects, one choice per prompt; ``echo`` repeats the prompts."""

    def __init__(
        self,
        *args: Any,
        prompts: list[str],
        echo: bool,
        logprobs: bool,
        choices_per_prompt: int = 1,
        **kwargs: Any,
    ):
        super().__init__(*args, **kwargs)
        self.n = choices_per_prompt  # stream i is choice i % n of prompt i // n
        self.echo = echo
        self.prompts = [prompt if echo else "" for prompt in prompts]
        self.logprobs = logprobs
        self.offsets = [len(prompt) for prompt in self.prompts]
        self.total = Done("stop")

    def _chunk(self, choices: list[p.TextChoice]) -> p.TextCompletionChunk:
        return {
            "id": self.request_id,
            "object": "text_completion",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": FINGERPRINT,
            "choices": choices,
        }

    def opening(self) -> list[p.Chunk]:
        return [
            self._chunk([{"index": i, "text": text, "logprobs": None, "finish_reason": None}])
            for i, text in enumerate(self.prompts)
            if self.echo
        ]

    def event(self, event: Event, index: int = 0) -> list[p.Chunk]:
        choice: p.TextChoice = {"index": index, "text": "", "logprobs": None, "finish_reason": None}
        if isinstance(event, TextDelta):
            choice["text"] = event.text
            if self.logprobs:
                choice["logprobs"] = text_logprobs(event.logprobs or [], self.offsets[index])
            self.offsets[index] += len(event.text)
        elif isinstance(event, Done):
            choice["finish_reason"] = finish_reason(event)
            if index % self.n == 0:
                self.total.usage.prompt_tokens += event.usage.prompt_tokens
                self.total.usage.cached_tokens += event.usage.cached_tokens
            self.total.usage.completion_tokens += event.usage.completion_tokens
        else:
            return []
        return [self._chunk([choice])]

    def closing(self) -> list[p.Chunk]:
        chunks: list[p.Chunk] = []
        if self.include_usage:
            last = self._chunk([])
            last["usage"] = usage(self.total)
            chunks.append(last)
        return [*chunks, p.DONE_MARKER]

    def whole(self, results: list[Collected]) -> p.TextCompletion:
        choices: list[p.TextChoice] = []
        for i, (prefix, result) in enumerate(zip(self.prompts, results)):
            choices.append(
                {
                    "index": i,
                    "text": prefix + result.text,
                    "logprobs": text_logprobs(result.logprobs, len(prefix))
                    if self.logprobs
                    else None,
                    "finish_reason": finish_reason(result.done),
                }
            )
        done = Done("stop", model=results[0].done.model)
        for i, result in enumerate(results):
            if i % self.n == 0:  # each prompt once, however many choices it has
                done.usage.prompt_tokens += result.done.usage.prompt_tokens
                done.usage.cached_tokens += result.done.usage.cached_tokens
            done.usage.completion_tokens += result.done.usage.completion_tokens
        return p.TextCompletion(
            object="text_completion",
            **self.head(self.model or done.model),
            choices=choices,
            usage=usage(done),
        )
