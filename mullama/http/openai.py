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

from .. import __version__
from ..engine.api import (
    Done,
    EngineError,
    InvalidRequest,
    ModelInfo,
    TextDelta,
    ThinkingDelta,
    ToolCallDelta,
)
from . import openai_requests as parse
from .errors import OPENAI, engine_error_body
from .events import Collected, collect, merge, primed
from .fields import get, json_body
from .sse import open_stream, sse

blueprint = Blueprint("openai", url_prefix="/v1")

FINISH_REASONS = {"stop": "stop", "length": "length", "tool_calls": "tool_calls"}
FINGERPRINT = f"fp_mullama_{__version__}"


def _finish(done: Done) -> str:
    return FINISH_REASONS.get(done.finish_reason, "stop")


def _usage(done: Done) -> dict:
    u = done.usage
    return {
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.total_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cached_tokens},
    }


def _head(kind: str, model: str, request_id: str, created: int) -> dict:
    return {
        "id": request_id,
        "object": kind,
        "created": created,
        "model": model,
        "system_fingerprint": FINGERPRINT,
    }


def _chat_logprobs(entries: list[dict]) -> dict:
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


def _text_logprobs(entries: list[dict], offset: int) -> dict:
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


def _tool_calls(result: Collected) -> list[dict]:
    return [
        {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
        for c in result.tool_calls
    ]


# ---------------------------------------------------------------- chat completions


@blueprint.post("/chat/completions")
async def chat_completions(request: Request):
    body = json_body(request)
    chat = parse.chat_request(body)
    flags = parse.stream_flags(body)
    engine = request.app.ctx.engine
    model = chat.model or await engine.default_model()
    request_id, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
    async with primed(engine.chat(chat)) as events:
        if not flags.stream:
            result = await collect(events)
            message = {"role": "assistant", "content": result.text}
            if result.thinking:
                # reasoning_content as DeepSeek and vLLM name it; thinking as Mullama's guide does
                message["reasoning_content"] = message["thinking"] = result.thinking
            if result.tool_calls:
                message["tool_calls"] = _tool_calls(result)
            choice = {
                "index": 0,
                "message": message,
                "logprobs": _chat_logprobs(result.logprobs) if chat.options.logprobs else None,
                "finish_reason": _finish(result.done),
            }
            return json(
                {
                    **_head("chat.completion", model or result.done.model, request_id, created),
                    "choices": [choice],
                    "usage": _usage(result.done),
                }
            )
        response = await open_stream(request)
        head = _head("chat.completion.chunk", model, request_id, created)
        usage_field = {"usage": None} if flags.include_usage else {}

        async def send(delta: dict, finish: str | None = None, logprobs: dict | None = None):
            choice = {"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": finish}
            await response.send(sse({**head, "choices": [choice], **usage_field}))

        await send({"role": "assistant", "content": ""})
        try:
            async for event in events:
                if isinstance(event, TextDelta):
                    logprobs = _chat_logprobs(event.logprobs) if event.logprobs else None
                    await send({"content": event.text}, logprobs=logprobs)
                elif isinstance(event, ThinkingDelta):
                    await send({"reasoning_content": event.text, "thinking": event.text})
                elif isinstance(event, ToolCallDelta):
                    await send({"tool_calls": [_tool_call_delta(event)]})
                elif isinstance(event, Done):
                    await send({}, finish=_finish(event))
                    if flags.include_usage:
                        await response.send(sse({**head, "choices": [], "usage": _usage(event)}))
            await response.send(sse("[DONE]"))
        except EngineError as exc:
            await response.send(sse(engine_error_body(OPENAI, exc)))
        await response.eof()


def _tool_call_delta(event: ToolCallDelta) -> dict:
    delta: dict = {"index": event.index}
    if event.id is not None:
        delta.update(id=event.id, type="function")
    function = {"arguments": event.arguments}
    if event.name is not None:
        function["name"] = event.name
    delta["function"] = function
    return delta


# ---------------------------------------------------------------- completions


@blueprint.post("/completions")
async def completions(request: Request):
    body = json_body(request)
    requests = parse.completion_requests(body)
    flags = parse.stream_flags(body)
    echo = get(body, "echo", bool, default=False)
    engine = request.app.ctx.engine
    model = requests[0].model or await engine.default_model()
    request_id, created = f"cmpl-{uuid.uuid4().hex[:24]}", int(time.time())
    wants_logprobs = requests[0].options.logprobs
    async with contextlib.AsyncExitStack() as stack:
        streams = [await stack.enter_async_context(primed(engine.complete(r))) for r in requests]
        merged = await stack.enter_async_context(contextlib.aclosing(merge(streams)))
        if not flags.stream:
            results = [Collected() for _ in requests]
            async for index, event in merged:
                results[index].add(event)
            choices = []
            for i, (req, result) in enumerate(zip(requests, results)):
                prefix = req.prompt if echo else ""
                choices.append(
                    {
                        "index": i,
                        "text": prefix + result.text,
                        "logprobs": _text_logprobs(result.logprobs, len(prefix))
                        if wants_logprobs
                        else None,
                        "finish_reason": _finish(result.done),
                    }
                )
            done = Done("stop", model=results[0].done.model)
            for result in results:
                done.usage.prompt_tokens += result.done.usage.prompt_tokens
                done.usage.completion_tokens += result.done.usage.completion_tokens
                done.usage.cached_tokens += result.done.usage.cached_tokens
            return json(
                {
                    **_head("text_completion", model or done.model, request_id, created),
                    "choices": choices,
                    "usage": _usage(done),
                }
            )
        response = await open_stream(request)
        head = _head("text_completion", model, request_id, created)
        total = Done("stop")
        offsets = [len(r.prompt) if echo else 0 for r in requests]
        try:
            if echo:
                for i, req in enumerate(requests):
                    await response.send(
                        sse(
                            {
                                **head,
                                "choices": [
                                    {
                                        "index": i,
                                        "text": req.prompt,
                                        "logprobs": None,
                                        "finish_reason": None,
                                    }
                                ],
                            }
                        )
                    )
            async for index, event in merged:
                choice = {"index": index, "text": "", "logprobs": None, "finish_reason": None}
                if isinstance(event, TextDelta):
                    choice["text"] = event.text
                    if wants_logprobs:
                        choice["logprobs"] = _text_logprobs(event.logprobs or [], offsets[index])
                    offsets[index] += len(event.text)
                elif isinstance(event, Done):
                    choice["finish_reason"] = _finish(event)
                    total.usage.prompt_tokens += event.usage.prompt_tokens
                    total.usage.completion_tokens += event.usage.completion_tokens
                else:
                    continue
                await response.send(sse({**head, "choices": [choice]}))
            if flags.include_usage:
                await response.send(sse({**head, "choices": [], "usage": _usage(total)}))
            await response.send(sse("[DONE]"))
        except EngineError as exc:
            await response.send(sse(engine_error_body(OPENAI, exc)))
        await response.eof()


# ---------------------------------------------------------------- embeddings


@blueprint.post("/embeddings")
async def embeddings(request: Request):
    body = json_body(request)
    embed = parse.embed_request(body)
    encoding = get(body, "encoding_format", str, default="float")
    if encoding not in ("float", "base64"):
        raise InvalidRequest("encoding_format must be float or base64", param="encoding_format")
    result = await request.app.ctx.engine.embed(embed)
    data = []
    for i, vector in enumerate(result.embeddings):
        value = (
            base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
            if encoding == "base64"
            else vector
        )
        data.append({"object": "embedding", "index": i, "embedding": value})
    return json(
        {
            "object": "list",
            "data": data,
            "model": embed.model or result.model,
            "usage": {"prompt_tokens": result.prompt_tokens, "total_tokens": result.prompt_tokens},
        }
    )


# ---------------------------------------------------------------- models


def model_object(info: ModelInfo) -> dict:
    created = 0
    if info.modified_at:
        with contextlib.suppress(ValueError):
            created = int(datetime.fromisoformat(info.modified_at).timestamp())
    flags = dict.fromkeys(("json", "tools", "thinking", "vision"), False)
    return {
        "id": info.name,
        "object": "model",
        "created": created,
        "owned_by": "mullama",
        "capabilities": {**flags, **{k: bool(v) for k, v in info.capabilities.items()}},
        "details": {
            "family": info.family,
            "parameter_size": info.parameter_size,
            "quantization": info.quantization,
            "size": info.size,
            "kind": info.kind,
        },
    }


@blueprint.get("/models")
async def list_models(request: Request):
    models = await request.app.ctx.engine.list_models()
    return json({"object": "list", "data": [model_object(m) for m in models]})


@blueprint.get("/models/<name:path>")
async def get_model(request: Request, name: str):
    for info in await request.app.ctx.engine.list_models():
        if info.name == name:
            return json(model_object(info))
    details = await request.app.ctx.engine.show_model(name)  # resolves aliases, or raises 404
    return json(model_object(details.info))
