"""Loaded models: load and unload, keep_alive, memory budget and LRU eviction."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import psutil

from ..config import Settings
from .api import InsufficientMemory, LoadedModel, ModelLoadError
from .durations import parse_keep_alive
from .embedder import Embedder, EmbedderConfig, context_for, memory_estimate
from .embedder import start as start_embedder
from .embedding import embed_context_bytes, embed_shape
from .gguf_info import GENERATION, model_kind
from .llm import LlamaError, LoraAdapter, Model, load_lora
from .prompt_cache import PromptCache, fingerprint, limit_bytes
from .prompt_cache_disk import DiskTier
from .remote_runner import RemoteRunner, start_remote
from .rpc import Placement, placement_for
from .runner import Runner, RunnerConfig
from .runner_state import draft_counts
from .runner_vision import projector_bytes

if TYPE_CHECKING:
    from ..modelfile.spec import ModelfileSpec

log = logging.getLogger("mullama.manager")

DEFAULT_CTX = 4096
PERSIST_SECONDS = 20.0  # the longest a stopping daemon writes prompt states to disk
AUTO_PARALLEL = 4

Metadata = Mapping[str, Any]  # GGUF key/values


class Resolved(Protocol):
    """What loading needs of a resolved model (``store.ResolvedModel``)."""

    @property
    def name(self) -> str: ...
    @property
    def weights(self) -> Path: ...
    @property
    def spec(self) -> ModelfileSpec | None: ...
    @property
    def digest(self) -> str: ...


class Store(Protocol):
    """What the manager needs of the model store."""

    def resolve(self, ref: str, verify: bool = ...) -> Resolved: ...


@dataclass
class Loaded:
    name: str
    resolved: Resolved
    model: Model
    # an Embedder for an embedding or reranking model; RemoteRunner: on RPC workers, in a
    # child process
    runner: Runner | Embedder | RemoteRunner
    estimate: int
    gpu_layers: int
    keep_alive: float | None
    load_ns: int
    loaded_at: float = field(default_factory=time.time)
    last_used: float = field(default_factory=time.monotonic)
    in_use: int = 0
    expires_at: float | None = None  # monotonic; None = never (or busy)
    lora: list[LoraAdapter] = field(default_factory=list)

    def info(self) -> LoadedModel:
        expires = ""
        if self.expires_at is not None:
            wall = time.time() + (self.expires_at - time.monotonic())
            expires = dt.datetime.fromtimestamp(wall, dt.UTC).isoformat()
        elif self.keep_alive is not None:
            wall = time.time() + self.keep_alive
            expires = dt.datetime.fromtimestamp(wall, dt.UTC).isoformat()
        return LoadedModel(
            name=self.name,
            size=self.estimate,
            context_length=self.runner.n_ctx,
            gpu_layers=self.gpu_layers,
            parameters=self.model.n_params,
            expires_at=expires,
            loaded_at=dt.datetime.fromtimestamp(self.loaded_at, dt.UTC).isoformat(),
            num_parallel=self.runner.config.n_parallel,
            busy_slots=self.runner.busy_slots,
            queued=self.runner.queued,
            requests_total=self.runner.requests_total,
            tokens_generated=self.runner.tokens_generated,
            digest=getattr(self.resolved, "digest", "") or "",
            draft_tokens=draft_counts(self.runner)[0],
            draft_accepted=draft_counts(self.runner)[1],
        )


def _param(spec: ModelfileSpec | None, name: str, default: Any = None) -> Any:
    """A Modelfile parameter (of the type modelfile.parameters coerced it to), or ``default``."""
    if spec is None:
        return default
    value = spec.parameters.get(name)
    return default if value is None else value


SHARD = re.compile(r"^(?P<stem>.+)-(?P<index>\d{5})-of-(?P<count>\d{5})\.gguf$")


def weights_bytes(path: str) -> int:
    """Bytes of a model's weights: every shard of a split GGUF (``x-00001-of-00003.gguf``; the
    store links them side by side under their original names), else the one file."""
    file = Path(path)
    shard = SHARD.match(file.name)
    if shard is None:
        return file.stat().st_size
    count = int(shard["count"])
    total = 0
    for i in range(1, count + 1):
        name = f"{shard['stem']}-{i:05d}-of-{count:05d}.gguf"
        try:
            total += (file.parent / name).stat().st_size
        except FileNotFoundError:
            raise ModelLoadError(
                f"{name} is missing beside {file}: a split model needs all {count} shards"
            ) from None
    return total


LOAD_PARAMETERS = ("num_ctx", "num_parallel", "num_batch", "num_thread", "num_gpu")


def _load_identity(resolved: Resolved) -> tuple[object, ...]:
    """What a loaded model was loaded with: when it changes, the model must be loaded again."""
    spec = resolved.spec
    return (
        str(resolved.weights),
        str(getattr(resolved, "projector", None)),
        tuple(str(a) for a in getattr(resolved, "adapters", None) or []),
        tuple(_param(spec, name) for name in LOAD_PARAMETERS),
        spec.gpu_layers if spec is not None else None,
        spec.flash_attention if spec is not None else None,
        (spec.rpc, spec.tensor_split) if spec is not None else None,
    )


def vocab_size(meta: Metadata) -> int:
    """The tokens in a model's vocabulary, from GGUF metadata (32,000 when it does not say)."""
    count = meta.get("tokenizer.ggml.tokens_count")
    if count is None:
        count = len(meta.get("tokenizer.ggml.tokens", ())) or 32000
    return int(count)


def kv_cache_bytes(meta: Metadata, n_ctx: int) -> int:
    """f16 K and V for every layer and position, from GGUF metadata."""
    arch = meta.get("general.architecture", "llama")

    def get(key: str, default: int = 0) -> int:
        return int(float(meta.get(f"{arch}.{key}", default) or default))

    n_layer = get("block_count", 32)
    n_embd = get("embedding_length", 4096)
    n_head = get("attention.head_count", 32) or 1
    n_head_kv = get("attention.head_count_kv", n_head) or n_head
    k_len = get("attention.key_length", n_embd // n_head)
    v_len = get("attention.value_length", n_embd // n_head)
    return n_layer * n_ctx * n_head_kv * (k_len + v_len) * 2


class ModelManager:
    def __init__(
        self, settings: Settings, store: Store, read_metadata: Callable[[str], Metadata]
    ) -> None:
        self.settings = settings
        self.store = store
        self.read_metadata = read_metadata  # path -> GGUF metadata dict (without loading)
        self.loaded: dict[str, Loaded] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._reaper: asyncio.Task[None] | None = None
        self.default_keep_alive = parse_keep_alive(settings.keep_alive, 300.0)
        # KV states of past prompts, for every model this manager loads (and loads again)
        limit = limit_bytes(settings.prompt_cache_ram_mb)
        self.prompt_cache: PromptCache | None = (
            PromptCache(limit, _disk_tier(settings)) if limit > 0 else None
        )

    # ------------------------------------------------------------ acquire / release

    async def acquire(self, name: str, keep_alive: object = None) -> Loaded:
        """The loaded model for ``name`` (loading it if needed), marked in use."""
        self._ensure_reaper()
        keep = parse_keep_alive(keep_alive, self.default_keep_alive)
        resolved = await asyncio.to_thread(self.store.resolve, name)
        key = resolved.name
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            entry = self.loaded.get(key)
            if entry is not None and not getattr(entry.runner, "alive", True):
                log.info("loading %s again: its runner process ended", key)
                await self._unload(entry)  # its requests have ended: none keeps it in use
                entry = None
            if entry is not None and entry.resolved is not resolved:
                if _load_identity(entry.resolved) == _load_identity(resolved):
                    # re-created with the same weights and load options (a new TEMPLATE,
                    # SYSTEM, sampling PARAMETERs): the next request uses the new definition
                    entry.resolved = resolved
                elif entry.in_use == 0:
                    log.info("reloading %s: its definition changed", key)
                    await self._unload(entry)
                    entry = None
                # else: in use; the old definition serves until it is idle, then reloads
            if entry is None:
                entry = await self._load(resolved, keep)
                self.loaded[key] = entry
            elif keep_alive is not None:
                entry.keep_alive = keep
            entry.in_use += 1
            entry.expires_at = None
            entry.last_used = time.monotonic()
            return entry

    def release(self, entry: Loaded) -> None:
        entry.in_use = max(0, entry.in_use - 1)
        entry.last_used = time.monotonic()
        if entry.in_use == 0:
            if entry.keep_alive is None:
                entry.expires_at = None
            else:
                entry.expires_at = time.monotonic() + entry.keep_alive
                if entry.keep_alive == 0:
                    asyncio.get_running_loop().create_task(self._expire(entry))

    async def unload(self, name: str) -> bool:
        resolved = await asyncio.to_thread(self.store.resolve, name, verify=False)
        entry = self.loaded.get(resolved.name)
        if entry is None:
            return False
        await self._unload(entry)
        return True

    def running(self) -> list[LoadedModel]:
        return [e.info() for e in self.loaded.values()]

    async def close(self) -> None:
        if self._reaper:
            self._reaper.cancel()
        cache = self.prompt_cache
        if cache is not None and cache.disk is None:  # nothing would read what runners save
            cache.limit = 0
        for entry in list(self.loaded.values()):
            await self._unload(entry)
        if cache is not None:
            if cache.disk is not None:  # the states in memory to disk, for the next start
                await asyncio.to_thread(cache.persist, PERSIST_SECONDS)
                await asyncio.to_thread(cache.disk.close)
            cache.limit = 0
            cache.clear()

    # ------------------------------------------------------------ loading

    async def _load(self, resolved: Resolved, keep: float | None) -> Loaded:
        spec = resolved.spec
        path = str(resolved.weights)
        meta = await asyncio.to_thread(self.read_metadata, path)
        kind = model_kind(meta)
        if kind != GENERATION:
            return await self._load_embedder(resolved, keep, meta, kind)
        arch = meta.get("general.architecture", "")
        n_train = int(float(meta.get(f"{arch}.context_length", 0) or 0))
        n_ctx = int(
            _param(spec, "num_ctx", 0)
            or self.settings.context_size
            or min(n_train or DEFAULT_CTX, DEFAULT_CTX)
        )
        n_parallel = int(_param(spec, "num_parallel", 0) or self.settings.num_parallel or 0)
        placement = placement_for(spec, self.settings.rpc_servers, self.settings.tensor_split)
        # on RPC workers, the weights and KV cache take the workers' memory, not this machine's
        weights = weights_bytes(path) if placement is None else 0
        per_seq = kv_cache_bytes(meta, n_ctx) if placement is None else 0
        n_vocab = vocab_size(meta)
        embed = embed_shape(meta, n_ctx, self.settings.embed_max_tokens, n_vocab)
        # the embedding context is made at the first embedding request, but counted now
        overhead = 64 * 2**20 + embed_context_bytes(
            meta, embed, n_vocab, kv_cache_bytes(meta, embed.n_ctx)
        )
        projector = getattr(resolved, "projector", None)
        if projector is not None:
            meta_proj = await asyncio.to_thread(self.read_metadata, str(projector))
            overhead += projector_bytes(str(projector), meta_proj)
        if n_parallel <= 0:  # automatic: 4 slots when memory allows it, else one
            n_parallel = AUTO_PARALLEL
            if weights + per_seq * AUTO_PARALLEL + overhead > self._budget_after_eviction():
                n_parallel = 1
        estimate = weights + per_seq * n_parallel + overhead
        await self._make_room(estimate, resolved.name)
        gpu_layers = (
            spec.gpu_layers
            if spec is not None and spec.gpu_layers is not None
            else int(_param(spec, "num_gpu", self.settings.gpu_layers))
        )
        flash = (
            spec.flash_attention
            if spec is not None and spec.flash_attention is not None
            else (True if self.settings.flash_attention else None)
        )
        config = RunnerConfig(
            n_ctx=n_ctx,
            n_parallel=n_parallel,
            n_batch=int(_param(spec, "num_batch", RunnerConfig.n_batch)),
            threads=int(
                _param(spec, "num_thread", 0) or self.settings.threads or default_threads()
            ),
            flash_attention=flash,
            max_queue=self.settings.max_queue,
            embed_max_tokens=self.settings.embed_max_tokens,
        )
        adapters = [str(a) for a in (getattr(resolved, "adapters", None) or [])]
        # a model on RPC workers runs in a child process: no host-memory cache there
        cache = self.prompt_cache if placement is None else None
        # what a saved state is valid for: whatever changes the KV cells' layout or values
        # (a KV cache type, were it configurable, belongs here too)
        key = fingerprint(path, n_ctx, flash, gpu_layers, adapters)
        started = time.perf_counter()
        try:
            model, runner, lora = await asyncio.to_thread(
                _start_model,
                path,
                gpu_layers,
                config,
                resolved.name,
                adapters,
                str(projector) if projector is not None else None,
                placement,
                (cache, key) if cache is not None else None,
            )
        except LlamaError as exc:
            raise ModelLoadError(f"could not load {resolved.name}: {exc}") from None
        load_ns = int((time.perf_counter() - started) * 1e9)
        log.info(
            "loaded %s (%d ctx x %d slots, ~%d MiB) in %.2fs",
            resolved.name,
            n_ctx,
            n_parallel,
            estimate // 2**20,
            load_ns / 1e9,
        )
        return Loaded(
            resolved.name,
            resolved,
            model,
            runner,
            estimate,
            model.gpu_layers,
            keep,
            load_ns,
            lora=lora,
        )

    async def _load_embedder(
        self, resolved: Resolved, keep: float | None, meta: Metadata, kind: str
    ) -> Loaded:
        """An embedding or reranking model: an :class:`Embedder` instead of a generation
        runner, its memory counted as weights + one decode's buffers (+ a decoder's KV)."""
        spec = resolved.spec
        path = str(resolved.weights)
        n_ctx = int(_param(spec, "num_ctx", 0) or self.settings.embed_model_ctx)
        n_seq = int(_param(spec, "num_parallel", 0) or self.settings.embed_model_sequences)
        config = EmbedderConfig(
            n_ctx=context_for(meta, n_ctx),
            n_seq=max(1, min(n_seq, 256)),  # llama.cpp's most sequences
            threads=int(
                _param(spec, "num_thread", 0) or self.settings.threads or default_threads()
            ),
            flash_attention=self._flash_attention(spec),
            max_queue=self.settings.max_queue,
        )
        kv = kv_cache_bytes(meta, config.n_ctx)
        estimate = weights_bytes(path) + memory_estimate(meta, config, kv)
        await self._make_room(estimate, resolved.name)
        started = time.perf_counter()
        try:
            model, embedder = await asyncio.to_thread(
                start_embedder, path, self._gpu_layers(spec), config, resolved.name, kind
            )
        except LlamaError as exc:
            raise ModelLoadError(f"could not load {resolved.name}: {exc}") from None
        load_ns = int((time.perf_counter() - started) * 1e9)
        log.info(
            "loaded %s (%s model, %d-token inputs x %d sequences, ~%d MiB) in %.2fs",
            resolved.name,
            kind,
            config.n_ctx,
            config.n_seq,
            estimate // 2**20,
            load_ns / 1e9,
        )
        return Loaded(
            resolved.name, resolved, model, embedder, estimate, model.gpu_layers, keep, load_ns
        )

    def _gpu_layers(self, spec: ModelfileSpec | None) -> int:
        if spec is not None and spec.gpu_layers is not None:
            return spec.gpu_layers
        return int(_param(spec, "num_gpu", self.settings.gpu_layers))

    def _flash_attention(self, spec: ModelfileSpec | None) -> bool | None:
        if spec is not None and spec.flash_attention is not None:
            return spec.flash_attention
        return True if self.settings.flash_attention else None

    def _budget_after_eviction(self) -> int:
        idle = sum(e.estimate for e in self.loaded.values() if e.in_use == 0)
        available: int = psutil.virtual_memory().available
        return available + idle - self._kept_free()

    def _kept_free(self) -> int:
        """Memory a load leaves free: the headroom, and the room the prompt cache may still
        fill (what it holds already is not available)."""
        cache = self.prompt_cache
        growth = max(0, cache.limit - cache.bytes) if cache is not None else 0
        return self.settings.memory_headroom_mb * 2**20 + growth

    async def _make_room(self, needed: int, name: str) -> None:
        while True:
            available = psutil.virtual_memory().available - self._kept_free()
            too_many = len(self.loaded) >= max(1, self.settings.max_loaded_models)
            if needed <= available and not too_many:
                return
            idle = [e for e in self.loaded.values() if e.in_use == 0]
            if not idle:
                break
            victim = min(idle, key=lambda e: e.last_used)
            log.info("evicting %s to make room for %s", victim.name, name)
            await self._unload(victim)
        if len(self.loaded) >= max(1, self.settings.max_loaded_models):
            raise InsufficientMemory(
                f"cannot load {name}: {len(self.loaded)} models are loaded and busy "
                f"(limit {self.settings.max_loaded_models}); retry when one is idle",
                needed=needed,
            )
        headroom = self._kept_free()
        available = psutil.virtual_memory().available - headroom
        raise InsufficientMemory(
            f"cannot load {name}: it needs about {needed / 2**30:.2f} GiB (weights + KV cache) "
            f"but only {max(available, 0) / 2**30:.2f} GiB is available after keeping "
            f"{headroom / 2**20:.0f} MiB free (memory_headroom_mb and the prompt cache's "
            "prompt_cache_ram_mb); unload a model or lower num_ctx",
            needed=needed,
            available=max(available, 0),
        )

    async def _unload(self, entry: Loaded) -> None:
        if self.loaded.get(entry.name) is entry:
            del self.loaded[entry.name]
        await asyncio.to_thread(_stop_model, entry)
        log.info("unloaded %s", entry.name)

    async def _expire(self, entry: Loaded) -> None:
        if entry.in_use == 0 and self.loaded.get(entry.name) is entry:
            await self._unload(entry)

    # ------------------------------------------------------------ keep_alive expiry

    def _ensure_reaper(self) -> None:
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.get_running_loop().create_task(self._reap())

    async def _reap(self) -> None:
        while True:
            await asyncio.sleep(0.25)
            now = time.monotonic()
            for entry in list(self.loaded.values()):
                if entry.in_use == 0 and entry.expires_at is not None and entry.expires_at <= now:
                    await self._expire(entry)


def _disk_tier(settings: Settings) -> DiskTier | None:
    if settings.prompt_cache_disk_mb <= 0:
        return None
    folder = settings.prompt_cache_dir
    if folder == Path(""):
        folder = Path(settings.cache_dir) / "prompt-cache"
    try:
        return DiskTier(folder, settings.prompt_cache_disk_mb * 2**20)
    except OSError as exc:
        log.warning("no prompt cache on disk: cannot use %s (%s)", folder, exc)
        return None


def default_threads(physical: int | None = None, logical: int | None = None) -> int:
    """llama.cpp's threads: one a physical core, leaving a logical CPU to the rest of the
    daemon (its event loop, IPC, the clients on the same machine). ggml's threads wait for
    each other at every step of a decode by spinning, so one of them pre-empted stalls them
    all: with both CPUs of a 2-CPU machine given to llama.cpp, 32 streams over HTTP got 5.4
    tok/s, and 45 with one thread (bench/soak.py, issue 20's collapse)."""
    logical = logical or os.cpu_count() or 1
    physical = physical or psutil.cpu_count(logical=False) or logical
    return max(1, min(physical, logical - 1))


def _start_model(
    path: str,
    gpu_layers: int,
    config: RunnerConfig,
    name: str,
    adapters: list[str],
    projector: str | None = None,
    placement: Placement | None = None,
    cache: tuple[PromptCache, str] | None = None,
) -> tuple[Model, Runner | RemoteRunner, list[LoraAdapter]]:
    if placement is not None:
        if projector is not None:
            raise LlamaError("a vision projector on RPC workers is not supported yet")
        verbose = logging.getLogger("mullama").isEnabledFor(logging.DEBUG)
        model, remote = start_remote(path, config, name, adapters, placement, verbose)
        return model, remote, []
    model = Model(path, gpu_layers=gpu_layers)
    lora: list[LoraAdapter] = []
    try:
        lora = [load_lora(model, a) for a in adapters]
        prompt_cache, key = cache if cache is not None else (None, "")
        runner = Runner(
            model,
            config,
            name=name,
            lora=lora,
            projector=projector,
            prompt_cache=prompt_cache,
            cache_key=key,
        )
    except Exception:
        model.close()
        raise
    return model, runner, lora


def _stop_model(entry: Loaded) -> None:
    entry.runner.stop()
    entry.model.close()
