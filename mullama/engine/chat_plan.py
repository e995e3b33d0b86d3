"""What a chat request needs beyond sampling: thinking, tools, grammar, capability checks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .api import ChatRequest, InvalidRequest
from .pipeline import OutputPipeline
from .reasoning import ThinkingConfig, ThinkingSplitter, thinking_config
from .structured import format_grammar
from .tools import ToolCallParser, ToolDef, ToolFormat, call_grammar, tool_format

if TYPE_CHECKING:
    from ..modelfile.spec import ModelfileSpec
    from .api import ModelInfo


@dataclass
class ChatPlan:
    thinking: ThinkingConfig
    think: bool | None  # what the template is told (None: leave the template's default)
    emit_thinking: bool
    tools: list[ToolDef] | None
    tool_format: ToolFormat | None
    grammar: str | None
    think_budget: int | None

    def pipeline(self, prompt_text: str) -> OutputPipeline:
        splitter = None
        if self.thinking.enabled or self.think:
            opened = prompt_text.rstrip().endswith(self.thinking.start)
            splitter = ThinkingSplitter(
                self.thinking, opened_in_prompt=opened, emit_thinking=self.emit_thinking
            )
        elif self.think is False and self.thinking.start:
            # the model may think anyway: keep it out of the answer
            splitter = ThinkingSplitter(self.thinking, emit_thinking=False)
        parser = ToolCallParser(self.tool_format) if self.tools and self.tool_format else None
        return OutputPipeline(splitter, parser)


def _think_switch(value: object) -> bool | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("none", "false", "off"):
        return False
    if isinstance(value, str) and value.lower() in (
        "low",
        "medium",
        "high",
        "minimal",
        "true",
        "on",
    ):
        return True
    raise InvalidRequest(
        f'think must be true, false, "low", "medium" or "high", got {value!r}', param="think"
    )


def plan_chat(
    request: ChatRequest, spec: ModelfileSpec | None, info: ModelInfo | None, template: str
) -> ChatPlan:
    caps = dict(getattr(info, "capabilities", None) or {})
    family = getattr(info, "family", "") or ""
    name = getattr(info, "name", request.model)
    config = thinking_config(spec, family, template)
    think = _think_switch(request.think)
    if think and not (config.enabled or caps.get("thinking")):
        think = None  # a model that cannot think answers normally (as llama-server and OpenAI)
    tools = request.tools or None
    choice = request.tool_choice
    if choice == "none":
        tools = None
    declared = dict(getattr(spec, "capabilities", None) or {}) if spec is not None else {}
    if tools and declared.get("tools") is False:
        # only a declared refusal: a template without a tools section gets the definitions and
        # the call format in the system message (LocalEngine._render_chat, tool_instructions)
        raise InvalidRequest(
            f"{name} does not support tools (its Modelfile declares CAPABILITY tools false)",
            param="tools",
        )
    fmt = tool_format(spec, family) if tools else None
    grammar = format_grammar(request.format, "response_format")
    forced = _forced_tool(choice, tools)
    if forced is not None:
        if grammar:
            raise InvalidRequest(
                "a JSON response format and a required tool call cannot be combined",
                param="tool_choice",
            )
        assert tools and fmt is not None  # _forced_tool raised when there are no tools
        grammar = call_grammar(tools, fmt, only=forced or None)
    budget = request.think_budget
    if budget is not None and (not isinstance(budget, int) or budget < 1):
        raise InvalidRequest(
            "the thinking budget must be a positive number of tokens", param="budget_tokens"
        )
    return ChatPlan(config, think, think is not False, tools, fmt, grammar, budget)


def _forced_tool(choice: object, tools: list[ToolDef] | None) -> str | None:
    """ "" to force any tool, a name to force that one, None when the model may choose."""
    if choice in (None, "auto", "none"):
        return None
    if not tools:
        raise InvalidRequest("tool_choice needs tools", param="tool_choice")
    if choice in ("required", "any"):
        return ""
    name = (
        choice.get("name") or (choice.get("function") or {}).get("name")
        if isinstance(choice, dict)
        else None
    )
    if not name or not isinstance(name, str):
        raise InvalidRequest(
            f"tool_choice {choice!r} is not none, auto, required or a named tool",
            param="tool_choice",
        )
    if name not in [(t.get("function") or t).get("name") for t in tools]:
        raise InvalidRequest(
            f'tool_choice names "{name}", which is not among the tools', param="tool_choice"
        )
    return name
