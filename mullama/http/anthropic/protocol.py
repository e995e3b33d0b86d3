"""Anthropic Messages bodies and replies: ``/v1/messages`` (a message, or its stream of events)
and ``/v1/messages/count_tokens`` (requests first, then replies and stream events)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator
from typing_extensions import TypedDict

from ..common.protocol import Body, Reply, StringList, fail, required, sampling_rule

BLOCK_TYPES = ("text", "image", "tool_use", "tool_result", "thinking", "redacted_thinking")
# the field each kind of content block must have
_BLOCK_NEEDS = {"text": "text", "tool_result": "tool_use_id", "thinking": "thinking"}
TOOL_CHOICES = {"auto": "auto", "any": "required", "none": "none"}


class TextBlock(Body):
    """A text block, where only text may be (system prompts, tool results)."""

    type: str
    text: str

    @model_validator(mode="before")
    @classmethod
    def _text_only(cls, data: Any) -> Any:
        if not isinstance(data, dict) or data.get("type") != "text":
            raise ValueError("must be a text block")
        return data


Text = str | list[TextBlock]


class ImageSource(Body):
    type: str
    data: str | None = None
    url: str | None = None

    @property
    def image(self) -> str:
        """What goes into ``Message.images``: the base64 data, or the URL to fetch."""
        return (self.data if self.type == "base64" else self.url) or ""


def _check_image(source: ImageSource | None) -> None:
    if source is None:
        raise required("source")
    if source.type == "base64":
        if source.data is None:
            raise required("source", "data")
    elif source.type == "url":
        if source.url is None:
            raise required("source", "url")
        if not source.url[:8].lower().startswith(("http://", "https://")):
            raise fail(("source", "url"), "must be an http(s) URL")
    else:
        raise fail(("source", "type"), "must be base64 or url", source.type)


class ResultBlock(Body):
    """A block of a tool result's content: text or an image."""

    type: str
    text: str | None = None
    source: ImageSource | None = None

    @model_validator(mode="after")
    def _complete(self) -> ResultBlock:
        if self.type == "text":
            if self.text is None:
                raise required("text")
        elif self.type == "image":
            _check_image(self.source)
        else:
            raise fail(("type",), "must be text or image", self.type)
        return self


class Block(Body):
    type: str
    text: str | None = None
    source: ImageSource | None = None
    id: str | None = None
    name: str | None = None
    input: Any = None
    content: str | list[ResultBlock] | None = None
    tool_use_id: str | None = None
    thinking: str | None = None

    @field_validator("type")
    @classmethod
    def _known(cls, kind: str) -> str:
        if kind not in BLOCK_TYPES:
            raise ValueError(f"{kind!r} is not supported")
        return kind

    @model_validator(mode="after")
    def _complete(self) -> Block:
        need = _BLOCK_NEEDS.get(self.type)
        if need and getattr(self, need) is None:
            raise required(need)
        if self.type == "tool_use":
            for name in ("id", "name"):
                if getattr(self, name) is None:
                    raise required(name)
        if self.type == "image":
            _check_image(self.source)
        return self


class Message(Body):
    role: str
    content: str | list[Block]

    @field_validator("role")
    @classmethod
    def _known(cls, role: str) -> str:
        # "system": a mid-conversation system turn (Claude Code's beta)
        if role not in ("user", "assistant", "system"):
            raise ValueError(f"must be user, assistant or system, got {role!r}")
        return role


class Tool(Body):
    name: str
    description: str = ""
    input_schema: dict = Field(default_factory=dict)


class ToolChoice(Body):
    type: str
    name: str | None = None

    @model_validator(mode="after")
    def _known(self) -> ToolChoice:
        if self.type == "tool":
            if self.name is None:
                raise required("name")
        elif self.type not in TOOL_CHOICES:
            raise fail(("type",), "must be auto, any, tool or none", self.type)
        return self


class Thinking(Body):
    """``enabled`` (with a budget), ``disabled``, or ``adaptive``: the model decides (it thinks
    where it can). ``display`` and the like are accepted and ignored."""

    type: str
    budget_tokens: Annotated[int | None, Field(ge=1)] = None

    @model_validator(mode="after")
    def _known(self) -> Thinking:
        if self.type not in ("enabled", "disabled", "adaptive"):
            raise fail(("type",), "must be enabled, disabled or adaptive", self.type)
        if self.type == "enabled" and self.budget_tokens is None:
            raise required("budget_tokens")
        return self


class OutputFormat(Body):
    """``{"type": "json_schema", "schema": {...}}``: the reply's text is JSON of that schema."""

    type: str
    schema_: dict | None = Field(None, alias="schema")

    @model_validator(mode="after")
    def _known(self) -> OutputFormat:
        if self.type != "json_schema":
            raise fail(("type",), "must be json_schema", self.type)
        if self.schema_ is None:
            raise required("schema")
        return self


EFFORTS = ("low", "medium", "high", "xhigh", "max")


class OutputConfig(Body):
    effort: str | None = None  # the reasoning effort, where the model thinks
    format: OutputFormat | None = None

    @field_validator("effort")
    @classmethod
    def _effort(cls, effort: str) -> str:
        if effort not in EFFORTS:
            raise ValueError(f"must be one of {', '.join(EFFORTS)}, got {effort!r}")
        return effort


class CountTokensBody(Body):
    """What a conversation is: enough to count its tokens."""

    model: str
    metadata: dict | None = None
    system: Text | None = None
    messages: list[Message]
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    thinking: Thinking | None = None
    output_config: OutputConfig | None = None
    output_format: OutputFormat | None = None  # the beta's name for output_config.format
    # accepted and ignored: context_management, cache_control on blocks, metadata, the
    # anthropic-beta header, ?beta=true

    @field_validator("messages", mode="before")
    @classmethod
    def _some(cls, items: Any) -> Any:
        if isinstance(items, list) and not items:
            raise ValueError("must hold at least one message")
        return items


class MessagesBody(CountTokensBody):
    max_tokens: Annotated[int, Field(ge=1)]
    temperature: float | None = None
    top_p: Annotated[float | None, sampling_rule("top_p")] = None
    top_k: Annotated[int | None, sampling_rule("top_k")] = None
    stop_sequences: StringList = None
    stream: bool = False

    @field_validator("temperature")
    @classmethod
    def _unit(cls, value: float | None) -> float | None:
        if value is not None and not 0 <= value <= 1:  # Anthropic's range, not llama.cpp's
            raise ValueError(f"must be between 0 and 1, got {value:g}")
        return value


# ---------------------------------------------------------------- replies: shared shapes


class MessageUsage(TypedDict):
    input_tokens: int  # the prompt tokens not read from the cache
    cache_creation_input_tokens: int
    cache_read_input_tokens: int
    output_tokens: int


class TextContent(TypedDict):
    type: Literal["text"]
    text: str


class ThinkingContent(TypedDict):
    type: Literal["thinking"]
    thinking: str
    signature: str  # empty: Mullama signs no thinking


class ToolUseContent(TypedDict):
    type: Literal["tool_use"]
    id: str
    name: str
    input: dict[str, Any]


ContentBlock = Annotated[
    TextContent | ThinkingContent | ToolUseContent, Field(discriminator="type")
]


# ---------------------------------------------------------------- replies: whole


class MessageReply(Reply):
    """A ``message``: whole, or (no content, no stop reason yet) opening a stream."""

    id: str
    type: Literal["message"]
    role: Literal["assistant"]
    model: str
    content: list[ContentBlock]
    stop_reason: str | None
    stop_sequence: str | None
    usage: MessageUsage


class TokenCount(Reply):
    """``/v1/messages/count_tokens``."""

    input_tokens: int


# ---------------------------------------------------------------- replies: stream events
# Each is sent as an SSE event named as its type.


class MessageStart(TypedDict):
    type: Literal["message_start"]
    message: dict[str, Any]  # a MessageReply, as its wire() dict (once per stream)


class ContentBlockStart(TypedDict):
    type: Literal["content_block_start"]
    index: int
    content_block: ContentBlock


class Ping(TypedDict):
    type: Literal["ping"]


class TextDelta(TypedDict):
    type: Literal["text_delta"]
    text: str


class ThinkingDelta(TypedDict):
    type: Literal["thinking_delta"]
    thinking: str


class InputJsonDelta(TypedDict):
    type: Literal["input_json_delta"]
    partial_json: str


class ContentBlockDelta(TypedDict):
    type: Literal["content_block_delta"]
    index: int
    delta: Annotated[TextDelta | ThinkingDelta | InputJsonDelta, Field(discriminator="type")]


class ContentBlockStop(TypedDict):
    type: Literal["content_block_stop"]
    index: int


class StopInfo(TypedDict):
    stop_reason: str
    stop_sequence: str | None


class MessageDelta(TypedDict):
    type: Literal["message_delta"]
    delta: StopInfo
    usage: MessageUsage


class MessageStop(TypedDict):
    type: Literal["message_stop"]


StreamEvent = Annotated[
    MessageStart
    | ContentBlockStart
    | Ping
    | ContentBlockDelta
    | ContentBlockStop
    | MessageDelta
    | MessageStop,
    Field(discriminator="type"),
]
