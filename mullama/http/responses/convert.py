"""Responses API request models → an Engine ``ChatRequest``.

The conversation is ``instructions`` (the system prompt), the stored items of the
``previous_response_id`` chain, then ``input``: messages as messages (``developer`` is
``system``; adjacent system messages become one, as most chat templates allow one),
``function_call`` items as the tool calls of an assistant message (consecutive calls, and a
call after the text it follows, share one message), ``function_call_output`` items as tool
messages, and ``reasoning`` items as the thinking of the assistant message after them."""

from __future__ import annotations

from typing import Any

from ...engine import api
from ..common.protocol import image_payload
from . import protocol as p

EFFORTS: dict[str, Any] = {"none": False, "minimal": "low", "xhigh": "high"}


def _text(content: str | list[p.Part] | None) -> tuple[str, list[str]]:
    """Content as text and base64 images."""
    if content is None or isinstance(content, str):
        return content or "", []
    texts = [part.text or part.refusal or "" for part in content if part.type != "input_image"]
    images = [image_payload(part.image_url or "") for part in content if part.type == "input_image"]
    return "\n".join(texts), images


def _reasoning(item: p.Item) -> str:
    summary = "\n\n".join(part.text for part in item.summary or [])
    content, _ = _text(item.content)
    return summary or content


def messages(items: list[p.Item], instructions: str | None = None) -> list[api.Message]:
    result: list[api.Message] = []
    if instructions:
        result.append(api.Message("system", instructions))
    thinking: str | None = None  # a reasoning item's, for the assistant message after it
    names: dict[str, str] = {}  # call_id -> function name, for the tool messages
    open_turn = False  # the last message is an assistant turn that later calls may join
    for item in items:
        if item.type == "reasoning":
            thinking = (thinking + "\n\n" if thinking else "") + _reasoning(item)
            continue
        if item.type == "function_call":
            assert item.call_id is not None and item.name is not None
            names[item.call_id] = item.name
            call = api.ToolCall(item.call_id, item.name, item.arguments or "")
            if not (open_turn and result and result[-1].role == "assistant"):
                result.append(api.Message("assistant", ""))
            result[-1].tool_calls.append(call)
            if thinking:
                result[-1].thinking, thinking = thinking, None
            open_turn = True
            continue
        if item.type == "function_call_output":
            assert item.call_id is not None
            output, _ = _text(item.output)
            result.append(
                api.Message("tool", output, tool_call_id=item.call_id, name=names.get(item.call_id))
            )
            open_turn = False
            continue
        role = p.ROLES[item.role or "user"]
        text, images = _text(item.content)
        if role == "system" and result and result[-1].role == "system":
            result[-1].content += "\n\n" + text
            continue
        message = api.Message(role, text, images=images)
        if role == "assistant" and thinking:
            message.thinking, thinking = thinking, None
        result.append(message)
        open_turn = role == "assistant"
    return result


def tools(body: p.ResponsesBody) -> list[dict[str, Any]] | None:
    """The function tools, in chat completions' shape (the engine's)."""
    out = []
    for tool in body.function_tools:
        function: dict[str, Any] = {"name": tool.name}
        if tool.description is not None:
            function["description"] = tool.description
        function["parameters"] = tool.parameters or {"type": "object", "properties": {}}
        out.append({"type": "function", "function": function})
    return out or None


def tool_choice(body: p.ResponsesBody) -> Any:
    choice = body.tool_choice
    if isinstance(choice, p.ToolChoice):
        return {"type": "function", "function": {"name": choice.name}}
    if choice == "auto" and not body.function_tools:
        return None
    return choice


def response_format(fmt: p.Format) -> Any:
    if fmt.type == "text":
        return None
    if fmt.type == "json_object":
        return "json"
    return fmt.schema_


def think(effort: str | None) -> Any:
    return None if effort is None else EFFORTS.get(effort, effort)


def chat_request(body: p.ResponsesBody, history: list[p.Item] | None = None) -> api.ChatRequest:
    options = api.SamplingOptions(
        temperature=body.temperature,
        top_p=body.top_p,
        top_k=body.top_k,
        min_p=body.min_p,
        seed=body.seed,
        max_tokens=body.max_output_tokens,
        stop=body.stop,
        grammar=body.grammar,
    )
    return api.ChatRequest(
        model=body.model,
        messages=messages([*(history or []), *body.input], body.instructions),
        options=options,
        tools=tools(body),
        tool_choice=tool_choice(body),
        format=response_format(body.text.format),
        think=think(body.reasoning.effort),
    )
