"""Anthropic Messages request models → Engine API chat requests."""

from __future__ import annotations

import json

from ...engine import api
from . import protocol as ant


def _text(value: ant.Text) -> str:
    """A string, or text blocks joined (system prompts and tool results)."""
    return value if isinstance(value, str) else "\n".join(b.text for b in value)


def _tool_result(block: ant.Block) -> api.Message:
    """A tool result: its text, and the images it holds (a screenshot tool's)."""
    content = block.content or ""
    if isinstance(content, str):
        return api.Message("tool", content, tool_call_id=block.tool_use_id)
    text = "\n".join(b.text or "" for b in content if b.type == "text")
    images = [b.source.image for b in content if b.type == "image" and b.source is not None]
    return api.Message("tool", text, tool_call_id=block.tool_use_id, images=images)


def _message(item: ant.Message) -> list[api.Message]:
    """One Anthropic message; tool results in it become separate ``tool`` messages first."""
    if isinstance(item.content, str):
        return [api.Message(item.role, item.content)]
    if item.role == "system":  # a system turn at its place: its text
        return [api.Message("system", "\n".join(b.text or "" for b in item.content))]
    message, tools = api.Message(item.role), []
    texts, thinking = [], []
    for block in item.content:
        if block.type == "text":
            texts.append(block.text or "")
        elif block.type == "image" and block.source is not None:
            message.images.append(block.source.image)
        elif block.type == "tool_use":
            arguments = json.dumps(block.input or {}, ensure_ascii=False)
            message.tool_calls.append(api.ToolCall(block.id or "", block.name or "", arguments))
        elif block.type == "tool_result":
            tools.append(_tool_result(block))
        elif block.type == "thinking":
            thinking.append(block.thinking or "")
    message.content = "\n".join(texts)
    message.thinking = "".join(thinking) or None
    has_content = message.content or message.images or message.tool_calls or message.thinking
    return tools + ([message] if has_content or not tools else [])


def messages(body: ant.CountTokensBody) -> list[api.Message]:
    result = []
    if body.system is not None:
        result.append(api.Message("system", _text(body.system)))
    for item in body.messages:
        result.extend(_message(item))
    return result


def _tools(tools: list[ant.Tool] | None) -> list[dict] | None:
    if not tools:
        return None
    return [
        {
            "type": "function",
            "function": {
                "name": t.name,
                "description": t.description,
                "parameters": t.input_schema,
            },
        }
        for t in tools
    ]


def _tool_choice(choice: ant.ToolChoice | None) -> object:
    if choice is None:
        return None
    if choice.type == "tool":
        return {"name": choice.name}
    return ant.TOOL_CHOICES[choice.type]


def _think(body: ant.CountTokensBody) -> object:
    """The engine's ``think``: off, on (adaptive too: a model that cannot think answers without),
    or the effort level where thinking is on; None (the model's default) when not asked."""
    thinking = body.thinking
    if thinking is None:
        return None
    if thinking.type == "disabled":
        return False
    effort = body.output_config.effort if body.output_config is not None else None
    if effort is None:
        return True
    return effort if effort in ("low", "medium") else "high"  # xhigh and max: the most we have


def _format(body: ant.CountTokensBody) -> dict | None:
    """The JSON schema the reply must follow: ``output_config.format`` or the beta's
    ``output_format``."""
    fmt = body.output_config.format if body.output_config is not None else None
    fmt = fmt or body.output_format
    return fmt.schema_ if fmt is not None else None


def chat_request(body: ant.CountTokensBody) -> api.ChatRequest:
    """The engine request of a Messages body (a count_tokens body has no sampling)."""
    options = api.SamplingOptions()
    if isinstance(body, ant.MessagesBody):
        options = api.SamplingOptions(
            max_tokens=body.max_tokens,
            temperature=body.temperature,
            top_p=body.top_p,
            top_k=body.top_k,
            stop=body.stop_sequences,
        )
    return api.ChatRequest(
        model=body.model,
        messages=messages(body),
        options=options,
        tools=_tools(body.tools),
        tool_choice=_tool_choice(body.tool_choice),
        format=_format(body),
        think=_think(body),
        think_budget=body.thinking.budget_tokens if body.thinking is not None else None,
    )
