"""Ollama request models → Engine API requests."""

from __future__ import annotations

import functools
import json
import logging

from ...engine import api, sampling
from ...engine.durations import parse_keep_alive
from ...modelfile import PARAMETER_TYPES
from . import protocol as oll

log = logging.getLogger("mullama.http.ollama")

# Ollama options that size or place the model in memory. Mullama fixes them when the model is
# loaded (from its Modelfile or the daemon's settings), so a request never reloads a model.
LOAD_TIME_OPTIONS = frozenset(
    {
        "num_ctx",
        "num_batch",
        "num_gpu",
        "main_gpu",
        "num_thread",
        "num_parallel",
        "numa",
        "low_vram",
        "f16_kv",
        "logits_all",
        "vocab_only",
        "use_mmap",
        "use_mlock",
        "embedding_only",
    }
)


def unloads(keep_alive: object) -> bool:
    """True when ``keep_alive`` asks to unload the model right away (0, "0", "0s"…)."""
    return keep_alive is not None and parse_keep_alive(keep_alive, 1.0) == 0


def sampling_options(body: oll.Run) -> api.SamplingOptions:
    """``options`` and ``logprobs``/``top_logprobs`` as sampling options.

    Load-time options (checked by the model) are ignored with one log line per value: the
    model keeps the context and placement it was loaded with (its Modelfile decides them).
    """
    params = {}
    for name, value in body.options.items():
        if name in LOAD_TIME_OPTIONS:
            _note_load_time(body.model, name, json.dumps(value))
        elif name not in PARAMETER_TYPES:
            _note_unknown(name)
        else:
            params[name] = value
    if params.get("num_predict") == -2:  # Ollama's "fill the context" is our -1
        params["num_predict"] = -1
    options = sampling.from_parameters(params)
    if isinstance(body, oll.Generating):
        options.logprobs, options.top_logprobs = body.logprobs, body.top_logprobs
    return options


@functools.lru_cache(maxsize=256)
def _note_load_time(model: str, name: str, value: str) -> None:
    log.info(
        "%s: options.%s=%s ignored; load-time options come from the model's Modelfile "
        "(PARAMETER %s) and never reload a model",
        model,
        name,
        value,
        name,
    )


@functools.lru_cache(maxsize=256)
def _note_unknown(name: str) -> None:
    log.warning("ignoring unknown option %r", name)


def _tool_call(call: oll.ToolCall) -> api.ToolCall:
    arguments = call.function.arguments
    if isinstance(arguments, dict):
        arguments = json.dumps(arguments, ensure_ascii=False)
    return api.ToolCall(call.id, call.function.name, arguments)


def messages(items: list[oll.Message]) -> list[api.Message]:
    return [
        api.Message(
            m.role,
            m.content,
            thinking=m.thinking,
            images=list(m.images or []),
            tool_calls=[_tool_call(c) for c in m.tool_calls],
            tool_call_id=m.tool_call_id,
            name=m.tool_name or m.name,
        )
        for m in items
    ]


def chat_request(body: oll.ChatBody) -> api.ChatRequest:
    return api.ChatRequest(
        model=body.model,
        messages=messages(body.messages),
        options=sampling_options(body),
        tools=body.tools or None,
        format=body.format,
        think=body.think,
        keep_alive=body.keep_alive,
    )


def generate_request(body: oll.GenerateBody) -> api.CompletionRequest:
    return api.CompletionRequest(
        model=body.model,
        prompt=body.prompt,
        options=sampling_options(body),
        raw=body.raw,
        system=body.system or None,
        template=body.template or None,
        suffix=body.suffix or None,
        format=body.format,
        think=body.think,
        keep_alive=body.keep_alive,
        context=body.context or None,
        images=list(body.images or []),
    )


def embed_request(body: oll.EmbedBody) -> api.EmbedRequest:
    """Options are checked (by the model), none changes an embedding."""
    return api.EmbedRequest(
        model=body.model,
        inputs=body.inputs,
        truncate=body.truncate,
        dimensions=body.dimensions,
        keep_alive=body.keep_alive,
    )
