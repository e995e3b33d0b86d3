"""OpenAI request bodies → Engine API requests."""

from __future__ import annotations

import json
from dataclasses import dataclass

from ..engine.api import (
    ChatRequest,
    CompletionRequest,
    EmbedRequest,
    InvalidRequest,
    Message,
    SamplingOptions,
    ToolCall,
)
from .fields import data_url_image, get, string_list

_ROLES = {
    "system": "system",
    "developer": "system",
    "user": "user",
    "assistant": "assistant",
    "tool": "tool",
    "function": "tool",
}


@dataclass
class StreamFlags:
    stream: bool = False
    include_usage: bool = False


def stream_flags(body: dict) -> StreamFlags:
    stream = get(body, "stream", bool, default=False)
    options = get(body, "stream_options", dict, default={})
    return StreamFlags(
        stream, get(options, "include_usage", bool, default=False, where="stream_options.")
    )


def _sampling(body: dict) -> SamplingOptions:
    if get(body, "n", int, default=1) != 1:
        raise InvalidRequest("n must be 1: one choice per request is supported", param="n")
    if get(body, "logit_bias", dict):
        raise InvalidRequest("logit_bias is not supported", param="logit_bias")
    max_tokens = get(body, "max_completion_tokens", int)
    if max_tokens is None:
        max_tokens = get(body, "max_tokens", int)
    if max_tokens is not None and max_tokens < 1:
        param = "max_completion_tokens" if "max_completion_tokens" in body else "max_tokens"
        raise InvalidRequest(f"{param} must be at least 1, got {max_tokens}", param=param)
    return SamplingOptions(
        temperature=get(body, "temperature", float),
        top_p=get(body, "top_p", float),
        top_k=get(body, "top_k", int),
        min_p=get(body, "min_p", float),
        repeat_penalty=get(body, "repeat_penalty", float),
        presence_penalty=get(body, "presence_penalty", float),
        frequency_penalty=get(body, "frequency_penalty", float),
        seed=get(body, "seed", int),
        max_tokens=max_tokens,
        stop=string_list(body, "stop"),
        # llama-server's extensions, accepted the same way
        ignore_eos=get(body, "ignore_eos", bool, default=False),
        grammar=get(body, "grammar", str),
    )


def _response_format(body: dict):
    fmt = get(body, "response_format", dict)
    if fmt is None:
        return None
    kind = get(fmt, "type", str, required=True, where="response_format.")
    if kind == "text":
        return None
    if kind == "json_object":
        return "json"
    if kind == "json_schema":
        spec = get(fmt, "json_schema", dict, required=True, where="response_format.")
        return get(spec, "schema", dict, default={}, where="response_format.json_schema.")
    raise InvalidRequest(
        f"response_format.type must be text, json_object or json_schema, got {kind!r}",
        param="response_format.type",
    )


def _content(value, where: str) -> tuple[str, list[str]]:
    """Message content (a string or content parts) as text and base64 images."""
    if value is None or isinstance(value, str):
        return value or "", []
    if not isinstance(value, list):
        raise InvalidRequest(
            f"{where}content must be a string or an array of content parts", param=f"{where}content"
        )
    texts, images = [], []
    for i, part in enumerate(value):
        at = f"{where}content[{i}]."
        if not isinstance(part, dict):
            raise InvalidRequest(f"{at[:-1]} must be an object", param=at[:-1])
        kind = get(part, "type", str, required=True, where=at)
        if kind in ("text", "input_text"):
            texts.append(get(part, "text", str, required=True, where=at))
        elif kind == "image_url":
            image = part.get("image_url")
            url = (
                image
                if isinstance(image, str)
                else get(part, "image_url", dict, required=True, where=at).get("url")
            )
            if not isinstance(url, str):
                raise InvalidRequest(
                    f"{at}image_url.url must be a string", param=f"{at}image_url.url"
                )
            images.append(data_url_image(url, f"{at}image_url.url"))
        else:
            raise InvalidRequest(
                f"{at}type {kind!r} is not supported (use text or image_url)", param=f"{at}type"
            )
    return "\n".join(texts), images


def _tool_calls(value, where: str) -> list[ToolCall]:
    calls = []
    for i, call in enumerate(value or []):
        at = f"{where}tool_calls[{i}]."
        if not isinstance(call, dict):
            raise InvalidRequest(f"{at[:-1]} must be an object", param=at[:-1])
        function = get(call, "function", dict, required=True, where=at)
        arguments = function.get("arguments", "")
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments)
        calls.append(
            ToolCall(
                get(call, "id", str, default=f"call_{i}", where=at),
                get(function, "name", str, required=True, where=f"{at}function."),
                arguments,
            )
        )
    return calls


def messages(body: dict) -> list[Message]:
    items = get(body, "messages", list, required=True)
    if not items:
        raise InvalidRequest("messages must not be empty", param="messages")
    result = []
    for i, item in enumerate(items):
        at = f"messages[{i}]."
        if not isinstance(item, dict):
            raise InvalidRequest(f"messages[{i}] must be an object", param=f"messages[{i}]")
        role = get(item, "role", str, required=True, where=at)
        if role not in _ROLES:
            raise InvalidRequest(
                f"{at}role must be one of {', '.join(_ROLES)}, got {role!r}", param=f"{at}role"
            )
        text, images = _content(item.get("content"), at)
        result.append(
            Message(
                role=_ROLES[role],
                content=text,
                images=images,
                thinking=get(item, "reasoning_content", str, where=at),
                tool_calls=_tool_calls(get(item, "tool_calls", list, where=at), at),
                tool_call_id=get(item, "tool_call_id", str, where=at),
                name=get(item, "name", str, where=at),
            )
        )
    return result


def _think(body: dict):
    effort = get(body, "reasoning_effort", str)
    if effort is None:
        return None
    if effort not in ("none", "minimal", "low", "medium", "high"):
        raise InvalidRequest(
            "reasoning_effort must be none, minimal, low, medium or high", param="reasoning_effort"
        )
    return False if effort == "none" else ("low" if effort == "minimal" else effort)


def chat_request(body: dict) -> ChatRequest:
    options = _sampling(body)
    options.logprobs = get(body, "logprobs", bool, default=False)
    options.top_logprobs = get(body, "top_logprobs", int, default=0)
    if options.top_logprobs and not options.logprobs:
        raise InvalidRequest("top_logprobs requires logprobs to be true", param="top_logprobs")
    tools = get(body, "tools", list)
    return ChatRequest(
        model=get(body, "model", str, default=""),
        messages=messages(body),
        options=options,
        tools=tools or None,
        tool_choice=get(body, "tool_choice", str, dict),
        format=_response_format(body),
        think=_think(body),
    )


def completion_requests(body: dict) -> list[CompletionRequest]:
    """One request per prompt (a string, a list of strings, tokens, or a list of token lists)."""
    if get(body, "best_of", int, default=1) != 1:
        raise InvalidRequest("best_of must be 1", param="best_of")
    prompt = body.get("prompt")
    if isinstance(prompt, str) or (
        isinstance(prompt, list)
        and prompt
        and all(isinstance(p, int) and not isinstance(p, bool) for p in prompt)
    ):
        prompts = [prompt]
    elif isinstance(prompt, list) and prompt and all(isinstance(p, (str, list)) for p in prompt):
        prompts = prompt
    else:
        raise InvalidRequest(
            "prompt must be a string, an array of strings or an array of tokens", param="prompt"
        )
    logprobs = get(body, "logprobs", int)
    if logprobs is not None and not 0 <= logprobs <= 20:
        raise InvalidRequest("logprobs must be between 0 and 20", param="logprobs")
    model = get(body, "model", str, default="")
    suffix = get(body, "suffix", str)
    requests = []
    for i, p in enumerate(prompts):
        options = _sampling(body)
        options.logprobs = logprobs is not None
        options.top_logprobs = logprobs or 0
        if isinstance(p, list):
            if not all(isinstance(t, int) and not isinstance(t, bool) for t in p):
                raise InvalidRequest(
                    f"prompt[{i}] must be a string or an array of token ids", param="prompt"
                )
            requests.append(
                CompletionRequest(model, "", options, raw=True, suffix=suffix, context=p)
            )
        else:
            requests.append(CompletionRequest(model, p, options, raw=True, suffix=suffix))
    return requests


def embed_request(body: dict) -> EmbedRequest:
    inputs = body.get("input")
    if isinstance(inputs, str):
        inputs = [inputs]
    if not isinstance(inputs, list) or not inputs or not all(isinstance(t, str) for t in inputs):
        raise InvalidRequest("input must be a non-empty string or array of strings", param="input")
    return EmbedRequest(
        model=get(body, "model", str, default=""),
        inputs=inputs,
        dimensions=get(body, "dimensions", int),
    )
