"""Tool calls: recognising them in streamed model output, and grammars that force them.

Styles (TOOLFORMAT style):
- ``qwen`` / ``hermes`` / ``custom``: ``<tool_call>{"name": …, "arguments": {…}}</tool_call>``,
  any number of them, markers configurable with call_start / call_end;
- ``llama3``: the whole reply is one JSON object ``{"name": …, "parameters": {…}}``
  (optionally after ``<|python_tag|>``), or several separated by ``;``;
- ``mistral``: ``[TOOL_CALLS]`` followed by a JSON list of calls.
Malformed JSON is given back as text (and logged), never raised.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..modelfile.spec import ModelfileSpec

log = logging.getLogger("mullama.tools")

ToolDef = dict[str, Any]  # an OpenAI-style tool definition (JSON)

STYLE_MARKERS = {
    "qwen": ("<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>"),
    "hermes": ("<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>"),
    "mistral": ("[TOOL_CALLS]", "", "[TOOL_RESULTS]", "[/TOOL_RESULTS]"),
    "llama3": (
        "<|python_tag|>",
        "",
        "<|start_header_id|>ipython<|end_header_id|>\n\n",
        "<|eot_id|>",
    ),
    "custom": ("<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>"),
}
FAMILY_STYLES = {
    "qwen2": "qwen",
    "qwen3": "qwen",
    "qwen2moe": "qwen",
    "llama": "llama3",
    "mistral": "mistral",
    "mixtral": "mistral",
    "hermes": "hermes",
}


@dataclass
class ToolFormat:
    style: str = "qwen"
    call_start: str = "<tool_call>"
    call_end: str = "</tool_call>"
    result_start: str = "<tool_response>"
    result_end: str = "</tool_response>"


def tool_format(spec: ModelfileSpec | None, family: str) -> ToolFormat:
    declared = dict(getattr(spec, "toolformat", None) or {}) if spec is not None else {}
    style = declared.get("style") or FAMILY_STYLES.get((family or "").lower(), "qwen")
    start, end, rstart, rend = STYLE_MARKERS.get(style, STYLE_MARKERS["qwen"])
    return ToolFormat(
        style,
        declared.get("call_start", start),
        declared.get("call_end", end),
        declared.get("result_start", rstart),
        declared.get("result_end", rend),
    )


@dataclass
class ParsedCall:
    id: str
    name: str
    arguments: str  # JSON text


ToolPart = tuple[str, str | ParsedCall]  # ("text", str) or ("call", ParsedCall)


def new_call_id() -> str:
    return "call_" + uuid.uuid4().hex[:24]


def _calls_from_json(value: object) -> list[ParsedCall] | None:
    items: list[object] = value if isinstance(value, list) else [value]
    calls: list[ParsedCall] = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            return None
        args = item.get("arguments", item.get("parameters", {}))
        if isinstance(args, str):
            try:
                args = json.loads(args)
            except ValueError:
                return None
        if not isinstance(args, dict):
            return None
        calls.append(ParsedCall(new_call_id(), item["name"], json.dumps(args, ensure_ascii=False)))
    return calls


def parse_call_text(text: str) -> list[ParsedCall] | None:
    """Calls from one JSON payload (object, list, or ``;``-separated objects); None if malformed."""
    text = text.strip()
    try:
        return _calls_from_json(json.loads(text))
    except ValueError:
        pass
    if ";" in text:
        calls: list[ParsedCall] = []
        for part in text.split(";"):
            if part.strip():
                parsed = parse_call_text(part)
                if not parsed:
                    return None
                calls.extend(parsed)
        return calls
    return None


class ToolCallParser:
    """Feed answer text; get ``("text", str)`` and ``("call", ParsedCall)`` parts back."""

    def __init__(self, fmt: ToolFormat) -> None:
        self.fmt = fmt
        self._held = ""
        self._in_call = False
        self._whole = fmt.style in ("llama3", "mistral")  # the reply itself is the call
        self._started = False
        self._passthrough = False  # whole-reply style, and the reply is plain text
        self.calls = 0

    def feed(self, piece: str) -> list[ToolPart]:
        if self._whole:
            return self._feed_whole(piece)
        out: list[ToolPart] = []
        buf = self._held + piece
        self._held = ""
        start, end = self.fmt.call_start, self.fmt.call_end
        while buf:
            if not self._in_call:
                i = buf.find(start)
                if i == -1:
                    keep = _held_prefix(buf, start)
                    if buf[: len(buf) - keep]:
                        out.append(("text", buf[: len(buf) - keep]))
                    self._held = buf[len(buf) - keep :]
                    return out
                if buf[:i]:
                    out.append(("text", buf[:i]))
                self._in_call = True
                buf = buf[i + len(start) :]
            i = buf.find(end)
            if i == -1:
                self._held = buf
                return out
            out.extend(self._emit(buf[:i], start + buf[:i] + end))
            self._in_call = False
            buf = buf[i + len(end) :]
        return out

    @property
    def holding(self) -> bool:
        """Whether text is held back (a call being read, or what may start one)."""
        return bool(self._held)

    def flush(self) -> list[ToolPart]:
        held, self._held = self._held, ""
        if self._whole:
            if not held:
                return []
            body = held.strip()
            for marker in (self.fmt.call_start, "<|python_tag|>"):
                if marker and body.startswith(marker):
                    body = body[len(marker) :]
            return self._emit(body, held)
        if self._in_call:  # never closed: try it anyway
            self._in_call = False
            return self._emit(held, self.fmt.call_start + held)
        return [("text", held)] if held else []

    def _feed_whole(self, piece: str) -> list[ToolPart]:
        if self._started:
            if self._passthrough:
                return [("text", piece)]
            self._held += piece
            return []
        buf = self._held + piece
        stripped = buf.lstrip()
        if not stripped:
            self._held = buf
            return []
        markers = [m for m in (self.fmt.call_start, "<|python_tag|>", "{", "[") if m]
        if any(stripped.startswith(m) for m in markers):
            self._started = True
            self._held = buf
            return []
        if any(m.startswith(stripped) for m in markers):
            self._held = buf
            return []
        self._started = True
        self._passthrough = True  # plain text answer: pass everything through
        self._held = ""
        return [("text", buf)]

    def _emit(self, payload: str, original: str) -> list[ToolPart]:
        calls = parse_call_text(payload)
        if not calls:
            log.warning(
                "the model produced a malformed tool call; returning it as text: %.200s", original
            )
            return [("text", original)]
        self.calls += len(calls)
        return [("call", c) for c in calls]


def _held_prefix(buf: str, marker: str) -> int:
    for n in range(min(len(marker) - 1, len(buf)), 0, -1):
        if buf.endswith(marker[:n]):
            return n
    return 0


def call_grammar(tools: list[ToolDef], fmt: ToolFormat, only: str | None = None) -> str:
    """GBNF that makes the model call a tool (any of ``tools``, or the one named ``only``)."""
    from .structured import schema_to_grammar

    chosen = [t for t in tools if _tool_name(t) == only] if only else tools
    variants: list[dict[str, Any]] = [
        {
            "type": "object",
            "properties": {"name": {"const": _tool_name(t)}, "arguments": _tool_parameters(t)},
            "required": ["name", "arguments"],
        }
        for t in chosen
    ]
    schema: dict[str, Any] = variants[0] if len(variants) == 1 else {"anyOf": variants}
    if fmt.style == "mistral":
        schema = {"type": "array", "items": schema, "minItems": 1}
    body = schema_to_grammar(schema)
    start = json.dumps(fmt.call_start) if fmt.call_start and fmt.style != "llama3" else '""'
    end = json.dumps(fmt.call_end) if fmt.call_end else '""'
    return body.replace("root ::=", "call ::=", 1) + f"\nroot ::= {start} call {end}\n"


def _tool_name(tool: ToolDef) -> str:
    name: str = (tool.get("function") or tool).get("name", "")
    return name


def _tool_parameters(tool: ToolDef) -> dict[str, Any]:
    params: dict[str, Any] = (tool.get("function") or tool).get("parameters") or {"type": "object"}
    return (
        params if params.get("type") == "object" or "properties" in params else {"type": "object"}
    )


def template_shows_tools(go_template: str | None, jinja_template: str | None) -> bool:
    """Whether the template that renders the prompt puts the tool definitions in it."""
    if go_template:
        return ".Tools" in go_template
    return bool(jinja_template and "tools" in jinja_template)


def tool_instructions(tools: list[ToolDef], fmt: ToolFormat) -> str:
    """The tool definitions and how to call them, for a system message: used when the model's
    template has no place for tools, so the model still learns they exist."""
    definitions = "\n".join(
        json.dumps(
            t if "function" in t else {"type": "function", "function": t}, ensure_ascii=False
        )
        for t in tools
    )
    return (
        "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
        f"You are provided with function signatures within <tools></tools> XML tags:\n"
        f"<tools>\n{definitions}\n</tools>\n\n"
        "For each function call, return a json object with function name and arguments "
        f"within {fmt.call_start}{fmt.call_end}:\n"
        f'{fmt.call_start}\n{{"name": <function-name>, "arguments": <args-json-object>}}\n'
        f"{fmt.call_end}"
    )
