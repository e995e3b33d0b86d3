"""The Engine API: the one seam every front end speaks.

HTTP dialects, the IPC server, the CLI and the TUI only use what is defined here.
`LocalEngine` implements it in-process, `ipc.RemoteEngine` over nng. Requests and
events are plain dataclasses (msgspec encodes and validates them on the IPC socket).

The operations a remote client can call are declared once, here: every Engine method
decorated with :func:`operation` names its IPC wire kind, and its signature (argument
and result types, streaming or not) is the message schema. ``mullama.ipc`` derives the
daemon's handlers and :class:`~mullama.ipc.RemoteEngine`'s methods from :data:`OPERATIONS`.
"""

from __future__ import annotations

import collections.abc
import inspect
import typing
from abc import ABC, abstractmethod
from collections.abc import AsyncIterable, AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

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
    # base64 (or base64 data URLs) of PNG, JPEG, WebP or GIF images, placed before the text
    images: list[str] = field(default_factory=list)


LogitBias = dict[str, float | bool] | list[tuple[int | str, float | bool]]
"""Token biases, in either of llama-server's shapes (see ``SamplingOptions.logit_bias``)."""


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
    # Added to the logits before any other sampler, as llama-server takes it: an object
    # {"15043": 2.0, "Hello": -1.5} (a key of digits is a token id, any other key is text) or a
    # list of [token id or text, bias] pairs (text is always text there). Text stands for every
    # token of its tokenization (without special tokens). ``False`` (or -inf, in-process: JSON
    # cannot carry it) bans the token. A token named in several entries gets their sum. The
    # engine resolves text and checks ids against the vocabulary (InvalidRequest, param
    # "logit_bias"); the options a runner samples with hold the resolved [id, bias] pairs.
    logit_bias: LogitBias | None = None
    # speculative decoding by prompt lookup (engine/speculative.py): the most draft tokens a
    # step verifies for this request (0: no drafting) and the fewest it drafts when it drafts
    draft_max: int | None = None
    draft_min: int | None = None


@dataclass
class ChatRequest:
    model: str
    messages: list[Message]
    options: SamplingOptions = field(default_factory=SamplingOptions)
    tools: list[dict[str, Any]] | None = None  # OpenAI-style tool definitions
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
    images: list[str] = field(default_factory=list)  # base64, before the prompt's text


@dataclass
class EmbedRequest:
    model: str
    # each input is a text, or the model's token ids (embedded exactly as given, no BOS added),
    # as OpenAI's API allows
    inputs: Sequence[str | list[int]]
    truncate: bool = True
    dimensions: int | None = None
    keep_alive: Any = None


@dataclass
class RerankRequest:
    """Score each document's relevance to ``query`` with a reranking model (a cross-encoder:
    rank pooling). ``top_n``: keep only the best (None = all). ``truncate``: a query and
    document longer than the model's context lose the end of the document (else an error)."""

    model: str
    query: str
    documents: list[str]
    top_n: int | None = None
    truncate: bool = True
    keep_alive: Any = None


# ---------------------------------------------------------------- events


@dataclass
class Started:
    """The first event of a generation that reaches a runner: the request is admitted — its
    model loaded, its prompt rendered and tokenized, its options and grammar checked, the
    context and queue checks passed — and waits for its slot or is being prefilled. An error
    raised before it is the request's fault or the server's state (a front end answers it with
    its status); after it, only the generation itself can fail. A stream that generates nothing
    (``max_tokens`` 0, an empty prompt) is just its ``Done``."""

    prompt_tokens: int = 0


@dataclass
class TextDelta:
    text: str
    logprobs: list[dict[str, Any]] | None = (
        None  # [{token, logprob, top_logprobs:[{token, logprob}]}]
    )
    generated: int = 0  # from the runner: tokens generated so far, this text's included


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
    reasoning_tokens: int = 0  # of completion_tokens, those the model spent thinking
    draft_tokens: int = 0  # speculative draft tokens verified for this request
    draft_accepted: int = 0  # of them, those that became output

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


Event = Started | TextDelta | ThinkingDelta | ToolCallDelta | Done


@dataclass
class EmbedResult:
    model: str
    embeddings: list[list[float]]
    prompt_tokens: int
    timings: Timings = field(default_factory=Timings)


@dataclass
class RerankScore:
    index: int  # of the document in the request
    relevance_score: float  # the model's score as it gives it (a logit, or 0-1 for Qwen3)


@dataclass
class RerankResult:
    model: str
    results: list[RerankScore]  # best first; ``top_n`` of them when it was given
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


# ---------------------------------------------------------------- the model library


@dataclass
class AliasInfo:
    """An alias of the registry (the bundled list merged with the user's), for browsing."""

    name: str
    repo: str = ""
    description: str = ""
    family: str = ""
    tags: list[str] = field(default_factory=list)
    quant: str = ""  # the default quantization ("" when the alias names a file)
    file: str = ""
    parameter_size: str = ""
    size: int = 0  # bytes of the default download as the hub lists it; 0 = not known
    capabilities: dict[str, bool] = field(default_factory=dict)
    aliases: list[str] = field(default_factory=list)
    origin: str = "bundled"  # bundled | user | both


@dataclass
class HubModel:
    """A Hugging Face repository holding GGUF files, as a hub search lists it."""

    repo: str
    downloads: int = 0
    likes: int = 0
    created_at: str = ""  # ISO 8601
    pipeline_tag: str = ""
    gated: bool = False


@dataclass
class QuantFile:
    """One GGUF a repository offers: a single file or all the shards of a split model."""

    quant: str  # Q4_K_M, … or "" when the file name says none
    ref: str  # what to pull for it: hf:owner/repo:QUANT, or :file.gguf when the quant is ambiguous
    files: list[str] = field(default_factory=list)
    size: int = 0  # bytes a pull downloads: all shards, and the repository's projector if any
    preferred: bool = False  # the one the quantization preference picks for a bare hf:owner/repo


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
    draft_tokens: int = 0  # speculative draft tokens verified since the model loaded
    draft_accepted: int = 0  # of them, kept


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


@dataclass
class Liveness:
    """Who answers a ping: the engine's version, process and instance (a fresh id per start)."""

    version: str
    pid: int
    instance: str
    started: float  # epoch seconds
    pong: bool = True
    protocol: int | None = None  # the IPC protocol of a daemon that answered; None in-process


@dataclass
class PruneResult:
    """What :meth:`Engine.prune_store` removed: blob files and the bytes they held."""

    removed: int = 0
    freed: int = 0


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


class InvalidToken(InvalidRequest):
    """A token id given as input (a prompt, context, embedding input or tokens to detokenize)
    that is not in the model's vocabulary; ``details`` holds the id, its index and ``n_vocab``."""

    code = "invalid_token"


class ModelNotFound(EngineError):
    code, status = "model_not_found", 404


class ContextOverflow(EngineError):
    code, status = "context_length_exceeded", 400


class ModelLoadError(EngineError):
    code, status = "model_load_failed", 500


class InsufficientMemory(EngineError):
    code, status = "insufficient_memory", 507


class InsufficientStorage(EngineError):
    """The disk holding the model store is full (or a file size limit was reached)."""

    code, status = "insufficient_storage", 507


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
        InvalidToken,
        ModelNotFound,
        ContextOverflow,
        ModelLoadError,
        InsufficientMemory,
        InsufficientStorage,
        QueueFull,
        Cancelled,
        Interrupted,
        Unavailable,
        Unauthorized,
    )
}


def error_to_wire(exc: EngineError) -> dict[str, Any]:
    return {"code": exc.code, "message": exc.message, "param": exc.param, "details": exc.details}


def error_from_wire(data: dict[str, Any]) -> EngineError:
    cls = ERRORS.get(data.get("code", ""), EngineError)
    return cls(
        data.get("message", "unknown error"), param=data.get("param"), **(data.get("details") or {})
    )


# ---------------------------------------------------------------- operations

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Param:
    name: str
    type: Any
    default: Any = inspect.Parameter.empty

    @property
    def required(self) -> bool:
        return self.default is inspect.Parameter.empty


@dataclass
class Operation:
    """One Engine method callable over IPC, as declared by :func:`operation`.

    ``kind`` is the wire kind; the request's ``data`` holds one field per parameter (those in
    ``local`` stay with the caller). The reply's ``data`` is ``{key: result}`` when ``key`` is
    set, else the result itself (``{}`` for None). A streaming method (one returning an
    ``AsyncIterator``) replies ``{"stream": id}`` and its events are pulled with StreamNext.
    """

    kind: str
    method: str
    key: str | None = None
    local: tuple[str, ...] = ()
    _function: Callable[..., Any] | None = None
    _resolved: tuple[tuple[Param, ...], Any, bool] | None = None

    def _resolve(self) -> tuple[tuple[Param, ...], Any, bool]:
        if self._resolved is None:
            assert self._function is not None
            hints = typing.get_type_hints(self._function)
            params = tuple(
                Param(p.name, hints.get(p.name, Any), p.default)
                for p in list(inspect.signature(self._function).parameters.values())[1:]
                if p.name not in self.local
            )
            result = hints.get("return", Any)
            stream = typing.get_origin(result) in (
                collections.abc.AsyncIterator,
                collections.abc.AsyncIterable,
            )
            if stream:
                (result,) = typing.get_args(result)
            self._resolved = params, result, stream
        return self._resolved

    @property
    def params(self) -> tuple[Param, ...]:
        return self._resolve()[0]

    @property
    def result(self) -> Any:
        """The result type; for a stream, the type of each event."""
        return self._resolve()[1]

    @property
    def stream(self) -> bool:
        return self._resolve()[2]


OPERATIONS: dict[str, Operation] = {}  # by wire kind, in declaration order


def operation(
    kind: str, *, key: str | None = None, local: tuple[str, ...] = ()
) -> Callable[[F], F]:
    """Declare an Engine method an IPC operation of wire kind ``kind`` (and abstract)."""

    def declare(function: F) -> F:
        if kind in OPERATIONS:
            raise ValueError(f"operation kind {kind!r} declared twice")
        OPERATIONS[kind] = Operation(kind, function.__name__, key, local, _function=function)
        function.__isabstractmethod__ = True  # type: ignore[attr-defined]
        return function

    return declare


# ---------------------------------------------------------------- the API


class Engine(ABC):
    """Everything a front end can ask of Mullama. All methods are async.

    The methods decorated with :func:`operation` are abstract (an implementation must define
    them all) and are also the IPC operations; the decorator's first argument is the wire kind.
    """

    # models in the store
    @operation("ListModels", key="models")
    async def list_models(self) -> list[ModelInfo]:
        raise NotImplementedError

    @operation("Show")
    async def show_model(self, name: str) -> ModelDetails:
        raise NotImplementedError

    @operation("Pull")
    def pull_model(self, ref: str) -> AsyncIterator[PullProgress]:
        raise NotImplementedError

    @operation("Create")
    async def create_model(
        self,
        name: str,
        modelfile: str,
        base_dir: str | None = None,
        allowed_dirs: list[str] | None = None,
    ) -> ModelInfo:
        """Create ``name`` from Modelfile text. Relative paths in it are relative to
        ``base_dir``. ``allowed_dirs``: None lets FROM/ADAPTER/VISION_PROJECTOR name any file
        (the caller is the local user); a list confines them to files inside those
        directories, and a file outside or missing gets the same error."""
        raise NotImplementedError

    @operation("Copy")
    async def copy_model(self, source: str, destination: str, overwrite: bool = False) -> ModelInfo:
        """``overwrite``: replace a model already named ``destination`` (else an error)."""
        raise NotImplementedError

    @operation("Delete")
    async def delete_model(self, name: str) -> None:
        raise NotImplementedError

    @operation("BlobPath", key="path")
    async def blob_path(self, digest: str) -> str | None:
        """The file of the stored blob ``digest`` (``sha256:<hex>``), or None if there is none."""
        raise NotImplementedError

    @abstractmethod
    async def add_blob(self, digest: str, chunks: AsyncIterable[bytes]) -> str:
        """Store ``chunks`` as the blob ``digest`` (checked against it); returns the digest.

        Not an :func:`operation`: its chunks cross the IPC socket as BlobUpload/BlobChunk/
        BlobCommit (see ``mullama.ipc.protocol``)."""

    @operation("PruneStore")
    async def prune_store(self) -> PruneResult:
        """Remove blobs no model references any more."""
        raise NotImplementedError

    # the model library: the alias registry and the Hugging Face hub
    @operation("ListAliases", key="aliases")
    async def list_aliases(self) -> list[AliasInfo]:
        """The alias registry: the bundled aliases merged with the user's file."""
        raise NotImplementedError

    @operation("SearchHub", key="models")
    async def search_models(self, query: str, limit: int = 20) -> list[HubModel]:
        """Hugging Face repositories with GGUF files matching ``query``, most downloaded first."""
        raise NotImplementedError

    @operation("ListQuants", key="quants")
    async def list_quants(self, repo: str) -> list[QuantFile]:
        """The GGUF weights ``repo`` (owner/name) offers, smallest first."""
        raise NotImplementedError

    # loaded models
    @operation("LoadModel")
    async def load_model(self, name: str, keep_alive: Any = None) -> LoadedModel:
        raise NotImplementedError

    @operation("UnloadModel")
    async def unload_model(self, name: str) -> None:
        raise NotImplementedError

    @operation("Ps", key="models")
    async def running_models(self) -> list[LoadedModel]:
        raise NotImplementedError

    # inference
    @operation("ChatCompletion")
    def chat(self, request: ChatRequest) -> AsyncIterator[Event]:
        raise NotImplementedError

    @operation("Completion")
    def complete(self, request: CompletionRequest) -> AsyncIterator[Event]:
        raise NotImplementedError

    @operation("Embeddings")
    async def embed(self, request: EmbedRequest) -> EmbedResult:
        raise NotImplementedError

    @operation("Rerank")
    async def rerank(self, request: RerankRequest) -> RerankResult:
        raise NotImplementedError

    @operation("Tokenize", key="tokens")
    async def tokenize(
        self, model: str, text: str, add_special: bool = True, parse_special: bool = True
    ) -> list[int]:
        """``add_special``: BOS/EOS as the model's vocabulary wants them; ``parse_special``:
        control-token text such as ``<start_of_turn>`` becomes that token."""
        raise NotImplementedError

    @operation("Detokenize", key="text")
    async def detokenize(self, model: str, tokens: list[int]) -> str:
        """The text of ``tokens`` (control tokens included), invalid UTF-8 replaced."""
        raise NotImplementedError

    @operation("TokenPieces", key="pieces")
    async def token_pieces(self, model: str, tokens: list[int]) -> list[bytes]:
        """Each token's bytes (a piece may be part of a UTF-8 character)."""
        raise NotImplementedError

    @operation("CountTokens", key="count")
    async def count_chat_tokens(self, request: ChatRequest) -> int:
        raise NotImplementedError

    # the engine itself
    @operation("Ping", local=("timeout",))
    async def ping(self, timeout: float | None = None) -> Liveness:
        """Liveness: who answers (a remote engine waits at most ``timeout`` seconds and
        raises :class:`Unavailable` when nothing answers)."""
        raise NotImplementedError

    @operation("Status")
    async def status(self) -> EngineStatus:
        raise NotImplementedError

    @operation("DefaultModel", key="name")
    async def default_model(self) -> str:
        """The model used when a request names none ("" when there is none)."""
        raise NotImplementedError

    @operation("SetDefaultModel")
    async def set_default_model(self, name: str) -> None:
        raise NotImplementedError

    @operation("Metrics")
    async def metrics_snapshot(self) -> dict[str, Any]:
        raise NotImplementedError

    @property
    @abstractmethod
    def mode(self) -> str:
        """ "local" (the engine runs in this process) or "remote" (attached to a daemon)."""

    @abstractmethod
    async def close(self) -> None: ...
