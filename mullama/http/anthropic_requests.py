"""Anthropic Messages request bodies → Engine API chat requests."""

from __future__ import annotations

import json

from ..engine.api import ChatRequest, InvalidRequest, Message, SamplingOptions, ToolCall
from .fields import get, string_list


def _blocks_text(value, where: str) -> str:
    """A string, or text blocks joined (system prompts and tool results)."""
    if isinstance(value, str):
        return value
    if not isinstance(value, list):
        raise InvalidRequest(f"{where} must be a string or an array of text blocks", param=where)
    texts = []
    for i, block in enumerate(value):
        if not isinstance(block, dict) or block.get("type") != "text":
            raise InvalidRequest(f"{where}[{i}] must be a text block", param=f"{where}[{i}]")
        texts.append(get(block, "text", str, required=True, where=f"{where}[{i}]."))
    return "\n".join(texts)


def _message(item: dict, at: str) -> list[Message]:
    """One Anthropic message; tool results in it become separate ``tool`` messages first."""
    role = get(item, "role", str, required=True, where=at)
    if role not in ("user", "assistant"):
        raise InvalidRequest(f"{at}role must be user or assistant, got {role!r}", param=f"{at}role")
    content = item.get("content")
    if isinstance(content, str):
        return [Message(role, content)]
    if not isinstance(content, list):
        raise InvalidRequest(
            f"{at}content must be a string or an array of content blocks", param=f"{at}content"
        )
    message, tools = Message(role), []
    texts, thinking = [], []
    for i, block in enumerate(content):
        where = f"{at}content[{i}]."
        if not isinstance(block, dict):
            raise InvalidRequest(f"{where[:-1]} must be an object", param=where[:-1])
        kind = get(block, "type", str, required=True, where=where)
        if kind == "text":
            texts.append(get(block, "text", str, required=True, where=where))
        elif kind == "image":
            source = get(block, "source", dict, required=True, where=where)
            if source.get("type") != "base64":
                raise InvalidRequest(
                    f"{where}source.type must be base64; remote images are not fetched",
                    param=f"{where}source.type",
                )
            message.images.append(get(source, "data", str, required=True, where=f"{where}source."))
        elif kind == "tool_use":
            arguments = json.dumps(block.get("input") or {}, ensure_ascii=False)
            message.tool_calls.append(
                ToolCall(
                    get(block, "id", str, required=True, where=where),
                    get(block, "name", str, required=True, where=where),
                    arguments,
                )
            )
        elif kind == "tool_result":
            result = block.get("content") or ""
            tools.append(
                Message(
                    "tool",
                    _blocks_text(result, f"{where}content"),
                    tool_call_id=get(block, "tool_use_id", str, required=True, where=where),
                )
            )
        elif kind == "thinking":
            thinking.append(get(block, "thinking", str, required=True, where=where))
        elif kind != "redacted_thinking":
            raise InvalidRequest(f"{where}type {kind!r} is not supported", param=f"{where}type")
    message.content = "\n".join(texts)
    message.thinking = "".join(thinking) or None
    has_content = message.content or message.images or message.tool_calls or message.thinking
    return tools + ([message] if has_content or not tools else [])


def messages(body: dict) -> list[Message]:
    items = get(body, "messages", list, required=True)
    if not items:
        raise InvalidRequest("messages: at least one message is required", param="messages")
    result = []
    system = body.get("system")
    if system is not None:
        result.append(Message("system", _blocks_text(system, "system")))
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise InvalidRequest(f"messages[{i}] must be an object", param=f"messages[{i}]")
        result.extend(_message(item, f"messages[{i}]."))
    return result


def _tools(body: dict) -> list[dict] | None:
    tools = get(body, "tools", list)
    if not tools:
        return None
    converted = []
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise InvalidRequest(f"tools[{i}] must be an object", param=f"tools[{i}]")
        converted.append(
            {
                "type": "function",
                "function": {
                    "name": get(tool, "name", str, required=True, where=f"tools[{i}]."),
                    "description": get(tool, "description", str, default="", where=f"tools[{i}]."),
                    "parameters": get(tool, "input_schema", dict, default={}, where=f"tools[{i}]."),
                },
            }
        )
    return converted


def _tool_choice(body: dict):
    choice = get(body, "tool_choice", dict)
    if choice is None:
        return None
    kind = get(choice, "type", str, required=True, where="tool_choice.")
    if kind == "tool":
        return {"name": get(choice, "name", str, required=True, where="tool_choice.")}
    mapping = {"auto": "auto", "any": "required", "none": "none"}
    if kind not in mapping:
        raise InvalidRequest(
            "tool_choice.type must be auto, any, tool or none", param="tool_choice.type"
        )
    return mapping[kind]


def _think(body: dict) -> tuple[bool | None, int | None]:
    """Whether to think, and the most thinking tokens (``budget_tokens``) when enabled."""
    thinking = get(body, "thinking", dict)
    if thinking is None:
        return None, None
    kind = get(thinking, "type", str, required=True, where="thinking.")
    if kind not in ("enabled", "disabled", "adaptive"):
        raise InvalidRequest("thinking.type must be enabled or disabled", param="thinking.type")
    budget = get(thinking, "budget_tokens", int, required=kind == "enabled", where="thinking.")
    if budget is not None and budget < 1:
        raise InvalidRequest(
            "thinking.budget_tokens must be at least 1", param="thinking.budget_tokens"
        )
    return kind != "disabled", budget


def chat_request(body: dict, count_only: bool = False) -> ChatRequest:
    """The engine request of a Messages body (``count_only``: max_tokens is not required)."""
    model = get(body, "model", str, required=True)
    get(body, "metadata", dict)
    options = SamplingOptions()
    if not count_only:
        options = SamplingOptions(
            max_tokens=get(body, "max_tokens", int, required=True),
            temperature=get(body, "temperature", float),
            top_p=get(body, "top_p", float),
            top_k=get(body, "top_k", int),
            stop=string_list(body, "stop_sequences"),
        )
        if options.max_tokens < 1:
            raise InvalidRequest(
                f"max_tokens must be at least 1, got {options.max_tokens}", param="max_tokens"
            )
        if options.temperature is not None and not 0 <= options.temperature <= 1:
            raise InvalidRequest("temperature must be between 0 and 1", param="temperature")
    think, budget = _think(body)
    return ChatRequest(
        model=model,
        messages=messages(body),
        options=options,
        tools=_tools(body),
        tool_choice=_tool_choice(body),
        think=think,
        think_budget=budget,
    )
