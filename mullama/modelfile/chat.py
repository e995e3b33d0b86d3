"""Ollama's chat-prompt semantics: turning a conversation into prompt text with a Go TEMPLATE."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from .gotemplate import Template
from .govalues import GoStruct, JSONMap

# JSON-shaped request data (messages, tool calls, tool definitions): nested values are whatever
# the request held, and are read the way Ollama's template data reads them
JSONObject = Mapping[str, Any]
Message = JSONObject


def render_prompt(
    template: str | Template,
    *,
    system: str | None,
    messages: Sequence[Message],
    tools: Sequence[JSONObject] | None = None,
    response: str = "",
    think: bool | None = None,
) -> str:
    """Render the prompt for the next assistant reply, exactly as Ollama would.

    `system` (the Modelfile SYSTEM) is prepended unless the conversation starts with a system
    message. Templates that use `.Messages` render once; legacy `.Prompt`/`.Response` templates
    render one round per exchange. The last round stops right after `.Response` (which holds
    `response`, an optional reply prefix) so the model continues from there. `think` sets
    `.Think` / `.IsThinkSet` for templates with a thinking switch.
    """
    parsed = template if isinstance(template, Template) else Template(template)
    conversation = list(messages)
    if system and not (conversation and conversation[0].get("role") == "system"):
        conversation.insert(0, {"role": "system", "content": system})
    collated = _collate(conversation)
    if parsed.references_field("Messages"):
        data = {
            "System": "\n\n".join(m["content"] for m in collated if m["role"] == "system"),
            "Messages": [_go_message(message) for message in collated],
            "Tools": [_go_tool(tool) for tool in tools or ()],
            "Prompt": "",
            "Response": response,
            "Think": bool(think),
            "IsThinkSet": think is not None,
        }
        return parsed.truncated_after_field("Response").render(data)
    return _render_rounds(parsed, collated, response)


def _render_rounds(template: Template, messages: list[dict[str, Any]], response: str) -> str:
    """Legacy templates: one rendering per (system, prompt, response) round."""
    rendered: list[str] = []
    round_values = {"System": "", "Prompt": "", "Response": ""}

    def flush() -> None:
        rendered.append(template.render(dict(round_values)))
        round_values.update(System="", Prompt="", Response="")

    for message in messages:
        role, content = message["role"], message["content"]
        if role == "system":
            if round_values["Prompt"] or round_values["Response"]:
                flush()
            round_values["System"] = content
        elif role == "user":
            if round_values["Response"]:
                flush()
            round_values["Prompt"] = content
        elif role == "assistant":
            round_values["Response"] = content
    round_values["Response"] += response
    rendered.append(template.truncated_after_field("Response").render(round_values))
    return "".join(rendered)


def _collate(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """Copy messages, merging consecutive same-role ones (except tool results) with a blank line."""
    collated: list[dict[str, Any]] = []
    for message in messages:
        current = {**message, "content": str(message.get("content") or "")}
        previous = collated[-1] if collated else None
        if previous and previous["role"] == current["role"] and current["role"] != "tool":
            previous["content"] = f"{previous['content']}\n\n{current['content']}"
        else:
            collated.append(current)
    return collated


def _go_message(message: JSONObject) -> GoStruct:
    """api.Message as the template sees it."""
    return GoStruct(
        [
            ("Role", "role", message["role"]),
            ("Content", "content", message["content"]),
            ("Thinking", "thinking,omitempty", message.get("thinking") or ""),
            ("Images", "images,omitempty", list(message.get("images") or [])),
            (
                "ToolCalls",
                "tool_calls,omitempty",
                [_go_tool_call(c) for c in message.get("tool_calls") or []],
            ),
            (
                "ToolName",
                "tool_name,omitempty",
                message.get("tool_name") or message.get("name") or "",
            ),
            ("ToolCallID", "tool_call_id,omitempty", message.get("tool_call_id") or ""),
        ]
    )


def _go_tool_call(call: JSONObject) -> GoStruct:
    """An OpenAI or Ollama tool call as api.ToolCall; JSON-string arguments are decoded."""
    function = call.get("function") or {}
    arguments = function.get("arguments") or {}
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except json.JSONDecodeError:
            pass
    go_function = GoStruct(
        [
            ("Index", "index,omitempty", function.get("index") or 0),
            ("Name", "name", function.get("name") or ""),
            (
                "Arguments",
                "arguments",
                JSONMap(arguments) if isinstance(arguments, dict) else arguments,
            ),
        ]
    )
    return GoStruct(
        [("ID", "id,omitempty", call.get("id") or ""), ("Function", "function", go_function)]
    )


def _go_tool(tool: JSONObject) -> GoStruct:
    """An OpenAI-style tool definition as api.Tool (prints as JSON, like Ollama's String())."""
    function = tool.get("function") or {}
    parameters = function.get("parameters") or {}
    go_parameters = GoStruct(
        [
            ("Type", "type", parameters.get("type") or ""),
            ("Defs", "$defs,omitempty", parameters.get("$defs")),
            ("Items", "items,omitempty", parameters.get("items")),
            ("Required", "required", parameters.get("required")),
            (
                "Properties",
                "properties",
                {
                    name: _go_property(spec)
                    for name, spec in (parameters.get("properties") or {}).items()
                },
            ),
        ]
    )
    go_function = GoStruct(
        [
            ("Name", "name", function.get("name") or ""),
            ("Description", "description", function.get("description") or ""),
            ("Parameters", "parameters", go_parameters),
        ],
        stringer=True,
    )
    return GoStruct(
        [
            ("Type", "type", tool.get("type") or "function"),
            ("Items", "items,omitempty", tool.get("items")),
            ("Function", "function", go_function),
        ],
        stringer=True,
    )


def _go_property(spec: JSONObject) -> GoStruct:
    kind = spec.get("type")
    return GoStruct(
        [
            ("Type", "type", kind[0] if isinstance(kind, list) and len(kind) == 1 else kind),
            ("Items", "items,omitempty", spec.get("items")),
            ("Description", "description", spec.get("description") or ""),
            ("Enum", "enum,omitempty", spec.get("enum")),
        ]
    )
