"""OpenAI bodies and replies: ``/v1/chat/completions``, ``/v1/completions``,
``/v1/embeddings`` and ``/v1/models`` (requests first, then replies and streamed chunks)."""

from __future__ import annotations

from typing import Annotated, Any, Literal, NotRequired

from pydantic import AliasChoices, BeforeValidator, Field, field_validator, model_validator
from typing_extensions import TypedDict

from ..common.protocol import (
    Body,
    Reply,
    StringList,
    fail,
    image_payload,
    is_image_url,
    required,
    sampling_rule,
)

ROLES = {
    "system": "system",
    "developer": "system",
    "user": "user",
    "assistant": "assistant",
    "tool": "tool",
    "function": "tool",
}
REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high")
MAX_CHOICES = 64


class StreamOptions(Body):
    include_usage: bool = False


class ImageURL(Body):
    url: str


class ContentPart(Body):
    type: str
    text: str | None = None
    image_url: str | ImageURL | None = None

    @field_validator("type")
    @classmethod
    def _known(cls, kind: str) -> str:
        if kind not in ("text", "input_text", "image_url"):
            raise ValueError(f"{kind!r} is not supported (use text or image_url)")
        return kind

    @model_validator(mode="after")
    def _complete(self) -> ContentPart:
        if self.type != "image_url":
            if self.text is None:
                raise required("text")
            return self
        if self.image_url is None:
            raise required("image_url")
        url = self.url
        if not is_image_url(url):
            raise fail(
                ("image_url", "url"),
                "must be a base64 data URL (data:image/...;base64,...) or an http(s) URL",
            )
        return self

    @property
    def url(self) -> str:
        image = self.image_url
        return image.url if isinstance(image, ImageURL) else image or ""

    @property
    def image(self) -> str:
        """What goes into ``Message.images``: the base64 of a data URL, or the URL."""
        return image_payload(self.url)


class FunctionCall(Body):
    name: str
    arguments: Any = ""  # JSON text; some clients send an object


class ToolCall(Body):
    id: str | None = None
    function: FunctionCall


class ChatMessage(Body):
    role: str
    content: str | list[ContentPart] | None = None
    reasoning_content: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None
    name: str | None = None

    @field_validator("role")
    @classmethod
    def _known(cls, role: str) -> str:
        if role not in ROLES:
            raise ValueError(f"must be one of {', '.join(ROLES)}, got {role!r}")
        return role

    @model_validator(mode="after")
    def _said_something(self) -> ChatMessage:
        # only an assistant turn may be empty (it may consist of tool calls)
        if self.content is None and ROLES[self.role] != "assistant":
            raise required("content")
        return self


class JsonSchema(Body):
    schema_: dict = Field(default_factory=dict, alias="schema")


class ResponseFormat(Body):
    type: str
    json_schema: JsonSchema | None = None
    schema_: dict | None = Field(None, alias="schema")  # llama-server: json_object + schema

    @field_validator("type")
    @classmethod
    def _known(cls, kind: str) -> str:
        if kind not in ("text", "json_object", "json_schema"):
            raise ValueError(f"must be text, json_object or json_schema, got {kind!r}")
        return kind

    @model_validator(mode="after")
    def _schema(self) -> ResponseFormat:
        if self.type == "json_schema" and self.json_schema is None:
            raise required("json_schema")
        return self


class Sampled(Body):
    """What chat and text completions share: the model, streaming and sampling."""

    model: str = ""
    stream: bool = False
    stream_options: StreamOptions = Field(default_factory=StreamOptions)
    n: int = Field(1, ge=1, le=MAX_CHOICES)  # choices, each its own sequence in the batch
    # token id (as a string) or text -> bias, or llama-server's [[id or text, bias]]; false bans
    logit_bias: Annotated[Any, sampling_rule("logit_bias")] = None
    max_completion_tokens: int | None = Field(None, ge=1)
    max_tokens: int | None = Field(None, ge=1)
    temperature: Annotated[float | None, sampling_rule("temperature")] = None
    top_p: Annotated[float | None, sampling_rule("top_p")] = None
    top_k: Annotated[int | None, sampling_rule("top_k")] = None
    min_p: Annotated[float | None, sampling_rule("min_p")] = None
    repeat_penalty: Annotated[float | None, sampling_rule("repeat_penalty")] = None
    presence_penalty: Annotated[float | None, sampling_rule("presence_penalty")] = None
    frequency_penalty: Annotated[float | None, sampling_rule("frequency_penalty")] = None
    seed: int | None = None
    stop: StringList = None
    # llama-server's extensions, accepted the same way
    ignore_eos: bool = False
    grammar: str | None = None
    json_schema: dict | None = None  # constrains the output as response_format's schema does
    # speculative decoding: Mullama's names, and llama-server's ("speculative.n_max")
    draft_max: Annotated[int | None, sampling_rule("draft_max")] = Field(
        None, validation_alias=AliasChoices("draft_max", "speculative.n_max")
    )
    draft_min: Annotated[int | None, sampling_rule("draft_min")] = Field(
        None, validation_alias=AliasChoices("draft_min", "speculative.n_min")
    )


class ChatCompletionBody(Sampled):
    messages: Annotated[list[ChatMessage], Field(min_length=1)]
    logprobs: bool = False
    top_logprobs: Annotated[int, sampling_rule("top_logprobs")] = 0
    tools: list | None = None
    tool_choice: str | dict | None = None
    response_format: ResponseFormat | None = None
    reasoning_effort: str | None = None

    @field_validator("messages", mode="before")
    @classmethod
    def _some(cls, items: Any) -> Any:
        if isinstance(items, list) and not items:
            raise ValueError("must not be empty")
        return items

    @field_validator("reasoning_effort")
    @classmethod
    def _effort(cls, effort: str | None) -> str | None:
        if effort is not None and effort not in REASONING_EFFORTS:
            raise ValueError("must be none, minimal, low, medium or high")
        return effort

    @model_validator(mode="after")
    def _logprobs(self) -> ChatCompletionBody:
        if self.top_logprobs and not self.logprobs:
            raise fail(("top_logprobs",), "requires logprobs to be true")
        return self


def _prompts(value: Any) -> Any:
    """One prompt (a string or tokens) or several, as a list of prompts."""
    if isinstance(value, str) or (
        isinstance(value, list) and value and all(type(t) is int for t in value)
    ):
        return [value]
    if (
        isinstance(value, list)
        and value
        and all(
            isinstance(p, str) or (isinstance(p, list) and all(type(t) is int for t in p))
            for p in value
        )
    ):
        return value
    raise ValueError("must be a string, an array of strings or an array of tokens")


class CompletionBody(Sampled):
    prompt: Annotated[list[str | list[int]], BeforeValidator(_prompts)]
    best_of: int = 1
    logprobs: Annotated[int | None, Field(ge=0, le=20)] = None
    suffix: str | None = None
    echo: bool = False

    @field_validator("best_of")
    @classmethod
    def _one(cls, best_of: int) -> int:
        if best_of != 1:
            raise ValueError("must be 1")
        return best_of


def _token_ids(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(t, int) and not isinstance(t, bool) for t in value)
    )


def _inputs(value: Any) -> Any:
    """OpenAI's four shapes of ``input``: a string, an array of strings, an array of token
    ids, an array of arrays of token ids (what langchain-openai sends by default) — always
    a list, each item a text or one input's token ids."""
    if isinstance(value, str) or _token_ids(value):
        value = [value]
    if (
        isinstance(value, list)
        and value
        and all(isinstance(t, str) or _token_ids(t) for t in value)
    ):
        return value
    raise ValueError(
        "must be a non-empty string, array of strings, array of token ids "
        "(integers) or array of arrays of token ids"
    )


class EmbeddingBody(Body):
    model: str = ""
    input: Annotated[list[str | list[int]], BeforeValidator(_inputs)]
    dimensions: int | None = None
    encoding_format: str = "float"
    truncate: bool = False  # an extension: as OpenAI, an input too long is refused unless set

    @field_validator("encoding_format")
    @classmethod
    def _encoding(cls, encoding: str) -> str:
        if encoding not in ("float", "base64"):
            raise ValueError("must be float or base64")
        return encoding


# ---------------------------------------------------------------- replies: shared shapes


class PromptTokensDetails(TypedDict):
    cached_tokens: int


class CompletionUsage(TypedDict):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails


class TopLogprob(TypedDict):
    token: str
    logprob: float
    bytes: list[int]


class TokenLogprob(TypedDict):
    token: str
    logprob: float
    bytes: list[int]
    top_logprobs: list[TopLogprob]


class ChatLogprobs(TypedDict):
    content: list[TokenLogprob]


class TextLogprobs(TypedDict):
    """A text completion's logprobs, the legacy columns (one entry per token)."""

    tokens: list[str]
    token_logprobs: list[float]
    top_logprobs: list[dict[str, float]]
    text_offset: list[int]


class TextChoice(TypedDict):
    """A ``text_completion`` choice, whole (finished) or streamed (``finish_reason`` null)."""

    index: int
    text: str
    logprobs: TextLogprobs | None
    finish_reason: str | None


# ---------------------------------------------------------------- replies: whole


class AssistantFunction(Reply):
    name: str
    arguments: str  # JSON text


class AssistantToolCall(Reply):
    id: str
    type: Literal["function"]
    function: AssistantFunction


class AssistantMessage(Reply):
    role: Literal["assistant"]
    content: str
    reasoning_content: str | None = None  # as DeepSeek and vLLM name it
    thinking: str | None = None  # as Mullama's guide names it
    tool_calls: list[AssistantToolCall] | None = None


class ChatChoice(Reply):
    index: int
    message: AssistantMessage
    logprobs: ChatLogprobs | None
    finish_reason: str


class ChatCompletion(Reply):
    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    system_fingerprint: str
    choices: list[ChatChoice]
    usage: CompletionUsage


class TextCompletion(Reply):
    id: str
    object: Literal["text_completion"]
    created: int
    model: str
    system_fingerprint: str
    choices: list[TextChoice]
    usage: CompletionUsage


class EmbeddingData(Reply):
    object: Literal["embedding"]
    index: int
    embedding: list[float] | str  # floats, or base64 of little-endian float32


class EmbeddingUsage(Reply):
    prompt_tokens: int
    total_tokens: int


class EmbeddingList(Reply):
    object: Literal["list"]
    data: list[EmbeddingData]
    model: str
    usage: EmbeddingUsage


class ModelCardDetails(Reply):
    family: str
    parameter_size: str
    quantization: str
    size: int
    kind: str


class ModelCard(Reply):
    """A ``/v1/models`` entry, with Mullama's ``capabilities`` and ``details`` beside OpenAI's."""

    id: str
    object: Literal["model"]
    created: int
    owned_by: str
    capabilities: dict[str, bool]
    details: ModelCardDetails


class ModelList(Reply):
    object: Literal["list"]
    data: list[ModelCard]


# ---------------------------------------------------------------- replies: streamed chunks


class ChunkFunction(TypedDict):
    arguments: str
    name: NotRequired[str]


class ChunkToolCall(TypedDict):
    index: int
    id: NotRequired[str]
    type: NotRequired[Literal["function"]]
    function: ChunkFunction


class ChunkDelta(TypedDict, total=False):
    role: Literal["assistant"]
    content: str
    reasoning_content: str
    thinking: str
    tool_calls: list[ChunkToolCall]


class ChunkChoice(TypedDict):
    index: int
    delta: ChunkDelta
    logprobs: ChatLogprobs | None
    finish_reason: str | None


class ChatCompletionChunk(TypedDict):
    """A ``chat.completion.chunk``; with ``include_usage`` every chunk has ``usage`` (null),
    and the last one has no choices and the usage."""

    id: str
    object: Literal["chat.completion.chunk"]
    created: int
    model: str
    system_fingerprint: str
    choices: list[ChunkChoice]
    usage: NotRequired[CompletionUsage | None]


class TextCompletionChunk(TypedDict):
    """A streamed ``text_completion``; with ``include_usage`` the last has only the usage."""

    id: str
    object: Literal["text_completion"]
    created: int
    model: str
    system_fingerprint: str
    choices: list[TextChoice]
    usage: NotRequired[CompletionUsage]


DONE_MARKER: Literal["[DONE]"] = "[DONE]"  # the last SSE event of a stream, not JSON
Chunk = ChatCompletionChunk | TextCompletionChunk | Literal["[DONE]"]
