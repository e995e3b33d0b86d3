"""The Engine API: the one seam every front end speaks.

HTTP dialects, the IPC server, the CLI and the TUI only use what is defined here.
`LocalEngine` implements it in-process, `ipc.RemoteEngine` over nng. Requests and
events are plain dataclasses that convert to and from JSON-ready dicts
(:func:`to_wire` / :func:`from_wire`) so they cross the IPC socket unchanged.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

# ---------------------------------------------------------------- requests


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text, as produced by the model


@dataclass
class Message:
    role: str  # system | user | assistant | tool
    content: str = ""
    thinking: str | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_call_id: str | None = None
    name: str | None = None
    images: list[str] = field(default_factory=list)


@dataclass
class SamplingOptions:
    """Per-request sampling; ``None`` means 'use the model's default'."""

    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    min_p: float | None = None
    typical_p: float | None = None
    repeat_penalty: float | None = None
    repeat_last_n: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    mirostat: int | None = None
    mirostat_tau: float | None = None
    mirostat_eta: float | None = None
    seed: int | None = None
    max_tokens: int | None = None  # num_predict; -1 = until the context is full
    stop: list[str] | None = None
    grammar: str | None = None  # GBNF
    logprobs: bool = False
    top_logprobs: int = 0
    ignore_eos: bool = False


@dataclass
class ChatRequest:
    model: str
    messages: list[Message]
    options: SamplingOptions = field(default_factory=SamplingOptions)
    tools: list[dict] | None = None  # OpenAI-style tool definitions
    tool_choice: Any = None  # "none" | "auto" | "required" | {"name": ...}
    format: Any = None  # "json" or a JSON schema dict
    think: Any = None  # None = model default, False/True, or "low"/"medium"/"high"
    think_budget: int | None = None  # most thinking tokens before the answer is forced
    keep_alive: Any = None  # duration string, seconds, 0, negative; None = default
    template: str | None = None  # a Go template overriding the model's


@dataclass
class CompletionRequest:
    model: str
    prompt: str
    options: SamplingOptions = field(default_factory=SamplingOptions)
    raw: bool = True  # False: wrap the prompt in the model's template (Ollama generate)
    system: str | None = None
    template: str | None = None
    suffix: str | None = None
    format: Any = None
    think: Any = None
    keep_alive: Any = None
    context: list[int] | None = None  # Ollama's legacy conversation tokens


@dataclass
class EmbedRequest:
    model: str
    inputs: list[str]
    truncate: bool = True
    dimensions: int | None = None
    keep_alive: Any = None


# ---------------------------------------------------------------- events


@dataclass
class TextDelta:
    text: str
    logprobs: list[dict] | None = None  # [{token, logprob, top_logprobs:[{token, logprob}]}]


@dataclass
class ThinkingDelta:
    text: str


@dataclass
class ToolCallDelta:
    index: int
    id: str | None = None  # set on the first delta of a call
    name: str | None = None  # set on the first delta of a call
    arguments: str = ""  # a piece of the JSON arguments text


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass
class Timings:
    """Durations in nanoseconds, as Ollama reports them."""

    load_ns: int = 0
    prompt_eval_ns: int = 0
    eval_ns: int = 0
    total_ns: int = 0


@dataclass
class Done:
    finish_reason: str  # stop | length | tool_calls | cancelled | load | unload
    usage: Usage = field(default_factory=Usage)
    timings: Timings = field(default_factory=Timings)
    stop_sequence: str | None = None  # the stop string that ended generation, if any
    model: str = ""
    context: list[int] | None = None  # prompt + output tokens (Ollama generate)


Event = TextDelta | ThinkingDelta | ToolCallDelta | Done


@dataclass
class EmbedResult:
    model: str
    embeddings: list[list[float]]
    prompt_tokens: int
    timings: Timings = field(default_factory=Timings)


@dataclass
class PullProgress:
    status: str  # resolving | downloading | verifying | writing | success
    file: str = ""
    digest: str = ""
    completed: int = 0
    total: int = 0
    rate: float = 0.0  # bytes per second


# ---------------------------------------------------------------- model info


@dataclass
class ModelInfo:
    """A model in the local store (pulled, created or registered by path)."""

    name: str
    size: int = 0
    digest: str = ""
    modified_at: str = ""  # ISO 8601
    kind: str = "pulled"  # pulled | created | path
    family: str = ""
    families: list[str] = field(default_factory=list)
    parameter_size: str = ""
    quantization: str = ""
    format: str = "gguf"
    source: str = ""  # the reference it came from
    capabilities: dict[str, bool] = field(default_factory=dict)


@dataclass
class ModelDetails:
    info: ModelInfo
    modelfile: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
    template: str = ""
    system: str = ""
    license: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)  # GGUF key/values (no token lists)


@dataclass
class LoadedModel:
    name: str
    size: int  # bytes of memory estimated for weights + KV cache
    context_length: int
    gpu_layers: int = 0
    parameters: int = 0
    expires_at: str = ""  # ISO 8601, "" = never
    loaded_at: str = ""
    num_parallel: int = 1
    busy_slots: int = 0
    queued: int = 0
    requests_total: int = 0
    tokens_generated: int = 0
    digest: str = ""


@dataclass
class EngineStatus:
    version: str
    uptime_secs: float
    mode: str  # "local" (engine in this process) | "remote" (attached to a daemon)
    loaded: list[LoadedModel] = field(default_factory=list)
    requests_total: int = 0
    requests_active: int = 0
    tokens_generated: int = 0
    prompt_tokens: int = 0
    endpoints: dict[str, str] = field(default_factory=dict)
    default_model: str = ""


# ---------------------------------------------------------------- errors


class EngineError(Exception):
    """Base of every error the Engine API raises; ``code`` maps to each dialect."""

    code = "internal"
    status = 500

    def __init__(self, message: str, *, param: str | None = None, **details: Any):
        super().__init__(message)
        self.message = message
        self.param = param
        self.details = details


class InvalidRequest(EngineError):
    code, status = "invalid_request", 400


class ModelNotFound(EngineError):
    code, status = "model_not_found", 404


class ContextOverflow(EngineError):
    code, status = "context_length_exceeded", 400


class ModelLoadError(EngineError):
    code, status = "model_load_failed", 500


class InsufficientMemory(EngineError):
    code, status = "insufficient_memory", 507


class QueueFull(EngineError):
    code, status = "queue_full", 503


class Cancelled(EngineError):
    code, status = "cancelled", 499


class Interrupted(EngineError):
    """The server stopped a request before it completed: its model was unloaded or deleted, or
    the daemon is shutting down. (``Cancelled`` is for requests the client abandoned.)"""

    code, status = "interrupted", 503


class Unavailable(EngineError):
    """The engine (e.g. the daemon behind a RemoteEngine) cannot be reached."""

    code, status = "unavailable", 503


class Unauthorized(EngineError):
    """A remote resource (a gated or private Hugging Face repo) refused access."""

    code, status = "unauthorized", 401


ERRORS = {
    cls.code: cls
    for cls in (
        EngineError,
        InvalidRequest,
        ModelNotFound,
        ContextOverflow,
        ModelLoadError,
        InsufficientMemory,
        QueueFull,
        Cancelled,
        Interrupted,
        Unavailable,
        Unauthorized,
    )
}


def error_to_wire(exc: EngineError) -> dict:
    return {"code": exc.code, "message": exc.message, "param": exc.param, "details": exc.details}


def error_from_wire(data: dict) -> EngineError:
    cls = ERRORS.get(data.get("code", ""), EngineError)
    return cls(
        data.get("message", "unknown error"), param=data.get("param"), **(data.get("details") or {})
    )


# ---------------------------------------------------------------- wire format

_TYPES = {
    cls.__name__: cls
    for cls in (
        ToolCall,
        Message,
        SamplingOptions,
        ChatRequest,
        CompletionRequest,
        EmbedRequest,
        TextDelta,
        ThinkingDelta,
        ToolCallDelta,
        Usage,
        Timings,
        Done,
        EmbedResult,
        PullProgress,
        ModelInfo,
        ModelDetails,
        LoadedModel,
        EngineStatus,
    )
}


def to_wire(obj: Any) -> dict:
    """A dataclass as a JSON-ready dict tagged with its type name."""
    data = dataclasses.asdict(obj)
    data["__type__"] = type(obj).__name__
    return data


def from_wire(data: dict) -> Any:
    """Inverse of :func:`to_wire`, rebuilding nested dataclasses."""
    return _build(_TYPES[data["__type__"]], data)


def _build(cls: type, data: dict) -> Any:
    hints = {f.name: f.type for f in dataclasses.fields(cls)}
    kwargs = {}
    for name, ftype in hints.items():
        if name not in data:
            continue
        value = data[name]
        nested = _nested_type(ftype)
        if nested is not None and value is not None:
            cls_n, is_list = nested
            value = [_build(cls_n, v) for v in value] if is_list else _build(cls_n, value)
        kwargs[name] = value
    return cls(**kwargs)


def _nested_type(ftype: str) -> tuple[type, bool] | None:
    for name, cls in _TYPES.items():
        if ftype == name:
            return cls, False
        if ftype == f"list[{name}]":
            return cls, True
    return None


# ---------------------------------------------------------------- the API


class Engine(ABC):
    """Everything a front end can ask of Mullama. All methods are async."""

    # models in the store
    @abstractmethod
    async def list_models(self) -> list[ModelInfo]: ...

    @abstractmethod
    async def show_model(self, name: str) -> ModelDetails: ...

    @abstractmethod
    def pull_model(self, ref: str) -> AsyncIterator[PullProgress]: ...

    @abstractmethod
    async def create_model(
        self, name: str, modelfile: str, base_dir: str | None = None
    ) -> ModelInfo: ...

    @abstractmethod
    async def copy_model(self, source: str, destination: str) -> ModelInfo: ...

    @abstractmethod
    async def delete_model(self, name: str) -> None: ...

    # loaded models
    @abstractmethod
    async def load_model(self, name: str, keep_alive: Any = None) -> LoadedModel: ...

    @abstractmethod
    async def unload_model(self, name: str) -> None: ...

    @abstractmethod
    async def running_models(self) -> list[LoadedModel]: ...

    # inference
    @abstractmethod
    def chat(self, request: ChatRequest) -> AsyncIterator[Event]: ...

    @abstractmethod
    def complete(self, request: CompletionRequest) -> AsyncIterator[Event]: ...

    @abstractmethod
    async def embed(self, request: EmbedRequest) -> EmbedResult: ...

    @abstractmethod
    async def tokenize(self, model: str, text: str, special: bool = True) -> list[int]: ...

    @abstractmethod
    async def count_chat_tokens(self, request: ChatRequest) -> int: ...

    # the engine itself
    @abstractmethod
    async def status(self) -> EngineStatus: ...

    @abstractmethod
    async def set_default_model(self, name: str) -> None: ...

    @abstractmethod
    async def metrics_snapshot(self) -> dict[str, Any]: ...

    @abstractmethod
    async def close(self) -> None: ...
