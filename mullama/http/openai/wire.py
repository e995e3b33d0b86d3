"""Engine events as OpenAI chat completion and text completion objects."""

from __future__ import annotations

from ... import __version__
from ...engine.api import Done, EngineError, Event, TextDelta, ThinkingDelta, ToolCallDelta
from ..common.wire import Chunk, Writer
from ..errors import OPENAI, engine_error_body
from ..events import Collected

FINISH_REASONS = {"stop": "stop", "length": "length", "tool_calls": "tool_calls"}
FINGERPRINT = f"fp_mullama_{__version__}"


def finish_reason(done: Done) -> str:
    return FINISH_REASONS.get(done.finish_reason, "stop")


def usage(done: Done) -> dict:
    u = done.usage
    return {
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.total_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cached_tokens},
    }


def chat_logprobs(entries: list[dict]) -> dict:
    def one(e: dict) -> dict:
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


def text_logprobs(entries: list[dict], offset: int) -> dict:
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


def tool_call_delta(event: ToolCallDelta) -> dict:
    delta: dict = {"index": event.index}
    if event.id is not None:
        delta.update(id=event.id, type="function")
    function = {"arguments": event.arguments}
    if event.name is not None:
        function["name"] = event.name
    delta["function"] = function
    return delta


class OpenAIWriter(Writer):
    object_kind = ""

    def __init__(self, model: str, request_id: str, created: int, include_usage: bool = False):
        self.model, self.request_id, self.created = model, request_id, created
        self.include_usage = include_usage

    def head(self, kind: str, model: str) -> dict:
        return {
            "id": self.request_id,
            "object": kind,
            "created": self.created,
            "model": model,
            "system_fingerprint": FINGERPRINT,
        }

    def error(self, exc: EngineError) -> Chunk:
        return engine_error_body(OPENAI, exc)


class ChatWriter(OpenAIWriter):
    """``chat.completion`` (whole) and ``chat.completion.chunk`` objects (streamed)."""

    def __init__(self, *args, logprobs: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.logprobs = logprobs

    def _chunk(self, delta: dict, finish: str | None = None, logprobs: dict | None = None):
        choice = {"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": finish}
        usage_field = {"usage": None} if self.include_usage else {}
        return {
            **self.head("chat.completion.chunk", self.model),
            "choices": [choice],
            **usage_field,
        }

    def opening(self) -> list[Chunk]:
        return [self._chunk({"role": "assistant", "content": ""})]

    def event(self, event: Event, index: int = 0) -> list[Chunk]:
        if isinstance(event, TextDelta):
            logprobs = chat_logprobs(event.logprobs) if event.logprobs else None
            return [self._chunk({"content": event.text}, logprobs=logprobs)]
        if isinstance(event, ThinkingDelta):
            return [self._chunk({"reasoning_content": event.text, "thinking": event.text})]
        if isinstance(event, ToolCallDelta):
            return [self._chunk({"tool_calls": [tool_call_delta(event)]})]
        if not isinstance(event, Done):
            return []
        chunks = [self._chunk({}, finish=finish_reason(event))]
        if self.include_usage:
            head = self.head("chat.completion.chunk", self.model)
            chunks.append({**head, "choices": [], "usage": usage(event)})
        return chunks

    def closing(self) -> list[Chunk]:
        return ["[DONE]"]

    def whole(self, results: list[Collected]) -> dict:
        result = results[0]
        message: dict = {"role": "assistant", "content": result.text}
        if result.thinking:
            # reasoning_content as DeepSeek and vLLM name it; thinking as Mullama's guide does
            message["reasoning_content"] = message["thinking"] = result.thinking
        if result.tool_calls:
            message["tool_calls"] = [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments},
                }
                for c in result.tool_calls
            ]
        choice = {
            "index": 0,
            "message": message,
            "logprobs": chat_logprobs(result.logprobs) if self.logprobs else None,
            "finish_reason": finish_reason(result.done),
        }
        return {
            **self.head("chat.completion", self.model or result.done.model),
            "choices": [choice],
            "usage": usage(result.done),
        }


class CompletionWriter(OpenAIWriter):
    """``text_completion`` objects, one choice per prompt; ``echo`` repeats the prompts."""

    def __init__(self, *args, prompts: list[str], echo: bool, logprobs: bool, **kwargs):
        super().__init__(*args, **kwargs)
        self.echo = echo
        self.prompts = [p if echo else "" for p in prompts]
        self.logprobs = logprobs
        self.offsets = [len(p) for p in self.prompts]
        self.total = Done("stop")

    def _chunk(self, choice: dict) -> dict:
        return {**self.head("text_completion", self.model), "choices": [choice]}

    def opening(self) -> list[Chunk]:
        return [
            self._chunk({"index": i, "text": p, "logprobs": None, "finish_reason": None})
            for i, p in enumerate(self.prompts)
            if self.echo
        ]

    def event(self, event: Event, index: int = 0) -> list[Chunk]:
        choice = {"index": index, "text": "", "logprobs": None, "finish_reason": None}
        if isinstance(event, TextDelta):
            choice["text"] = event.text
            if self.logprobs:
                choice["logprobs"] = text_logprobs(event.logprobs or [], self.offsets[index])
            self.offsets[index] += len(event.text)
        elif isinstance(event, Done):
            choice["finish_reason"] = finish_reason(event)
            self.total.usage.prompt_tokens += event.usage.prompt_tokens
            self.total.usage.completion_tokens += event.usage.completion_tokens
        else:
            return []
        return [self._chunk(choice)]

    def closing(self) -> list[Chunk]:
        head = self.head("text_completion", self.model)
        return (
            [{**head, "choices": [], "usage": usage(self.total)}] if self.include_usage else []
        ) + ["[DONE]"]

    def whole(self, results: list[Collected]) -> dict:
        choices = []
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
        for result in results:
            done.usage.prompt_tokens += result.done.usage.prompt_tokens
            done.usage.completion_tokens += result.done.usage.completion_tokens
            done.usage.cached_tokens += result.done.usage.cached_tokens
        return {
            **self.head("text_completion", self.model or done.model),
            "choices": choices,
            "usage": usage(done),
        }
