"""The engine as a client it does not trust with the file system reaches it (the HTTP APIs).

A local user's own processes (the CLI, the TUI: IPC, whose socket only its user can open) may
name any file: ``mullama run ./x.gguf``, ``FROM ./x.gguf``. A client over HTTP may name files
only inside the allowed directories (the model store and ``allowed_model_dirs``), and learns
nothing about files elsewhere: a missing file and a file it may not read get the same answer.

:class:`ConfinedEngine` wraps an engine and applies that to every model name that is a path;
``create_model`` hands the allowed directories to the engine, which applies them to the
Modelfile's FROM, ADAPTER and VISION_PROJECTOR paths. Every operation is written out (the
Engine's abstract methods make that compulsory), so a new one cannot slip past unchecked.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from pathlib import Path
from typing import Any

from .api import (
    AliasInfo,
    ChatRequest,
    CompletionRequest,
    EmbedRequest,
    EmbedResult,
    Engine,
    EngineStatus,
    Event,
    HubModel,
    Liveness,
    LoadedModel,
    ModelDetails,
    ModelInfo,
    ModelNotFound,
    PruneResult,
    PullProgress,
    QuantFile,
    RerankRequest,
    RerankResult,
)
from .refs import is_path_like

WHERE = "the model store or a directory of allowed_model_dirs"


def split_dirs(text: str) -> list[str]:
    """``allowed_model_dirs``: directories separated by commas or the path separator (``:``)."""
    return [d.strip() for d in text.replace(os.pathsep, ",").split(",") if d.strip()]


class AllowedDirs:
    """Directories whose files an untrusted client may name (symlinks resolved first)."""

    def __init__(self, dirs: Iterable[str | Path]):
        self.dirs = [Path(d).expanduser().resolve() for d in dirs]

    def find(self, given: str, base: Path | None = None) -> Path | None:
        """The real path of the file ``given`` names, when it is a file inside one of the
        directories; None otherwise, the same whether it is missing or elsewhere. A relative
        path needs ``base``."""
        path = Path(given).expanduser()
        if not path.is_absolute():
            if base is None:
                return None
            path = base / path
        try:
            real = path.resolve()
            inside = any(real.is_relative_to(d) for d in self.dirs)
            return real if inside and real.is_file() else None
        except (OSError, RuntimeError, ValueError):  # a symlink loop, an unreadable folder
            return None

    def strings(self) -> list[str]:
        return [str(d) for d in self.dirs]


class ConfinedEngine(Engine):
    """``inner`` with model paths only inside ``allowed``; everything else passes through."""

    def __init__(self, inner: Engine, allowed: AllowedDirs):
        self.inner = inner
        self.allowed = allowed

    async def _model(self, name: str) -> str:
        """``name``, unless it is a path to a file outside the allowed directories (or none)
        that is not loaded already (``serve --model PATH``, ``mullama run PATH``)."""
        given = (name or "").strip()
        if not given or not is_path_like(given) or self.allowed.find(given) is not None:
            return name
        as_loaded = os.path.normpath(os.path.expanduser(given))  # what ps shows: no file access
        if any(m.name == as_loaded for m in await self.inner.running_models()):
            return name
        raise ModelNotFound(
            f"model {name!r} not found: a model file named by an HTTP client must be a GGUF "
            f"in {WHERE}",
            param="model",
        )

    # models in the store
    async def list_models(self) -> list[ModelInfo]:
        return await self.inner.list_models()

    async def show_model(self, name: str) -> ModelDetails:
        return await self.inner.show_model(await self._model(name))

    async def pull_model(self, ref: str) -> AsyncIterator[PullProgress]:
        async for progress in self.inner.pull_model(await self._model(ref)):
            yield progress

    async def create_model(
        self,
        name: str,
        modelfile: str,
        base_dir: str | None = None,
        allowed_dirs: list[str] | None = None,
    ) -> ModelInfo:
        """Paths in the Modelfile only inside this engine's allowed directories (whatever
        ``allowed_dirs`` says), relative ones only against ``base_dir``."""
        return await self.inner.create_model(
            name, modelfile, base_dir, allowed_dirs=self.allowed.strings()
        )

    async def copy_model(self, source: str, destination: str, overwrite: bool = False) -> ModelInfo:
        return await self.inner.copy_model(await self._model(source), destination, overwrite)

    async def delete_model(self, name: str) -> None:
        await self.inner.delete_model(await self._model(name))

    async def blob_path(self, digest: str) -> str | None:
        return await self.inner.blob_path(digest)

    async def add_blob(self, digest: str, chunks: AsyncIterable[bytes]) -> str:
        return await self.inner.add_blob(digest, chunks)

    async def prune_store(self) -> PruneResult:
        return await self.inner.prune_store()

    # the model library (no files named)
    async def list_aliases(self) -> list[AliasInfo]:
        return await self.inner.list_aliases()

    async def search_models(self, query: str, limit: int = 20) -> list[HubModel]:
        return await self.inner.search_models(query, limit)

    async def list_quants(self, repo: str) -> list[QuantFile]:
        return await self.inner.list_quants(repo)

    # loaded models
    async def load_model(self, name: str, keep_alive: Any = None) -> LoadedModel:
        return await self.inner.load_model(await self._model(name), keep_alive)

    async def unload_model(self, name: str) -> None:
        await self.inner.unload_model(await self._model(name))

    async def running_models(self) -> list[LoadedModel]:
        return await self.inner.running_models()

    # inference
    async def chat(self, request: ChatRequest) -> AsyncIterator[Event]:
        await self._model(request.model)
        async for event in self.inner.chat(request):
            yield event

    async def complete(self, request: CompletionRequest) -> AsyncIterator[Event]:
        await self._model(request.model)
        async for event in self.inner.complete(request):
            yield event

    async def embed(self, request: EmbedRequest) -> EmbedResult:
        await self._model(request.model)
        return await self.inner.embed(request)

    async def rerank(self, request: RerankRequest) -> RerankResult:
        await self._model(request.model)
        return await self.inner.rerank(request)

    async def tokenize(
        self, model: str, text: str, add_special: bool = True, parse_special: bool = True
    ) -> list[int]:
        return await self.inner.tokenize(await self._model(model), text, add_special, parse_special)

    async def detokenize(self, model: str, tokens: list[int]) -> str:
        return await self.inner.detokenize(await self._model(model), tokens)

    async def token_pieces(self, model: str, tokens: list[int]) -> list[bytes]:
        return await self.inner.token_pieces(await self._model(model), tokens)

    async def count_chat_tokens(self, request: ChatRequest) -> int:
        await self._model(request.model)
        return await self.inner.count_chat_tokens(request)

    # the engine itself
    async def ping(self, timeout: float | None = None) -> Liveness:
        return await self.inner.ping(timeout)

    async def status(self) -> EngineStatus:
        return await self.inner.status()

    async def default_model(self) -> str:
        return await self.inner.default_model()

    async def set_default_model(self, name: str) -> None:
        await self.inner.set_default_model(await self._model(name))

    async def metrics_snapshot(self) -> dict[str, Any]:
        return await self.inner.metrics_snapshot()

    @property
    def mode(self) -> str:
        return self.inner.mode

    async def close(self) -> None:
        await self.inner.close()
