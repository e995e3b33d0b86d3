"""LocalEngine: the Engine API in this process (store + registry + loaded models)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import os
import threading
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from .. import __version__
from ..config import Settings, load_settings
from . import sampling
from .api import (
    AliasInfo,
    ChatRequest,
    CompletionRequest,
    Done,
    EmbedRequest,
    EmbedResult,
    Engine,
    EngineError,
    EngineStatus,
    Event,
    HubModel,
    InvalidRequest,
    Liveness,
    LoadedModel,
    Message,
    ModelDetails,
    ModelInfo,
    PruneResult,
    PullProgress,
    QuantFile,
    RerankRequest,
    RerankResult,
    SamplingOptions,
    Started,
    ThinkingDelta,
    Timings,
    Usage,
)
from .chat_plan import ChatPlan, plan_chat
from .confined import AllowedDirs
from .local_embed import (
    check_embed_request,
    check_rerank_request,
    embed_vectors,
    generating_runner,
    ranked,
    reranker,
    shorten,
)
from .local_vision import projector, tokenize_images, with_markers
from .manager import Loaded, ModelManager
from .metrics import EngineMetrics
from .options import validate
from .pipeline import OutputPipeline
from .prompt import RenderedPrompt, render_chat
from .runner import Job, RunnerEvent
from .structured import format_grammar
from .token_ids import check_token_ids
from .tools import ToolFormat, template_shows_tools, tool_instructions
from .vision_prompt import ImagePrompt

if TYPE_CHECKING:
    from prometheus_client import Counter

    from .store import ModelStore


_P = ParamSpec("_P")
_T = TypeVar("_T")


def _read_metadata(path: str) -> dict[str, Any]:
    from .gguf_info import read_header

    header = read_header(path, with_tensors=False)
    # long arrays (the vocabulary) are not kept, only their lengths: ``<key>_count``
    counts = {f"{key}_count": n for key, n in header.array_lengths.items()}
    return {**header.metadata, **counts}


class LocalEngine(Engine):
    def __init__(self, settings: Settings | None = None, store: ModelStore | None = None):
        self.settings = settings or load_settings()
        if store is None:
            from .store import ModelStore

            store = ModelStore(self.settings)
        self.store = store
        self.manager = ModelManager(self.settings, store, _read_metadata)
        self.metrics = EngineMetrics(self)
        self.started = time.time()
        self.instance = os.urandom(8).hex()
        self._default_model = self.settings.default_model
        self.endpoints: dict[str, str] = {}
        self.requests_active = 0

    # ------------------------------------------------------------ store

    async def list_models(self) -> list[ModelInfo]:
        return await asyncio.to_thread(self.store.list)

    async def show_model(self, name: str) -> ModelDetails:
        return await asyncio.to_thread(self.store.show, self._name(name))

    async def pull_model(self, ref: str) -> AsyncIterator[PullProgress]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[PullProgress | BaseException | None] = asyncio.Queue()
        cancel = threading.Event()

        def progress(p: PullProgress) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, p)

        def work() -> None:
            try:
                self.store.pull(ref, progress, cancel)
                loop.call_soon_threadsafe(queue.put_nowait, None)
            except BaseException as exc:  # handed to the consumer
                loop.call_soon_threadsafe(queue.put_nowait, exc)

        task = loop.run_in_executor(None, work)
        try:
            while True:
                item = await queue.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            cancel.set()
            with contextlib.suppress(BaseException):
                await asyncio.shield(task)

    async def create_model(
        self,
        name: str,
        modelfile: str,
        base_dir: str | None = None,
        allowed_dirs: list[str] | None = None,
    ) -> ModelInfo:
        allowed = AllowedDirs(allowed_dirs) if allowed_dirs is not None else None
        return await asyncio.to_thread(
            functools.partial(self.store.create, name, modelfile, base_dir, allowed=allowed)
        )

    async def copy_model(self, source: str, destination: str, overwrite: bool = False) -> ModelInfo:
        return await asyncio.to_thread(self.store.copy, source, destination, overwrite)

    async def delete_model(self, name: str) -> None:
        with contextlib.suppress(EngineError):
            await self.manager.unload(name)
        await asyncio.to_thread(self.store.delete, name)

    async def blob_path(self, digest: str) -> str | None:
        path = self.store.blob_path(digest)
        return str(path) if await asyncio.to_thread(path.is_file) else None

    async def add_blob(self, digest: str, chunks: AsyncIterable[bytes]) -> str:
        loop = asyncio.get_running_loop()
        source = aiter(chunks)

        def pull() -> Iterator[bytes]:  # on the worker thread: each chunk from the loop
            while (
                chunk := asyncio.run_coroutine_threadsafe(_next(source), loop).result()
            ) is not None:
                yield chunk

        stored: str = await asyncio.to_thread(self.store.add_blob, pull(), digest)
        return stored

    async def prune_store(self) -> PruneResult:
        removed, freed = await asyncio.to_thread(self.store.prune)
        return PruneResult(removed, freed)

    # ------------------------------------------------------------ the model library

    async def list_aliases(self) -> list[AliasInfo]:
        entries = await asyncio.to_thread(self.store.registry.entries)
        return [e.info() for e in entries]

    async def search_models(self, query: str, limit: int = 20) -> list[HubModel]:
        return await asyncio.to_thread(self.store.hub.search, query, limit)

    async def list_quants(self, repo: str) -> list[QuantFile]:
        return await asyncio.to_thread(self.store.hub.quants, repo)

    # ------------------------------------------------------------ loaded models

    async def load_model(self, name: str, keep_alive: Any = None) -> LoadedModel:
        entry = await self.manager.acquire(self._name(name), keep_alive)
        self.manager.release(entry)
        return entry.info()

    async def unload_model(self, name: str) -> None:
        await self.manager.unload(self._name(name))

    async def running_models(self) -> list[LoadedModel]:
        return self.manager.running()

    # ------------------------------------------------------------ inference

    async def chat(self, request: ChatRequest) -> AsyncIterator[Event]:
        opts = self._check_options(request.options)
        entry, load_ns = await self._acquire(request.model, request.keep_alive)
        try:
            if any(m.images for m in request.messages):
                projector(entry)
            plan, rendered, tokens, media = await _off_loop(
                entry, self._prepare_chat, entry, request
            )
            try:
                opts = self._merge(entry, opts, rendered.stops)
                if plan.grammar:
                    opts.grammar = plan.grammar
                pipeline = plan.pipeline(rendered.text)
                budget = None
                if plan.think_budget is not None and pipeline.thinking is not None:
                    budget = (
                        plan.think_budget,
                        entry.model.tokenize(
                            plan.thinking.end + "\n\n", add_special=False, parse_special=True
                        ),
                    )
                    # the budget is enforced as the thinking arrives, a step at a time: a step
                    # of drafts would overrun it by up to draft_max tokens
                    opts.draft_max = 0
            except BaseException:
                if media is not None:
                    media.close()
                raise
            async for event in self._generate(
                entry, tokens, opts, load_ns, "chat", pipeline, budget, media
            ):
                yield event
        finally:
            self.manager.release(entry)

    async def complete(self, request: CompletionRequest) -> AsyncIterator[Event]:
        opts = self._check_options(request.options)
        entry, load_ns = await self._acquire(request.model, request.keep_alive)
        try:
            generating_runner(entry, "generate text")
            if request.context:
                tokens = list(request.context)
            else:
                tokens = []
            marker = projector(entry).marker if request.images else ""
            if request.raw or (not request.prompt and not request.system and not marker):
                text = marker * len(request.images) + request.prompt
                stops: list[str] = []
            else:
                messages = ([Message("system", request.system)] if request.system else []) + [
                    Message("user", request.prompt, images=list(request.images))
                ]
                rendered = self._render_chat(
                    entry,
                    ChatRequest(
                        request.model, with_markers(messages, marker), template=request.template
                    ),
                    history=False,
                )
                text, stops = rendered.text, rendered.stops
            media = None
            if request.images:
                media = await _off_loop(
                    entry,
                    tokenize_images,
                    self.settings,
                    entry,
                    text,
                    request.images,
                    add_special=not tokens and self._wants_bos(entry, text),
                    prefix=tokens,
                )
                tokens = media.cells
            else:
                tokens += await _off_loop(
                    entry,
                    entry.model.tokenize,
                    text,
                    add_special=not tokens and self._wants_bos(entry, text),
                )
            try:
                opts = self._merge(entry, opts, stops)
                grammar = format_grammar(request.format)
                if grammar:  # Ollama's generate `format`, llama-server's `json_schema`
                    opts.grammar = grammar
            except BaseException:
                if media is not None:
                    media.close()
                raise
            if not tokens:
                yield Done(
                    "load", model=entry.name, timings=Timings(load_ns=load_ns, total_ns=load_ns)
                )
                return
            async for event in self._generate(
                entry, tokens, opts, load_ns, "completion", media=media
            ):
                yield event
        finally:
            self.manager.release(entry)

    async def embed(self, request: EmbedRequest) -> EmbedResult:
        check_embed_request(request)
        entry, load_ns = await self._acquire(request.model, request.keep_alive)
        try:
            started = time.perf_counter()
            vectors, n_tokens = await embed_vectors(entry, request)
        finally:
            self.manager.release(entry)
        if request.dimensions is not None:
            vectors = shorten(vectors, request.dimensions)
        elapsed = int((time.perf_counter() - started) * 1e9)
        self.metrics.requests_total.labels(entry.name, "embed").inc()
        return EmbedResult(
            entry.name,
            vectors,
            n_tokens,
            Timings(load_ns=load_ns, prompt_eval_ns=elapsed, total_ns=elapsed + load_ns),
        )

    async def rerank(self, request: RerankRequest) -> RerankResult:
        check_rerank_request(request)
        entry, load_ns = await self._acquire(request.model, request.keep_alive)
        try:
            runner = reranker(entry)
            started = time.perf_counter()
            future = runner.rerank(request.query, request.documents, request.truncate)
            scores, n_tokens = await asyncio.wrap_future(future)
        finally:
            self.manager.release(entry)
        elapsed = int((time.perf_counter() - started) * 1e9)
        self.metrics.requests_total.labels(entry.name, "rerank").inc()
        return RerankResult(
            entry.name,
            ranked(scores, request.top_n),
            n_tokens,
            Timings(load_ns=load_ns, prompt_eval_ns=elapsed, total_ns=elapsed + load_ns),
        )

    async def tokenize(
        self, model: str, text: str, add_special: bool = True, parse_special: bool = True
    ) -> list[int]:
        entry, _ = await self._acquire(model, None)
        try:
            return await _off_loop(
                entry,
                entry.model.tokenize,
                text,
                add_special=add_special,
                parse_special=parse_special,
            )
        finally:
            self.manager.release(entry)

    async def detokenize(self, model: str, tokens: list[int]) -> str:
        pieces = await self.token_pieces(model, tokens)
        return b"".join(pieces).decode("utf-8", "replace")

    async def token_pieces(self, model: str, tokens: list[int]) -> list[bytes]:
        entry, _ = await self._acquire(model, None)
        try:
            check_token_ids(
                tokens, entry.model.n_vocab, "tokens", param="tokens", param_indexed=True
            )
            return [entry.model.piece(token, special=True) for token in tokens]
        finally:
            self.manager.release(entry)

    async def count_chat_tokens(self, request: ChatRequest) -> int:
        entry, _ = await self._acquire(request.model, request.keep_alive)
        try:
            if any(m.images for m in request.messages):
                projector(entry)
            prepared = await _off_loop(entry, self._prepare_chat, entry, request)
            if prepared[3] is not None:
                prepared[3].close()
            return len(prepared[2])  # the prompt chat() would decode, image tokens included
        finally:
            self.manager.release(entry)

    # ------------------------------------------------------------ engine

    async def status(self) -> EngineStatus:
        running = self.manager.running()
        return EngineStatus(
            version=__version__,
            uptime_secs=time.time() - self.started,
            mode="local",
            loaded=running,
            # every request since start, of models loaded now or not (the counter is per model)
            requests_total=int(_counter_total(self.metrics.requests_total)),
            requests_active=self.requests_active,
            tokens_generated=int(_counter_total(self.metrics.tokens_generated)),
            prompt_tokens=int(_counter_total(self.metrics.prompt_tokens)),
            endpoints=dict(self.endpoints),
            default_model=self._default_model,
        )

    async def ping(self, timeout: float | None = None) -> Liveness:
        return Liveness(__version__, os.getpid(), self.instance, self.started)

    async def default_model(self) -> str:
        return self._default_model

    async def set_default_model(self, name: str) -> None:
        await asyncio.to_thread(self.store.resolve, name, verify=False)
        self._default_model = name

    @property
    def mode(self) -> str:
        return "local"

    async def metrics_snapshot(self) -> dict[str, Any]:
        return {"exposition": self.metrics.exposition().decode()}

    async def close(self) -> None:
        await self.manager.close()

    # ------------------------------------------------------------ internals

    def _name(self, name: str) -> str:
        name = (name or "").strip() or self._default_model
        if not name:
            raise InvalidRequest("no model given and no default model is set", param="model")
        return name

    async def _acquire(self, name: str, keep_alive: object) -> tuple[Loaded, int]:
        before = set(self.manager.loaded)
        entry = await self.manager.acquire(self._name(name), keep_alive)
        load_ns = entry.load_ns if entry.name not in before else 0
        return entry, load_ns

    def _check_options(self, options: SamplingOptions) -> SamplingOptions:
        if options.stop is not None and isinstance(options.stop, str):
            options.stop = [options.stop]
        return options  # validated once merged with the model's defaults (_merge)

    def _merge(
        self, entry: Loaded, request: SamplingOptions, template_stops: list[str]
    ) -> SamplingOptions:
        spec = getattr(entry.resolved, "spec", None)
        model_opts = sampling.from_parameters(spec.parameters if spec is not None else {})
        opts = sampling.merge(sampling.DEFAULTS, model_opts, request)
        if opts.ignore_eos:  # the model's and template's end-of-turn strings count as EOS too
            stops, template_stops = list(request.stop or []), []
        else:
            stops = list(request.stop) if request.stop else list(model_opts.stop or [])
        opts.stop = stops + [s for s in template_stops if s not in stops]
        cap = self.settings.max_tokens_cap
        if cap > 0 and (opts.max_tokens is None or opts.max_tokens < 0 or opts.max_tokens > cap):
            opts.max_tokens = cap
        validate(opts)
        if opts.logit_bias is not None:
            resolved = sampling.resolve_logit_bias(opts.logit_bias, entry.model)
            opts.logit_bias = list(resolved)
        return opts

    def _prepare_chat(
        self, entry: Loaded, request: ChatRequest
    ) -> tuple[ChatPlan, RenderedPrompt, list[int], ImagePrompt | None]:
        """A chat's plan, its prompt as rendered (tools, thinking, tool results) and its tokens:
        what ``chat`` decodes and ``count_chat_tokens`` counts; with images, the tokens are
        the prompt's cells (image tokens included) and the ImagePrompt is the caller's to close."""
        generating_runner(entry, "chat")
        plan = self._plan(entry, request)
        request = self._wrap_tool_results(entry, request, plan)
        images = [image for m in request.messages for image in m.images]
        if images:
            marker = projector(entry).marker
            request = dataclasses.replace(request, messages=with_markers(request.messages, marker))
        rendered = self._render_chat(
            entry, request, think=plan.think, tools=plan.tools, tool_fmt=plan.tool_format
        )
        add_special = self._wants_bos(entry, rendered.text)
        if images:
            media = tokenize_images(
                self.settings, entry, rendered.text, images, add_special=add_special
            )
            return plan, rendered, media.cells, media
        tokens = entry.model.tokenize(rendered.text, add_special=add_special)
        return plan, rendered, tokens, None

    def _plan(self, entry: Loaded, request: ChatRequest) -> ChatPlan:
        return plan_chat(
            request,
            getattr(entry.resolved, "spec", None),
            getattr(entry.resolved, "info", None),
            self._plan_template(entry, request),
        )

    def _wrap_tool_results(
        self, entry: Loaded, request: ChatRequest, plan: ChatPlan
    ) -> ChatRequest:
        """Tool results in TOOLFORMAT's result markers, unless the template places them itself."""
        fmt = plan.tool_format
        template = self._plan_template(entry, request)
        if (
            fmt is None
            or not fmt.result_start
            or fmt.result_start in template
            or not any(m.role == "tool" for m in request.messages)
        ):
            return request
        messages = [
            dataclasses.replace(m, content=f"{fmt.result_start}{m.content}{fmt.result_end}")
            if m.role == "tool"
            else m
            for m in request.messages
        ]
        return dataclasses.replace(request, messages=messages)

    def _plan_template(self, entry: Loaded, request: ChatRequest) -> str:
        spec = getattr(entry.resolved, "spec", None)
        return (
            request.template
            or (spec.template if spec is not None else None)
            or entry.model.chat_template
            or ""
        )

    def _render_chat(
        self,
        entry: Loaded,
        request: ChatRequest,
        history: bool = True,
        think: bool | None = None,
        tools: list[dict[str, Any]] | None = None,
        tool_fmt: ToolFormat | None = None,
    ) -> RenderedPrompt:
        spec = getattr(entry.resolved, "spec", None)
        messages = list(request.messages)
        if spec is not None and history:
            preset = [Message(role, content) for role, content in spec.messages]
            messages = preset + messages if preset else messages
        if spec is not None and spec.system and not any(m.role == "system" for m in messages):
            messages.insert(0, Message("system", spec.system))
        go_template = request.template or (spec.template if spec is not None else None)
        model = entry.model
        if tools and tool_fmt and not template_shows_tools(go_template, model.chat_template):
            messages = _with_system_text(messages, tool_instructions(tools, tool_fmt))
        return render_chat(
            go_template=go_template,
            jinja_template=model.chat_template,
            messages=messages,
            tools=tools,
            think=think,
            bos_token=model.token_text(model.bos) if model.bos >= 0 else "",
            eos_token=model.token_text(model.eos) if model.eos >= 0 else "",
        )

    def _wants_bos(self, entry: Loaded, text: str) -> bool:
        model = entry.model
        if not model.add_bos or model.bos < 0:
            return False
        return not text.startswith(model.token_text(model.bos))

    async def _generate(
        self,
        entry: Loaded,
        tokens: list[int],
        opts: SamplingOptions,
        load_ns: int,
        kind: str,
        pipeline: OutputPipeline | None = None,
        think_budget: tuple[int, list[int]] | None = None,
        media: ImagePrompt | None = None,
    ) -> AsyncIterator[Event]:
        """Runs one job, translating its text through ``pipeline`` (thinking, tool calls).
        The job owns ``media`` (a prompt's images) once submitted; before, it is closed here."""
        pipeline = pipeline or OutputPipeline()
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[RunnerEvent] = asyncio.Queue()
        job = Job(tokens, opts, loop, queue)
        if media is not None:
            job.images, job.media = media.images, media
        try:
            if opts.max_tokens == 0:
                yield Done(
                    "length",
                    Usage(len(tokens), 0),
                    Timings(load_ns=load_ns, total_ns=load_ns),
                    model=entry.name,
                )
                return
            if opts.grammar:
                sampling.check_grammar(opts.grammar, entry.model)
            generating_runner(entry, "generate text").submit(job)
        except BaseException:
            if media is not None:
                media.close()
            raise
        self.requests_active += 1
        self.metrics.requests_active.inc()
        finished = False
        reasoning = 0  # tokens generated up to the last one whose text was thinking
        try:
            yield Started(len(tokens))  # admitted: what follows is the wait for a slot, prefill
            while True:
                event = await queue.get()
                if isinstance(event, EngineError):
                    finished = True
                    self.metrics.errors.labels(kind).inc()
                    raise event
                if isinstance(event, Done):
                    finished = True
                    for tail in pipeline.flush():
                        yield tail
                    if pipeline.tool_calls and event.finish_reason == "stop":
                        event.finish_reason = "tool_calls"
                    event.usage.reasoning_tokens = min(reasoning, event.usage.completion_tokens)
                    event.model = entry.name
                    event.timings.load_ns = load_ns
                    event.timings.total_ns += load_ns
                    self.metrics.observe_done(entry.name, kind, event)
                    yield event
                    return
                outs = pipeline.feed(event)
                if any(isinstance(out, ThinkingDelta) for out in outs) or pipeline.in_thinking:
                    reasoning = event.generated
                for out in outs:
                    yield out
                if (
                    think_budget
                    and pipeline.in_thinking
                    and pipeline.thinking_pieces >= think_budget[0]
                ):
                    job.inject, think_budget = list(think_budget[1]), None
        finally:
            if not finished:
                job.cancel()
            self.requests_active -= 1
            self.metrics.requests_active.dec()


async def _off_loop(entry: Loaded, fn: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
    """``fn`` in a worker thread: a long prompt renders and tokenizes for seconds, which the
    event loop (every other request, ``/health``) must not wait for. The model is not freed
    while ``fn`` runs (an unload waits for it)."""

    def run() -> _T:
        with entry.model.in_use():
            return fn(*args, **kwargs)

    return await asyncio.to_thread(run)


async def _next(chunks: AsyncIterator[bytes]) -> bytes | None:
    return await anext(chunks, None)


def _counter_total(counter: Counter) -> float:
    return sum(
        s.value for metric in counter.collect() for s in metric.samples if s.name.endswith("_total")
    )


def _with_system_text(messages: list[Message], text: str) -> list[Message]:
    """``text`` appended to the first system message, or as one at the start."""
    for i, m in enumerate(messages):
        if m.role == "system":
            merged = dataclasses.replace(m, content=f"{m.content}\n\n{text}" if m.content else text)
            return [*messages[:i], merged, *messages[i + 1 :]]
    return [Message("system", text), *messages]
