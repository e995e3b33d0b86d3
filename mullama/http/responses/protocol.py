"""OpenAI Responses API bodies and replies: ``POST /v1/responses`` (a response, or its stream of
events), ``GET``/``DELETE /v1/responses/{id}`` and ``GET /v1/responses/{id}/input_items``
(requests first, then the items and replies, then the stream events).

Input items are one model (:class:`Item`) checked per ``type``, so that an error names the
field as ``input[2].call_id``. Tools other than functions (Codex sends ``web_search`` and
``namespace`` tools, hosted tools a local model cannot run) are accepted and left out of the
prompt."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator, model_validator
from typing_extensions import TypedDict

from ..common.protocol import (
    Body,
    Reply,
    StringList,
    fail,
    is_image_url,
    required,
    sampling_rule,
)

ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")
ITEM_TYPES = ("message", "function_call", "function_call_output", "reasoning")
PART_TYPES = (
    "input_text",
    "output_text",
    "text",
    "input_image",
    "refusal",
    "reasoning_text",
    "summary_text",
    "input_file",
)
TOOL_CHOICES = ("auto", "none", "required")


class Part(Body):
    """A part of a message's content: text (``input_text``, ``output_text``), an image
    (``input_image``, a base64 data URL) or a refusal."""

    type: str
    text: str | None = None
    refusal: str | None = None
    image_url: str | None = None
    file_id: str | None = None
    detail: str | None = None

    @field_validator("type")
    @classmethod
    def _known(cls, kind: str) -> str:
        if kind not in PART_TYPES:
            raise ValueError(
                f"{kind!r} is not supported (use input_text, output_text or input_image)"
            )
        if kind == "input_file":
            raise ValueError("'input_file' is not supported (files are not read)")
        return kind

    @model_validator(mode="after")
    def _complete(self) -> Part:
        if self.type == "refusal":
            if self.refusal is None:
                raise required("refusal")
        elif self.type == "input_image":
            if self.image_url is None:
                if self.file_id is not None:
                    raise fail(("file_id",), "is not supported: send the image as image_url")
                raise required("image_url")
            if not is_image_url(self.image_url):
                raise fail(
                    ("image_url",),
                    "must be a base64 data URL (data:image/...;base64,...) or an http(s) URL",
                )
        elif self.text is None:
            raise required("text")
        return self


class SummaryPart(Body):
    type: str = "summary_text"
    text: str = ""


class Item(Body):
    """An input item: a message, a function call (the model's, given back), its output, or a
    reasoning item. A bare ``{role, content}`` is a message."""

    type: str = "message"
    id: str | None = None
    role: str | None = None
    content: str | list[Part] | None = None
    call_id: str | None = None
    name: str | None = None
    arguments: str | None = None
    output: str | list[Part] | None = None
    summary: list[SummaryPart] | None = None
    encrypted_content: str | None = None
    status: str | None = None

    @field_validator("type")
    @classmethod
    def _known(cls, kind: str) -> str:
        if kind not in ITEM_TYPES:
            raise ValueError(
                f"{kind!r} is not supported (use message, function_call, "
                "function_call_output or reasoning)"
            )
        return kind

    @field_validator("role")
    @classmethod
    def _role(cls, role: str | None) -> str | None:
        if role is not None and role not in ROLES:
            raise ValueError(f"must be one of {', '.join(ROLES)}, got {role!r}")
        return role

    @model_validator(mode="after")
    def _complete(self) -> Item:
        needs = {
            "message": ("role", "content"),
            "function_call": ("call_id", "name", "arguments"),
            "function_call_output": ("call_id", "output"),
        }.get(self.type, ())
        for name in needs:
            if getattr(self, name) is None:
                raise required(name)
        return self


def _input(value: Any) -> Any:
    """A string is one user message."""
    if isinstance(value, str):
        return [{"type": "message", "role": "user", "content": value}]
    return value


class Tool(Body):
    type: str
    name: str | None = None
    description: str | None = None
    parameters: dict | None = None
    strict: bool | None = None

    @model_validator(mode="after")
    def _complete(self) -> Tool:
        if self.type == "function" and self.name is None:
            raise required("name")
        return self


class ToolChoice(Body):
    type: str
    name: str | None = None

    @model_validator(mode="after")
    def _complete(self) -> ToolChoice:
        if self.type != "function":
            raise fail(
                ("type",), f"must be function (hosted tools are not available), got {self.type!r}"
            )
        if self.name is None:
            raise required("name")
        return self


class Format(Body):
    type: str = "text"
    name: str | None = None
    schema_: dict | None = Field(None, alias="schema")
    strict: bool | None = None
    description: str | None = None

    @field_validator("type")
    @classmethod
    def _known(cls, kind: str) -> str:
        if kind not in ("text", "json_object", "json_schema"):
            raise ValueError(f"must be text, json_object or json_schema, got {kind!r}")
        return kind

    @model_validator(mode="after")
    def _schema(self) -> Format:
        if self.type == "json_schema" and self.schema_ is None:
            raise required("schema")
        return self


class TextConfig(Body):
    format: Format = Field(default_factory=lambda: Format(type="text", schema=None))
    verbosity: str | None = None


class Reasoning(Body):
    effort: str | None = None
    summary: str | None = None
    generate_summary: str | None = None

    @field_validator("effort")
    @classmethod
    def _effort(cls, effort: str | None) -> str | None:
        if effort is not None and effort not in REASONING_EFFORTS:
            raise ValueError(f"must be one of {', '.join(REASONING_EFFORTS)}, got {effort!r}")
        return effort


class ResponsesBody(Body):
    model: str = ""
    input: Annotated[list[Item], BeforeValidator(_input)] = Field(default_factory=list)
    instructions: str | None = None
    tools: list[Tool] = Field(default_factory=list)
    tool_choice: str | ToolChoice = "auto"
    parallel_tool_calls: bool = True
    text: TextConfig = Field(default_factory=TextConfig)
    reasoning: Reasoning = Field(default_factory=Reasoning)
    max_output_tokens: int | None = Field(None, ge=1)
    temperature: Annotated[float | None, sampling_rule("temperature")] = None
    top_p: Annotated[float | None, sampling_rule("top_p")] = None
    store: bool = True
    previous_response_id: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    user: str | None = None
    stream: bool = False
    include: list[str] = Field(default_factory=list)
    truncation: str = "disabled"
    background: bool = False
    # llama-server's and Ollama's extensions, accepted as in chat completions
    seed: int | None = None
    top_k: Annotated[int | None, sampling_rule("top_k")] = None
    min_p: Annotated[float | None, sampling_rule("min_p")] = None
    stop: StringList = None
    grammar: str | None = None  # GBNF

    @field_validator("tool_choice")
    @classmethod
    def _choice(cls, choice: str | ToolChoice) -> str | ToolChoice:
        if isinstance(choice, str) and choice not in TOOL_CHOICES:
            raise ValueError(f"must be auto, none, required or a function, got {choice!r}")
        return choice

    @field_validator("background")
    @classmethod
    def _foreground(cls, background: bool) -> bool:
        if background:
            raise ValueError("is not supported: responses are answered in the request")
        return background

    @model_validator(mode="after")
    def _some_input(self) -> ResponsesBody:
        if not self.input and not self.previous_response_id:
            raise fail(("input",), "must not be empty")
        return self

    @property
    def function_tools(self) -> list[Tool]:
        return [t for t in self.tools if t.type == "function"]


# ---------------------------------------------------------------- output items (TypedDicts)


class OutputText(TypedDict):
    type: Literal["output_text"]
    text: str
    annotations: list[Any]
    logprobs: list[Any]


class MessageItem(TypedDict):
    id: str
    type: Literal["message"]
    status: str  # in_progress | completed | incomplete
    role: Literal["assistant"]
    content: list[OutputText]


class FunctionCallItem(TypedDict):
    id: str
    type: Literal["function_call"]
    status: str
    arguments: str
    call_id: str
    name: str


class SummaryText(TypedDict):
    type: Literal["summary_text"]
    text: str


class ReasoningItem(TypedDict):
    id: str
    type: Literal["reasoning"]
    summary: list[SummaryText]


OutputItem = MessageItem | FunctionCallItem | ReasoningItem


class InputTokensDetails(TypedDict):
    cached_tokens: int  # prompt tokens found in the prompt cache
    cache_write_tokens: int  # always 0: there is no explicit prompt caching


class OutputTokensDetails(TypedDict):
    reasoning_tokens: int


class ResponseUsage(TypedDict):
    input_tokens: int
    input_tokens_details: InputTokensDetails
    output_tokens: int
    output_tokens_details: OutputTokensDetails
    total_tokens: int


class IncompleteDetails(TypedDict):
    reason: str


class ResponseError(TypedDict):
    code: str
    message: str


# ---------------------------------------------------------------- replies: whole


class Response(Reply):
    """A response, as returned whole, retrieved, and carried by the stream's lifecycle events."""

    id: str
    object: Literal["response"]
    created_at: int
    status: str  # in_progress | completed | incomplete | failed
    background: bool
    error: ResponseError | None
    incomplete_details: IncompleteDetails | None
    instructions: str | None
    max_output_tokens: int | None
    max_tool_calls: None
    model: str
    output: list[OutputItem]
    parallel_tool_calls: bool
    previous_response_id: str | None
    reasoning: dict[str, Any]
    service_tier: str
    store: bool
    temperature: float | None
    text: dict[str, Any]
    tool_choice: str | dict[str, Any]
    tools: list[dict[str, Any]]
    top_p: float | None
    truncation: str
    usage: ResponseUsage | None
    user: str | None
    metadata: dict[str, str]


class DeletedResponse(Reply):
    id: str
    object: Literal["response"]
    deleted: bool


class InputItemList(Reply):
    object: Literal["list"]
    data: list[dict[str, Any]]
    first_id: str | None
    last_id: str | None
    has_more: bool


# ---------------------------------------------------------------- stream events (TypedDicts)


class Lifecycle(TypedDict):
    """response.created, .in_progress, .completed, .incomplete, .failed"""

    type: str
    sequence_number: int
    response: dict[str, Any]


class ItemEvent(TypedDict):
    """response.output_item.added / .done"""

    type: str
    sequence_number: int
    output_index: int
    item: OutputItem


class ContentPartEvent(TypedDict):
    """response.content_part.added / .done"""

    type: str
    sequence_number: int
    item_id: str
    output_index: int
    content_index: int
    part: OutputText


class TextDeltaEvent(TypedDict):
    type: Literal["response.output_text.delta"]
    sequence_number: int
    item_id: str
    output_index: int
    content_index: int
    delta: str
    logprobs: list[Any]


class TextDoneEvent(TypedDict):
    type: Literal["response.output_text.done"]
    sequence_number: int
    item_id: str
    output_index: int
    content_index: int
    text: str
    logprobs: list[Any]


class SummaryPartEvent(TypedDict):
    """response.reasoning_summary_part.added / .done"""

    type: str
    sequence_number: int
    item_id: str
    output_index: int
    summary_index: int
    part: SummaryText


class SummaryDeltaEvent(TypedDict):
    type: Literal["response.reasoning_summary_text.delta"]
    sequence_number: int
    item_id: str
    output_index: int
    summary_index: int
    delta: str


class SummaryDoneEvent(TypedDict):
    type: Literal["response.reasoning_summary_text.done"]
    sequence_number: int
    item_id: str
    output_index: int
    summary_index: int
    text: str


class ArgumentsDeltaEvent(TypedDict):
    type: Literal["response.function_call_arguments.delta"]
    sequence_number: int
    item_id: str
    output_index: int
    delta: str


class ArgumentsDoneEvent(TypedDict):
    type: Literal["response.function_call_arguments.done"]
    sequence_number: int
    item_id: str
    output_index: int
    name: str
    arguments: str


class ErrorEvent(TypedDict):
    type: Literal["error"]
    sequence_number: int
    code: str | None
    message: str
    param: str | None


StreamEvent = (
    Lifecycle
    | ItemEvent
    | ContentPartEvent
    | TextDeltaEvent
    | TextDoneEvent
    | SummaryPartEvent
    | SummaryDeltaEvent
    | SummaryDoneEvent
    | ArgumentsDeltaEvent
    | ArgumentsDoneEvent
    | ErrorEvent
)
