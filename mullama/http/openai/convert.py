"""OpenAI request models → Engine API requests."""

from __future__ import annotations

import dataclasses
import json
import random
from typing import Any, TypeVar

from ...engine import api
from . import protocol as oai


def _sampling(body: oai.Sampled) -> api.SamplingOptions:
    max_tokens = body.max_completion_tokens
    return api.SamplingOptions(
        temperature=body.temperature,
        top_p=body.top_p,
        top_k=body.top_k,
        min_p=body.min_p,
        repeat_penalty=body.repeat_penalty,
        presence_penalty=body.presence_penalty,
        frequency_penalty=body.frequency_penalty,
        seed=body.seed,
        max_tokens=body.max_tokens if max_tokens is None else max_tokens,
        stop=body.stop,
        ignore_eos=body.ignore_eos,
        grammar=body.grammar,
        logit_bias=body.logit_bias,
        draft_max=body.draft_max,
        draft_min=body.draft_min,
    )


def _format(fmt: oai.ResponseFormat | None, json_schema: dict | None = None) -> Any:
    """The engine's ``format``: a JSON schema, "json", or None. ``json_schema`` is llama-server's
    top-level field, used where ``response_format`` sets no schema of its own."""
    if fmt is None or fmt.type == "text":
        return json_schema
    if fmt.type == "json_object":
        return fmt.schema_ or json_schema or "json"
    return fmt.json_schema.schema_ if fmt.json_schema else {}


def _content(value: str | list[oai.ContentPart] | None) -> tuple[str, list[str]]:
    """Message content as text and images (base64, or http(s) URLs to fetch)."""
    if value is None or isinstance(value, str):
        return value or "", []
    texts = [p.text or "" for p in value if p.type != "image_url"]
    images = [p.image for p in value if p.type == "image_url"]
    return "\n".join(texts), images


def _tool_calls(calls: list[oai.ToolCall] | None) -> list[api.ToolCall]:
    out = []
    for i, call in enumerate(calls or []):
        arguments = call.function.arguments
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments)
        out.append(api.ToolCall(call.id or f"call_{i}", call.function.name, arguments))
    return out


def messages(items: list[oai.ChatMessage]) -> list[api.Message]:
    result = []
    for item in items:
        text, images = _content(item.content)
        result.append(
            api.Message(
                role=oai.ROLES[item.role],
                content=text,
                images=images,
                thinking=item.reasoning_content,
                tool_calls=_tool_calls(item.tool_calls),
                tool_call_id=item.tool_call_id,
                name=item.name,
            )
        )
    return result


def _think(effort: str | None) -> Any:
    if effort is None:
        return None
    return False if effort == "none" else ("low" if effort == "minimal" else effort)


R = TypeVar("R", api.ChatRequest, api.CompletionRequest)


def choices(request: R, n: int) -> list[R]:
    """``n`` copies of a request, one per choice, each sampled with its own seed: the request's
    seed + i when it gives one (reproducible), else a random one per choice."""
    if n == 1:
        return [request]
    base = request.options.seed
    copies = []
    for i in range(n):
        seed = base + i if base is not None and base >= 0 else random.getrandbits(31)
        options = dataclasses.replace(request.options, seed=seed)
        copies.append(dataclasses.replace(request, options=options))
    return copies


def chat_requests(body: oai.ChatCompletionBody) -> list[api.ChatRequest]:
    """The chat request, once per choice (``n``)."""
    return choices(chat_request(body), body.n)


def chat_request(body: oai.ChatCompletionBody) -> api.ChatRequest:
    options = _sampling(body)
    options.logprobs, options.top_logprobs = body.logprobs, body.top_logprobs
    return api.ChatRequest(
        model=body.model,
        messages=messages(body.messages),
        options=options,
        tools=body.tools or None,
        tool_choice=body.tool_choice,
        format=_format(body.response_format, body.json_schema),
        think=_think(body.reasoning_effort),
    )


def completion_requests(body: oai.CompletionBody) -> list[api.CompletionRequest]:
    """One request per prompt (a string or token ids) and choice: prompt i's choices are
    ``i * n`` to ``i * n + n - 1``, the order of OpenAI's choice indexes."""
    requests = []
    for prompt in body.prompt:
        options = _sampling(body)
        options.logprobs = body.logprobs is not None
        options.top_logprobs = body.logprobs or 0
        text, tokens = ("", prompt) if isinstance(prompt, list) else (prompt, None)
        request = api.CompletionRequest(
            body.model,
            text,
            options,
            raw=True,
            suffix=body.suffix,
            context=tokens,
            format=body.json_schema,
        )
        requests.extend(choices(request, body.n))
    return requests


def embed_request(body: oai.EmbeddingBody) -> api.EmbedRequest:
    return api.EmbedRequest(
        model=body.model, inputs=body.input, dimensions=body.dimensions, truncate=body.truncate
    )
