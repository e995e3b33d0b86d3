"""Ollama bodies and replies (``/api/*``), field for field as Ollama's docs/api.md has them
(requests first, then replies and streamed lines)."""

from __future__ import annotations

from typing import Annotated, Any, Literal, NotRequired

from pydantic import BeforeValidator, Field, field_validator, model_validator
from typing_extensions import TypedDict

from ...modelfile import PARAMETER_TYPES, coerce_parameter
from ..common.protocol import Body, Reply, fail, said

ROLES = ("system", "user", "assistant", "tool")
MODELFILE_ROLES = ("system", "user", "assistant")  # a Modelfile's MESSAGE roles
THINK_LEVELS = ("low", "medium", "high")
# Ollama options llama.cpp's sampler no longer has: accepted and ignored, as Ollama does.
OBSOLETE_OPTIONS = frozenset({"penalize_newline", "tfs_z"})


def _with_function(value: Any) -> Any:
    if not isinstance(value, dict) or not isinstance(value.get("function"), dict):
        raise ValueError("must be an object with a function")
    return value


class Named(Body):
    """A body naming a model: ``model``, or the legacy ``name``."""

    model: str = ""
    name: str | None = None
    stream: bool = True

    @model_validator(mode="after")
    def _named(self) -> Named:
        self.model = self.model or self.name or ""
        if not self.model.strip():
            raise fail(("model",), "is required")
        return self


class CopyBody(Body):
    source: str
    destination: str


class PullBody(Named):
    insecure: bool | None = None  # accepted: pulls always verify their checksums


class Run(Named):
    """What running a model takes: sampling ``options`` (Modelfile PARAMETER names)."""

    options: dict = Field(default_factory=dict)
    keep_alive: Any = None

    @field_validator("options")
    @classmethod
    def _coerce(cls, raw: dict) -> dict:
        """Known parameters converted to their types; unknown and load-time ones kept for
        the conversion to note and drop."""
        options = {}
        for name, value in raw.items():
            if value is None or name in OBSOLETE_OPTIONS:
                continue
            if name in PARAMETER_TYPES:
                try:
                    value = coerce_parameter(name, value)
                except ValueError as exc:
                    raise fail(
                        (name,), str(exc).removeprefix(f"parameter {name} "), value
                    ) from None
            options[name] = value
        return options


class Generating(Run):
    logprobs: bool = False
    top_logprobs: int = 0
    format: Any = None
    think: Any = None

    @field_validator("format")
    @classmethod
    def _format(cls, value: Any) -> Any:
        if value in (None, ""):
            return None
        if value == "json" or isinstance(value, dict):
            return value
        raise ValueError('must be "json" or a JSON schema object')

    @field_validator("think")
    @classmethod
    def _think(cls, value: Any) -> Any:
        if value is None or isinstance(value, bool) or value in THINK_LEVELS:
            return value
        raise ValueError('must be true, false, "low", "medium" or "high"')


class FunctionCall(Body):
    name: str
    arguments: dict | str = Field(default_factory=dict)


class ToolCall(Body):
    id: str = ""
    function: FunctionCall


class Message(Body):
    role: str
    content: str = ""
    thinking: str | None = None
    images: list[str] | None = None  # base64
    tool_calls: list[Annotated[ToolCall, BeforeValidator(_with_function)]] = []
    tool_call_id: str | None = None
    tool_name: str | None = None
    name: str | None = None

    @field_validator("role")
    @classmethod
    def _known(cls, role: str) -> str:
        if role not in ROLES:
            raise ValueError(f"must be one of {', '.join(ROLES)}, got {role!r}")
        return role


class ChatBody(Generating):
    messages: list[Message] = []
    tools: list[Annotated[dict, BeforeValidator(_with_function)]] | None = None


class GenerateBody(Generating):
    prompt: str = ""
    images: list[str] | None = None  # base64
    raw: bool = False
    system: str | None = None
    template: str | None = None
    suffix: str | None = None
    context: list[int] | None = None


class EmbedBody(Run):
    """``/api/embed``: ``input`` is a string or a list."""

    input: str | list[str] = []
    truncate: bool = True
    dimensions: int | None = None

    @property
    def inputs(self) -> list[str]:
        value = self.input
        return ([value] if value else []) if isinstance(value, str) else value


class EmbeddingsBody(EmbedBody):
    """The legacy ``/api/embeddings``: one ``prompt``."""

    prompt: str | list[str] = []

    @property
    def inputs(self) -> list[str]:
        value = self.prompt
        return ([value] if value else []) if isinstance(value, str) else value


# ---------------------------------------------------------------- /api/create


def _gguf_files(field: str, files: dict) -> dict:
    """``files``/``adapters``: GGUF file names mapped to ``sha256:`` digests of uploaded blobs."""
    for filename, digest in files.items():
        if not isinstance(digest, str):
            raise said((), f"{field}[{filename!r}] must be a sha256 digest string", digest)
        if not filename.lower().endswith(".gguf"):
            raise said(
                (),
                f"{field}: {filename} is not a GGUF file; Mullama runs GGUF "
                "models only (convert safetensors with llama.cpp first)",
            )
    return files


class CreateMessage(Body):
    """A ``MESSAGE`` of the Modelfile: an example turn."""

    role: str
    content: str = ""

    @field_validator("role")
    @classmethod
    def _known(cls, role: str) -> str:
        if role not in MODELFILE_ROLES:
            raise ValueError("must be system, user or assistant")
        return role


def is_projector_name(name: str) -> bool:
    """A file uploaded for ``/api/create`` that is a vision projector, by its name."""
    base = name.rsplit("/", 1)[-1].lower()
    return "mmproj" in base or base.startswith("projector")


class CreateBody(Named):
    """``/api/create``: the base (``from`` a model, uploaded GGUF ``files``, or the older
    ``modelfile`` text), then what overrides it. Empty strings count as absent."""

    quantize: str | None = None
    modelfile: str | None = None
    from_: str | None = Field(None, alias="from")
    files: dict | None = None
    adapters: dict | None = None
    path: str | None = None
    system: str | None = None
    template: str | None = None
    license: str | list | None = None
    parameters: dict = Field(default_factory=dict)
    messages: list[CreateMessage] | None = None

    @field_validator("quantize")
    @classmethod
    def _no_quantize(cls, value: str | None) -> str | None:
        if value:
            raise ValueError(
                "is not supported: Mullama does not quantize models; "
                "pull a quantized GGUF instead (e.g. hf.co/owner/repo:Q4_K_M)"
            )
        return value

    @field_validator("files")
    @classmethod
    def _one_file(cls, files: dict | None) -> dict | None:
        files = _gguf_files("files", files or {})
        weights = [name for name in files if not is_projector_name(name)]
        if len(weights) > 1:
            raise said(
                (),
                "files: give one GGUF file, and a vision projector (mmproj-*.gguf) beside it "
                "if the model has one (split GGUFs are pulled, not uploaded)",
            )
        return files

    @field_validator("adapters")
    @classmethod
    def _adapters(cls, adapters: dict | None) -> dict | None:
        return _gguf_files("adapters", adapters or {})

    @field_validator("parameters")
    @classmethod
    def _coerce(cls, raw: dict) -> dict:
        parameters = {}
        for name, value in raw.items():
            try:
                parameters[name] = coerce_parameter(name, value)
            except ValueError as exc:
                raise said((name,), f"parameters: {exc}", value) from None
        return parameters

    @model_validator(mode="after")
    def _one_base(self) -> CreateBody:
        given = [bool(x) for x in (self.modelfile, self.from_, self.files)]
        if sum(given) > 1:
            raise said(("from",), "give only one of from, files or modelfile")
        if not any(given):
            if self.path:
                raise said(
                    ("path",),
                    "path is not supported: send the Modelfile text as modelfile, "
                    "or use from/files",
                )
            raise said(("from",), "neither 'from' nor 'files' was specified")
        return self

    @property
    def license_text(self) -> str | None:
        """``license``: one text, or several joined by blank lines."""
        value = self.license
        return value if isinstance(value, str | None) else "\n\n".join(map(str, value))


# ---------------------------------------------------------------- replies: shared shapes


class ReplyFunction(TypedDict):
    index: int
    name: str
    arguments: dict[str, Any]  # an object, as Ollama clients read it


class ReplyToolCall(TypedDict):
    id: str
    function: ReplyFunction


class ReplyMessage(TypedDict):
    role: Literal["assistant"]
    content: str
    thinking: NotRequired[str]
    tool_calls: NotRequired[list[ReplyToolCall]]


class ModelDetails(TypedDict):
    parent_model: str
    format: str
    family: str
    families: list[str] | None
    parameter_size: str
    quantization_level: str


# ---------------------------------------------------------------- replies: whole
# The stats are absent from the answer to a request that only loads or unloads the model.


class ChatResponse(Reply):
    model: str
    created_at: str
    message: ReplyMessage
    done: bool
    done_reason: str
    total_duration: int | None = None
    load_duration: int | None = None
    prompt_eval_count: int | None = None
    prompt_eval_duration: int | None = None
    eval_count: int | None = None
    eval_duration: int | None = None
    logprobs: list[dict[str, Any]] | None = None


class GenerateResponse(Reply):
    model: str
    created_at: str
    response: str
    done: bool
    thinking: str | None = None  # after done, where Ollama puts it
    done_reason: str
    total_duration: int | None = None
    load_duration: int | None = None
    prompt_eval_count: int | None = None
    prompt_eval_duration: int | None = None
    eval_count: int | None = None
    eval_duration: int | None = None
    context: list[int] | None = None
    logprobs: list[dict[str, Any]] | None = None


class EmbedResponse(Reply):
    model: str
    embeddings: list[list[float]]
    total_duration: int | None = None
    load_duration: int | None = None
    prompt_eval_count: int | None = None


class EmbeddingResponse(Reply):
    """The legacy ``/api/embeddings``."""

    embedding: list[float]


class ModelTag(Reply):
    name: str
    model: str
    modified_at: str
    size: int
    digest: str
    details: ModelDetails


class TagsResponse(Reply):
    models: list[ModelTag]


class RunningModel(Reply):
    name: str
    model: str
    size: int
    digest: str
    details: ModelDetails
    expires_at: str
    size_vram: int
    context_length: int


class PsResponse(Reply):
    models: list[RunningModel]


class ShowResponse(Reply):
    license: str
    modelfile: str
    parameters: str
    template: str
    system: str
    details: ModelDetails
    model_info: dict[str, Any]
    capabilities: list[str]
    modified_at: str


class VersionResponse(Reply):
    version: str
    mullama: str


# ---------------------------------------------------------------- replies: streamed lines


class _Streamed(TypedDict):
    model: str
    created_at: str
    done: bool
    # on the last line (done), its stats
    done_reason: NotRequired[str]
    total_duration: NotRequired[int]
    load_duration: NotRequired[int]
    prompt_eval_count: NotRequired[int]
    prompt_eval_duration: NotRequired[int]
    eval_count: NotRequired[int]
    eval_duration: NotRequired[int]
    logprobs: NotRequired[list[dict[str, Any]]]


class ChatChunk(_Streamed):
    message: ReplyMessage


class GenerateChunk(_Streamed):
    response: str
    thinking: NotRequired[str]
    context: NotRequired[list[int]]


Chunk = ChatChunk | GenerateChunk


class Status(TypedDict):
    """A line of ``/api/pull`` or ``/api/create`` progress."""

    status: str
    digest: NotRequired[str]
    total: NotRequired[int]
    completed: NotRequired[int]
