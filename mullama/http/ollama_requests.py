"""Ollama request bodies as Engine API requests: every bad field is a 400 that names it."""

from __future__ import annotations

import functools
import json
import logging

from ..engine import sampling
from ..engine.api import (
    ChatRequest,
    CompletionRequest,
    EmbedRequest,
    InvalidRequest,
    Message,
    SamplingOptions,
    ToolCall,
)
from ..engine.durations import parse_keep_alive
from ..modelfile import PARAMETER_TYPES, coerce_parameter
from .fields import get

log = logging.getLogger("mullama.http.ollama")

ROLES = ("system", "user", "assistant", "tool")
THINK_LEVELS = ("low", "medium", "high")
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
# Ollama options llama.cpp's sampler no longer has: accepted and ignored, as Ollama does.
OBSOLETE_OPTIONS = frozenset({"penalize_newline", "tfs_z"})
NO_VISION = "images are not supported yet: Mullama cannot run vision models; send text only"


def model_name(body: dict, field: str = "model") -> str:
    """The model a request names (``model``, or the legacy ``name``)."""
    name = get(body, field, str) or get(body, "name", str)
    if not name or not name.strip():
        raise InvalidRequest(f"{field} is required", param=field)
    return name


def stream_flag(body: dict) -> bool:
    return get(body, "stream", bool, default=True)


def unloads(keep_alive) -> bool:
    """True when ``keep_alive`` asks to unload the model right away (0, "0", "0s"…)."""
    return keep_alive is not None and parse_keep_alive(keep_alive, 1.0) == 0


def sampling_options(body: dict, model: str) -> SamplingOptions:
    """``options`` (Modelfile PARAMETER names) and ``logprobs``/``top_logprobs`` as sampling.

    Load-time options are validated, then ignored with one log line per value: the model keeps
    the context and placement it was loaded with (its Modelfile decides them).
    """
    raw = get(body, "options", dict) or {}
    params = {}
    for name, value in raw.items():
        if value is None or name in OBSOLETE_OPTIONS:
            continue
        if name not in PARAMETER_TYPES and name not in LOAD_TIME_OPTIONS:
            _note_unknown(name)
            continue
        if name in PARAMETER_TYPES:
            try:
                value = coerce_parameter(name, value)
            except ValueError as exc:
                raise InvalidRequest(f"invalid options: {exc}", param=f"options.{name}") from None
        if name in LOAD_TIME_OPTIONS:
            _note_load_time(model, name, json.dumps(value))
            continue
        params[name] = value
    if params.get("num_predict") == -2:  # Ollama's "fill the context" is our -1
        params["num_predict"] = -1
    options = sampling.from_parameters(params)
    options.logprobs = get(body, "logprobs", bool, default=False)
    options.top_logprobs = get(body, "top_logprobs", int, default=0)
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


def _format(body: dict):
    value = body.get("format")
    if value in (None, ""):
        return None
    if value == "json" or isinstance(value, dict):
        return value
    raise InvalidRequest('format must be "json" or a JSON schema object', param="format")


def _think(body: dict):
    value = body.get("think")
    if value is None or isinstance(value, bool) or value in THINK_LEVELS:
        return value
    raise InvalidRequest('think must be true, false, "low", "medium" or "high"', param="think")


def _tools(body: dict) -> list[dict] | None:
    tools = get(body, "tools", list)
    if tools is None:
        return None
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict) or not isinstance(tool.get("function"), dict):
            raise InvalidRequest(
                f"tools[{i}] must be an object with a function", param=f"tools[{i}]"
            )
    return tools or None


def _no_images(data: dict, where: str = "") -> None:
    if get(data, "images", list, where=where):
        raise InvalidRequest(NO_VISION, param=f"{where}images")


def _tool_call(call, where: str) -> ToolCall:
    if not isinstance(call, dict) or not isinstance(call.get("function"), dict):
        raise InvalidRequest(f"{where} must be an object with a function", param=where)
    function = call["function"]
    name = get(function, "name", str, required=True, where=f"{where}.function.")
    arguments = get(function, "arguments", dict, str, default={}, where=f"{where}.function.")
    if isinstance(arguments, dict):
        arguments = json.dumps(arguments, ensure_ascii=False)
    return ToolCall(get(call, "id", str, default="", where=f"{where}."), name, arguments)


def messages(body: dict) -> list[Message]:
    out = []
    for i, raw in enumerate(get(body, "messages", list) or []):
        where = f"messages[{i}]."
        if not isinstance(raw, dict):
            raise InvalidRequest(f"messages[{i}] must be an object", param=f"messages[{i}]")
        role = get(raw, "role", str, required=True, where=where)
        if role not in ROLES:
            raise InvalidRequest(
                f"{where}role must be one of {', '.join(ROLES)}, got {role!r}", param=f"{where}role"
            )
        _no_images(raw, where)
        calls = [
            _tool_call(c, f"{where}tool_calls[{j}]")
            for j, c in enumerate(get(raw, "tool_calls", list, default=[], where=where))
        ]
        out.append(
            Message(
                role,
                get(raw, "content", str, default="", where=where),
                thinking=get(raw, "thinking", str, where=where),
                tool_calls=calls,
                tool_call_id=get(raw, "tool_call_id", str, where=where),
                name=get(raw, "tool_name", str, where=where) or get(raw, "name", str, where=where),
            )
        )
    return out


def chat_request(body: dict) -> ChatRequest:
    model = model_name(body)
    return ChatRequest(
        model=model,
        messages=messages(body),
        options=sampling_options(body, model),
        tools=_tools(body),
        format=_format(body),
        think=_think(body),
        keep_alive=body.get("keep_alive"),
    )


def generate_request(body: dict) -> CompletionRequest:
    model = model_name(body)
    _no_images(body)
    context = get(body, "context", list)
    if context is not None and not all(type(t) is int for t in context):
        raise InvalidRequest("context must be an array of integers", param="context")
    return CompletionRequest(
        model=model,
        prompt=get(body, "prompt", str, default=""),
        options=sampling_options(body, model),
        raw=get(body, "raw", bool, default=False),
        system=get(body, "system", str) or None,
        template=get(body, "template", str) or None,
        suffix=get(body, "suffix", str) or None,
        format=_format(body),
        think=_think(body),
        keep_alive=body.get("keep_alive"),
        context=context or None,
    )


def embed_request(body: dict, field: str = "input") -> EmbedRequest:
    """``/api/embed`` (``input``: a string or a list) and the legacy ``/api/embeddings``
    (``prompt``: one string). Options are checked, none changes an embedding."""
    model = model_name(body)
    sampling_options(body, model)
    value = get(body, field, str, list, default=[])
    inputs = ([value] if value else []) if isinstance(value, str) else value
    if not all(isinstance(v, str) for v in inputs):
        raise InvalidRequest(f"{field} must be a string or an array of strings", param=field)
    return EmbedRequest(
        model=model,
        inputs=inputs,
        truncate=get(body, "truncate", bool, default=True),
        dimensions=get(body, "dimensions", int),
        keep_alive=body.get("keep_alive"),
    )
