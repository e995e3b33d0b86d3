"""Chat prompt rendering: a Modelfile TEMPLATE (Go) or the GGUF's own Jinja chat template."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any, NoReturn

from .api import InvalidRequest, Message
from .tools import ToolDef

if TYPE_CHECKING:
    from jinja2 import Template

# used only when a model has neither a TEMPLATE nor a chat template of its own
CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
CHATML_STOPS = ["<|im_end|>", "<|im_start|>"]


@dataclass
class RenderedPrompt:
    text: str
    stops: list[str] = field(default_factory=list)
    template_kind: str = "jinja"  # go | jinja | chatml


def message_dicts(messages: list[Message]) -> list[dict[str, Any]]:
    """Messages as the plain dicts both template kinds consume (OpenAI-like shape)."""
    out = []
    for m in messages:
        d: dict[str, Any] = {"role": m.role, "content": m.content or ""}
        if m.thinking:
            d["thinking"] = m.thinking
            d["reasoning_content"] = m.thinking
        if m.tool_calls:
            d["tool_calls"] = [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": _arguments(c.arguments)},
                }
                for c in m.tool_calls
            ]
        if m.tool_call_id:
            d["tool_call_id"] = m.tool_call_id
        if m.name:
            d["name"] = m.name
        out.append(d)
    return out


def _arguments(text: str) -> object:
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return text


def render_chat(
    *,
    go_template: str | None,
    jinja_template: str | None,
    messages: list[Message],
    tools: list[ToolDef] | None,
    bos_token: str,
    eos_token: str,
    think: bool | None = None,
    extra: dict[str, Any] | None = None,
) -> RenderedPrompt:
    dicts = message_dicts(messages)
    extra = dict(extra or {})
    if think is not None:
        extra.setdefault("enable_thinking", think)  # Qwen 3 style templates
    if go_template:
        from ..modelfile import TemplateError, render_prompt

        system = "\n\n".join(d["content"] for d in dicts if d["role"] == "system") or None
        try:
            text = render_prompt(
                go_template, system=system, messages=dicts, tools=tools, think=think
            )
        except TemplateError as exc:
            raise InvalidRequest(f"the model's TEMPLATE failed to render: {exc}") from None
        return RenderedPrompt(text, [], "go")
    if jinja_template:
        if not _has_system_turns(jinja_template, bos_token, eos_token):
            dicts = _systems_first(dicts)
        return RenderedPrompt(
            _render_jinja(jinja_template, dicts, tools, bos_token, eos_token, extra), [], "jinja"
        )
    return RenderedPrompt(
        _render_jinja(CHATML, dicts, tools, bos_token, eos_token, extra),
        list(CHATML_STOPS),
        "chatml",
    )


_PROBE = [
    {"role": "system", "content": "probe-s0"},
    {"role": "user", "content": "probe-u1"},
    {"role": "assistant", "content": "probe-a1"},
    {"role": "system", "content": "probe-s2"},
    {"role": "user", "content": "probe-u3"},
]


@lru_cache(maxsize=32)
def _has_system_turns(source: str, bos: str, eos: str) -> bool:
    """Whether a Jinja template renders a system message in the middle of a conversation as
    a turn of its own, where it is (ChatML, Llama 3…); Gemma's, for one, refuses it."""
    try:
        text = _render_jinja(source, _PROBE, None, bos, eos, None)
    except InvalidRequest:
        return False
    at = [text.find(m["content"]) for m in _PROBE[2:]]
    return -1 not in at and at == sorted(at)


def _systems_first(dicts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A conversation whose later system messages are merged, in order, into the system
    message at its start (made where there is none), for templates without system turns."""
    start = 0
    while start < len(dicts) and dicts[start]["role"] == "system":
        start += 1
    later = [d for d in dicts[start:] if d["role"] == "system"]
    if not later:
        return dicts
    leading = [d["content"] for d in dicts[:start]] + [d["content"] for d in later]
    system = {"role": "system", "content": "\n\n".join(c for c in leading if c)}
    return [system, *(d for d in dicts[start:] if d["role"] != "system")]


def _raise(message: str) -> NoReturn:
    raise InvalidRequest(f"the chat template refused this conversation: {message}")


def _strftime_now(fmt: str) -> str:
    return dt.datetime.now().strftime(fmt)


@lru_cache(maxsize=32)
def _compile(source: str) -> Template:
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"]
    )
    env.globals["raise_exception"] = _raise
    env.globals["strftime_now"] = _strftime_now
    env.filters["tojson"] = lambda v, indent=None, ensure_ascii=False, **_: json.dumps(
        v, indent=indent, ensure_ascii=ensure_ascii
    )
    return env.from_string(source)


def _render_jinja(
    source: str,
    messages: list[dict[str, Any]],
    tools: list[ToolDef] | None,
    bos: str,
    eos: str,
    extra: dict[str, Any] | None,
) -> str:
    from jinja2 import TemplateError

    context = {
        "messages": messages,
        "add_generation_prompt": True,
        "bos_token": bos,
        "eos_token": eos,
        "tools": tools or None,
        **(extra or {}),
    }
    try:
        return _compile(source).render(**context)
    except InvalidRequest:
        raise
    except TemplateError as exc:
        raise InvalidRequest(f"the model's chat template failed to render: {exc}") from None
