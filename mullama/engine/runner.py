"""The model runner: one thread per loaded model, the only code touching its llama context.

Requests become :class:`Job` objects in a first-come-first-served queue. Each step,
the runner puts every active sequence into one ``llama_decode``: the next token of
each generating sequence plus chunks of pending prompts (continuous batching with
chunked prefill). A sequence lives in a *slot*; the slot's KV cache keeps the
tokens of its last request so a following request with the same prefix (the next
turn of a conversation, a shared system prompt) evaluates only what is new.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, TypeVar

import llama_cpp

from . import sampling
from .api import (
    Cancelled,
    ContextOverflow,
    Done,
    EngineError,
    Interrupted,
    InvalidRequest,
    QueueFull,
    Timings,
    Usage,
)
from .embedding import Embedder, EmbedJob, embed_shape
from .fast_sampler import FastSampler, Logits, handles
from .llm import Batch, Context, ContextParams, LlamaError, LoraAdapter, Model
from .output import StopMatcher
from .prompt_cache import PromptCache, SlotCache, fingerprint
from .runner_output import flush_text, logprob_entries, text_out
from .runner_state import (
    Job,
    Outbox,
    RunnerConfig,
    RunnerEvent,
    Slot,
    close_media,
    common_prefix,
    deliver,
)
from .speculative import Drafter, StepCost, choose
from .token_ids import check_token_ids
from .vision_prompt import ImagePrompt, image_safe_prefix, position_of, without_images

if TYPE_CHECKING:
    from .runner_vision import RunnerVision

__all__ = ["Job", "Runner", "RunnerConfig", "RunnerEvent", "Slot", "common_prefix"]

log = logging.getLogger("mullama.runner")

_T = TypeVar("_T")
# a cached prefix this long (or half of a shorter prompt) decides the slot; shorter ones (a
# template's first tokens) are not worth splitting the batch or evicting another cache for
REUSE_MIN_TOKENS = 32


class Runner:
    def __init__(
        self,
        model: Model,
        config: RunnerConfig,
        name: str = "",
        lora: list[LoraAdapter] | None = None,
        projector: str | None = None,
        prompt_cache: PromptCache | None = None,
        cache_key: str = "",
    ) -> None:
        self.model = model
        self.config = config
        self.name = name or model.path
        self._wake = threading.Condition()
        self.vision: RunnerVision | None = None
        n_batch, n_ubatch = config.n_batch, config.n_ubatch
        if projector:
            from .runner_vision import load_vision

            self.vision = load_vision(projector, model, config.threads, self._notify, self.name)
            n_ubatch = self.vision.ubatch(n_batch) or n_ubatch
            n_batch = max(n_batch, n_ubatch)
        try:
            self.ctx = Context(
                model,
                ContextParams(
                    n_ctx=config.n_ctx * config.n_parallel,
                    n_batch=n_batch,
                    n_ubatch=n_ubatch,
                    n_seq_max=config.n_parallel,
                    threads=config.threads,
                    flash_attention=config.flash_attention,
                ),
            )
        except BaseException:
            if self.vision is not None:
                self.vision.close()
            raise
        if lora:
            self.ctx.set_lora(lora)
        # per sequence: what was asked, unless llama.cpp made the context smaller (each
        # sequence then stops before its KV stream is full, never failing a decode for room)
        self.n_ctx = min(config.n_ctx, self.ctx.n_ctx // config.n_parallel)
        self.batch = Batch(max(config.n_batch, config.n_parallel))
        self.slots = [Slot(i) for i in range(config.n_parallel)]
        # slots' states saved to host memory and restored from it (see prompt_cache)
        self.prompt_cache = (
            SlotCache(
                prompt_cache,
                cache_key or fingerprint(model.path, self.n_ctx, config.flash_attention),
                self.ctx,
            )
            if prompt_cache is not None and prompt_cache.limit > 0
            else None
        )
        self._queue: collections.deque[Job] = collections.deque()
        self._calls: collections.deque[tuple[Callable[[], Any], Future[Any]]] = collections.deque()
        self._stopping = False
        self.embed_shape = embed_shape(
            model.metadata, config.n_ctx, config.embed_max_tokens, model.n_vocab, model.n_params
        )
        self._embedder: Embedder | None = None
        self._embeds: collections.deque[EmbedJob] = collections.deque()
        self._embed_owed = 0.0  # seconds of decode steps due before the next embedding chunk
        self._outbox: dict[asyncio.AbstractEventLoop, Outbox] = {}
        # counters for status and metrics
        self.requests_total = 0
        self.tokens_generated = 0
        self.prompt_tokens = 0
        self.cache_hit_tokens = 0
        self.last_batch_size = 0
        self.decode_failures = 0  # llama_decode calls that failed (see _decode_apart)
        # speculative decoding: not where a sequence's cells cannot be cut back (recurrent state)
        self.drafting = not (
            llama_cpp.llama_model_is_recurrent(model.ptr)
            or llama_cpp.llama_model_is_hybrid(model.ptr)
        )
        self.step_cost = StepCost()
        self.draft_tokens = 0
        self.draft_accepted = 0
        self._logit_tokens = 0  # tokens with logits in the planned step, when it has no prompt
        self._thread = threading.Thread(target=self._run, name=f"runner:{self.name}", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------ public, any thread

    @property
    def busy_slots(self) -> int:
        return sum(1 for s in self.slots if s.job is not None)

    @property
    def queued(self) -> int:
        return len(self._queue)

    @property
    def active(self) -> int:
        return self.busy_slots + self.queued

    @property
    def kv_cache_usage(self) -> float:
        """The KV cache's cells (``n_ctx`` per slot) that running requests hold or are about
        to fill (their prompt and what they generated), as a fraction. An idle slot's cached
        prefix does not count: the next request that needs the slot overwrites it, as vLLM
        counts a prefix-cached block no running request uses as free."""
        total = self.n_ctx * len(self.slots)
        held = 0
        for slot in self.slots:
            job = slot.job  # read once: the runner thread may clear it meanwhile
            if job is not None:
                held += len(slot.tokens) + len(job.pending)
        return min(1.0, held / total) if total else 0.0

    def submit(self, job: Job) -> None:
        spans = [image.span for image in job.images]
        check_token_ids(
            without_images(job.prompt, spans) if spans else job.prompt, self.model.n_vocab
        )
        if spans and self.vision is None:
            raise EngineError(f"{self.name} has no vision projector loaded")
        if len(job.prompt) >= self.n_ctx:
            raise ContextOverflow(
                f"the prompt is {len(job.prompt)} tokens but the context holds {self.n_ctx} "
                f"(and needs room to answer); shorten the prompt or raise num_ctx",
                prompt_tokens=len(job.prompt),
                context_length=self.n_ctx,
            )
        with self._wake:
            # requests that a free slot will take at the next step are not waiting
            free = sum(1 for s in self.slots if s.job is None)
            waiting = len(self._queue) - free
            if waiting >= self.config.max_queue:
                raise QueueFull(
                    f"{self.name} already has {waiting} requests waiting; retry shortly",
                    retry_after=1,
                )
            self._queue.append(job)
            self._wake.notify()

    def check_images(self, media: ImagePrompt) -> None:
        """Refuse (400) a prompt with images this runner cannot decode."""
        if media.images and media.images[-1].span.end == len(media.cells):
            raise InvalidRequest("the prompt ends with an image: add text after it", param="images")
        limit = self.vision.max_tokens if self.vision is not None else 0
        for image in media.images:
            if limit and image.span.n_tokens > limit:
                raise InvalidRequest(
                    f"an image takes {image.span.n_tokens} tokens, more than the {limit} "
                    f"{self.name} decodes at once",
                    param="images",
                )

    def submit_embed(self, inputs: list[list[int]]) -> EmbedJob:
        """Queue token ids (each at most ``embed_shape.n_ctx`` long) for embedding; the job's
        future gets their vectors. The runner embeds a chunk of them between decode steps."""
        job = EmbedJob(inputs)
        with self._wake:
            if len(self._embeds) >= self.config.max_queue:
                raise QueueFull(
                    f"{self.name} already has {len(self._embeds)} embedding requests waiting; "
                    "retry shortly",
                    retry_after=1,
                )
            self._embeds.append(job)
            self._wake.notify()
        return job

    def call(self, fn: Callable[[], _T]) -> Future[_T]:
        """Run ``fn`` on the runner thread between decode steps."""
        future: Future[_T] = Future()
        with self._wake:
            self._calls.append((fn, future))
            self._wake.notify()
        return future

    def stop(self, timeout: float = 30.0) -> None:
        """Finish: queued and running jobs end as cancelled, then free the context."""
        with self._wake:
            self._stopping = True
            self._wake.notify()
        self._thread.join(timeout)

    # ------------------------------------------------------------ runner thread

    def _run(self) -> None:
        try:
            while True:
                with self._wake:
                    while not (
                        self._stopping
                        or (self._queue and self.busy_slots < len(self.slots))
                        or self._calls
                        or self._steppable()
                        or self._embeds
                    ):
                        # a sequence waiting for its image's encoding: the encoder wakes us
                        self._wake.wait(0.05 if self.busy_slots else None)
                    if self._stopping:
                        break
                self._run_calls()
                self._admit()
                if self.busy_slots:
                    started = time.perf_counter()
                    self._step()
                    self._embed_owed -= time.perf_counter() - started
                self._flush()
                # embeddings and generation share the thread half and half: a chunk of an
                # embedding waits until as much time went to decode steps since the last one
                if self._embeds and (self._embed_owed <= 0 or not self._steppable()):
                    started = time.perf_counter()
                    self._embed_step()
                    self._embed_owed = time.perf_counter() - started
        finally:
            self._shutdown()
            self._flush()

    def _notify(self) -> None:
        with self._wake:
            self._wake.notify()

    def _steppable(self) -> bool:
        """Whether a step has something to do: a sequence not waiting for an image encoding."""
        vision = self.vision
        for slot in self.slots:
            job = slot.job
            if job is not None and (
                vision is None or job.cancelled.is_set() or not vision.waiting(job)
            ):
                return True
        return False

    def _emit(self, job: Job, event: RunnerEvent) -> None:
        self._outbox.setdefault(job.loop, []).append((job.queue, event))

    def _flush(self) -> None:
        """Hand this step's events over: one wake-up of each event loop, not one per token."""
        if not self._outbox:
            return
        outbox, self._outbox = self._outbox, {}
        for loop, items in outbox.items():
            try:
                loop.call_soon_threadsafe(deliver, items)
            except RuntimeError:  # that loop is closed: nobody is listening any more
                pass

    def _run_calls(self) -> None:
        while self._calls:
            fn, future = self._calls.popleft()
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn())
                except BaseException as exc:  # handed to the caller
                    future.set_exception(exc)

    def _admit(self) -> None:
        while self._queue:
            free = [s for s in self.slots if s.job is None]
            if not free:
                return
            with self._wake:
                job = self._queue.popleft()
            if job.cancelled.is_set():
                close_media(job)
                self._emit(job, Cancelled("cancelled before it started"))
                continue
            try:
                self._start(job, free)
            except EngineError as exc:
                close_media(job)
                self._emit(job, exc)

    def _start(self, job: Job, free: list[Slot]) -> None:
        slot, keep = self._pick_slot(job, free)
        if self.prompt_cache is not None:
            keep = self.prompt_cache.prepare(slot, job.prompt, keep, text_only=not job.images)
        if keep < len(slot.tokens) and not self.ctx.seq_rm(
            slot.id, position_of(keep, slot.images), -1
        ):
            self.ctx.seq_rm(slot.id, 0, -1)  # this cache cannot cut mid-sequence: start over
            keep = 0
        slot.truncate(keep)
        if keep < slot.logits_at:
            slot.forget_logits()
        elif keep == len(job.prompt):
            job.replay = slot.logits
        seed = sampling.seed_for(job.opts)
        if handles(job.opts):
            job.fast = FastSampler(job.opts, seed)
        else:
            job.chain = sampling.build_chain(job.opts, self.model, seed)
        job.stops = StopMatcher(job.opts.stop or [])
        if self.drafting and (job.opts.draft_max or 0) > 0:
            job.drafter = Drafter(job.opts.draft_max or 0, job.opts.draft_min or 0)
        job.cached = keep
        job.pending = job.prompt[keep:]
        job.slot = slot
        job.t_started = time.perf_counter()
        slot.job = job
        if self.vision is not None and job.images:
            self.vision.start(job, keep)
        self.requests_total += 1
        self.prompt_tokens += len(job.prompt)
        self.cache_hit_tokens += keep

    def _pick_slot(self, job: Job, free: list[Slot]) -> tuple[Slot, int]:
        """The free slot for a new request, and how much of its cache the request keeps.

        A slot whose cache holds a useful part of the prompt (``REUSE_MIN_TOKENS``, or half of
        a shorter prompt) wins, the longest first. Otherwise the choice keeps
        the busy sequences in few runs of consecutive ids: llama.cpp splits a step's batch into
        one compute pass per run of consecutive sequence ids (with a KV stream per sequence), so
        busy slots 0, 2, 4 and 6 cost four passes where 0-3 cost one. Among equals, the least
        recently used slot goes, so the caches of recent conversations last longest (a new chat
        that shares only its template's first tokens with one does not overwrite it).
        """
        prompt = job.prompt
        wanted = [image.span for image in job.images]
        busy = {s.id for s in self.slots if s.job is not None}

        def runs_with(slot: Slot) -> int:
            ids = busy | {slot.id}
            return sum(1 for i in ids if i - 1 not in ids)

        def kept(slot: Slot) -> int:
            n = common_prefix(slot.tokens, prompt)
            if n == len(prompt) == slot.logits_at and slot.logits is not None:
                return n  # all of it: the first token comes from the kept logits
            if slot.images or wanted:
                return image_safe_prefix(n, slot.images, wanted, len(prompt) - 1)
            return min(n, len(prompt) - 1)

        useful = max(min(REUSE_MIN_TOKENS, len(prompt) // 2), 1)
        slot = max(
            free, key=lambda s: (kept(s) if kept(s) >= useful else 0, -runs_with(s), -s.last_used)
        )
        return slot, kept(slot)

    def _plan(self) -> list[tuple[Job, int, bool]]:
        """What goes into this step: (job, token count, sample after it) per sequence.

        Generating sequences first, one token each; then prompt chunks, first come first
        served, as far as the batch holds them — but while sequences generate, only as far as
        one compute pass (``n_ubatch``) holds them, so that a long prompt arriving never holds
        the running streams' next tokens for more than one pass (2,048 prompt tokens in one
        step used to stall every stream for seconds on a CPU).
        """
        jobs = sorted((s.job for s in self.slots if s.job is not None), key=lambda j: j.t_queued)
        generating = [job for job in jobs if not job.prefilling]
        plan = [(job, 1, True) for job in generating]
        prompts = any(job.prefilling and job.replay is None and job.pending for job in jobs)
        # drafts only in steps without prompt chunks: their cost is what StepCost measures
        drafted = self._draft(generating) if generating and not prompts else 0
        self._logit_tokens = 0 if prompts else len(generating) + drafted
        room = max(self.ctx.n_ubatch - len(plan) - drafted, 1) if plan else self.batch.capacity
        for job in jobs:
            if not job.prefilling or job.replay is not None or room <= 0:
                continue
            n = min(len(job.pending), room)
            if job.images:  # text up to the next image: the image goes in first (runner_vision)
                n = min(n, self._text_ahead(job))
                if n == 0:
                    continue
            plan.append((job, n, n == len(job.pending)))
            room -= n
        return plan

    def _draft(self, generating: list[Job]) -> int:
        """Set each generating job's drafts for this step (see :mod:`.speculative`); returns
        how many draft tokens the step verifies.

        Only a lone stream drafts by choice: with a KV stream per slot, llama.cpp splits a batch
        into compute passes of equal tokens per sequence, so one stream's drafts beside others'
        single tokens cost a pass of their own (16 streams ran slower drafting). Beside others,
        a stream drafts only the ``draft_min`` its request asks for."""
        room = self.batch.capacity - 1 if len(generating) == 1 else 0
        proposals = {}
        for job in generating:
            drafter = job.drafter
            if drafter is None or job.cancelled.is_set() or job.inject:
                continue
            if not room and not drafter.draft_min:
                continue
            slot = job.started_slot
            limit = self.n_ctx - len(slot.tokens) - 2  # room for the pending token and drafts
            if job.opts.max_tokens is not None and job.opts.max_tokens >= 0:
                limit = min(limit, job.opts.max_tokens - job.generated - 1)
            slot.tokens.append(job.pending[0])  # the history ends with the token to decode
            proposal = drafter.propose(slot.tokens, limit)
            slot.tokens.pop()
            if proposal is None:
                drafter.idle()
            else:
                proposals[slot.id] = (proposal, drafter.draft_min)
        if not proposals:
            return 0
        drafts = choose(proposals, len(generating), self.step_cost, room)
        total = 0
        for job in generating:
            slot = job.started_slot
            job.draft = drafts.get(slot.id, [])
            total += len(job.draft)
            if not job.draft and slot.id in proposals:
                assert job.drafter is not None  # it proposed
                job.drafter.idle()
        return total

    def _text_ahead(self, job: Job) -> int:
        at = len(job.started_slot.tokens)
        for image in job.images:
            if image.span.start >= at:
                return image.span.start - at
        return len(job.pending)

    def _step(self) -> None:
        for slot in self.slots:
            if slot.job is not None and slot.job.cancelled.is_set():
                self._finish(slot.job, "cancelled")
        if self.vision is not None:
            self._decode_images(self.vision)
        replays = [s.job for s in self.slots if s.job is not None and s.job.replay is not None]
        plan = self._plan()
        if plan:
            started, failures = time.perf_counter(), self.decode_failures
            self._decode(plan)
            if self._logit_tokens and failures == self.decode_failures:
                self.step_cost.observe(self._logit_tokens, time.perf_counter() - started)
        now = time.perf_counter()
        for job in replays:
            row, job.replay = job.replay, None
            assert row is not None  # only this loop clears it
            job.prefilling = False
            job.t_prompt_done = now
            self._sample(job, kept=row.copy())

    def _decode_images(self, vision: RunnerVision) -> None:
        jobs = sorted((s.job for s in self.slots if s.job is not None), key=lambda j: j.t_queued)
        jobs = [job for job in jobs if job.images]
        if not jobs:
            return
        work, failed = vision.ready(jobs, self.batch.capacity)
        if work:
            assert self.ctx.ptr is not None, "the context is closed"
            failed += vision.decode(self.ctx.ptr, work)
        for job, exc in failed:
            self._fail(job, exc)

    def _decode(self, plan: list[tuple[Job, int, bool]]) -> None:
        # in sequence id order: llama.cpp makes one compute pass per run of consecutive ids in
        # the order the batch lists them, so an unordered batch costs several passes
        plan.sort(key=lambda entry: entry[0].started_slot.id)
        batch = self.batch
        batch.clear()
        sample_at: list[tuple[Job, int]] = []
        for job, n, sample in plan:
            slot = job.started_slot
            pos = slot.next_pos
            for k in range(n):
                idx = batch.add(job.pending[k], pos + k, slot.id, sample and k == n - 1)
            if sample:
                sample_at.append((job, idx))
            for k, token in enumerate(job.draft):  # verified from idx + 1 on (see _verify)
                batch.add(token, pos + n + k, slot.id, True)
        self.last_batch_size = batch.n
        try:
            self.ctx.decode(batch)
        except LlamaError as exc:
            self._decode_apart(plan, exc)
            return
        now = time.perf_counter()
        for job, n, _ in plan:  # those tokens are now in the slot's KV cache
            job.started_slot.tokens.extend(job.pending[:n])
            del job.pending[:n]
            if job.prefilling and not job.pending:
                job.prefilling = False
                job.t_prompt_done = job.t_prompt_done or now
        for job, idx in sample_at:
            slot = job.started_slot
            if job.generated == 0 and len(slot.tokens) == len(job.prompt):
                # the prompt is in: keep its logits, so that the same prompt again gives the
                # same first token (decoding its last token alone would round differently)
                slot.logits = self.ctx.logits_row(idx).copy()
                slot.logits_at = len(job.prompt)
            if job.draft:
                self._verify(job, idx)
            else:
                self._sample(job, idx)

    def _verify(self, job: Job, idx: int) -> None:
        """Sample position by position through a drafted run: a draft token stays while the
        sampler picks exactly it; the first other pick ends the run and is the next token."""
        slot = job.started_slot
        draft, job.draft = job.draft, []
        kept = 0
        for i in range(len(draft) + 1):
            self._sample(job, idx + i)
            if slot.job is not job or job.prefilling or i == len(draft):
                break  # finished, forced tokens follow, or every draft token was kept
            if job.pending != [draft[i]]:
                break
            slot.tokens.append(draft[i])  # its cell already holds the token just sampled
            kept += 1
        if kept < len(draft):  # the cells of the drafts not kept
            self.ctx.seq_rm(slot.id, slot.next_pos, -1)
        assert job.drafter is not None  # only a drafter's job has drafts
        job.drafter.verified(len(draft), kept)
        self.draft_tokens += len(draft)
        self.draft_accepted += kept

    def _decode_apart(self, plan: list[tuple[Job, int, bool]], exc: LlamaError) -> None:
        """After a failed decode: each half of the batch again, so that only a sequence that
        fails on its own fails, and every other one goes on as if nothing had happened."""
        self.decode_failures += 1
        for job, _, _ in plan:
            # llama.cpp takes back what a failed decode stored; make sure of it, so the next
            # try starts from the positions the slots record
            slot = job.started_slot
            self.ctx.seq_rm(slot.id, slot.next_pos, -1)
        if len(plan) == 1:
            job = plan[0][0]
            log.error("%s: decoding a request failed: %s", self.name, exc)
            self._fail(
                job,
                EngineError(
                    f"llama.cpp could not decode this request ({exc}); other requests were "
                    "not affected"
                ),
            )
            return
        half = len(plan) // 2
        self._decode(plan[:half])
        self._decode(plan[half:])

    def _sample(self, job: Job, idx: int = -1, kept: Logits | None = None) -> None:
        """The next token from batch entry ``idx``'s logits, or from ``kept`` logits."""
        row = kept
        if row is None and (job.fast is not None or job.opts.logprobs):
            row = self.ctx.logits_row(idx)
        token: int
        if job.fast is not None:
            assert row is not None  # read above for the fast sampler
            token = job.fast.sample(row)
        else:
            assert job.chain is not None  # _start builds one whenever ``fast`` is not used
            if kept is not None:
                token = sampling.sample_row(job.chain, kept)
            else:
                token = llama_cpp.llama_sampler_sample(job.chain, self.ctx.ptr, idx)
        if job.inject:  # the caller forces a continuation (e.g. closing a thinking budget)
            forced, job.inject = job.inject, None
            text_out(
                job, self.model.detokenize(forced, special=True), [], self._emit
            )  # not sampled
            job.generated += len(forced)
            job.pending = forced
            job.prefilling = True
            return
        logprobs = None
        if job.opts.logprobs:
            assert row is not None  # read above for logprobs
            logprobs = logprob_entries(self.model, job, row, token)
        if self.model.is_eog(token) and not job.opts.ignore_eos:
            self._finish(job, "stop")
            return
        job.generated += 1
        job.out_tokens.append(token)
        self.tokens_generated += 1
        text_out(job, job.utf8.feed(self.model.piece(token)), logprobs or [], self._emit)
        if job.stops.matched is not None:
            self._finish(job, "stop")
        elif (job.opts.max_tokens is not None and 0 <= job.opts.max_tokens <= job.generated) or len(
            job.started_slot.tokens
        ) + 1 >= self.n_ctx:
            self._finish(job, "length")
        else:
            job.pending = [token]

    def _finish(self, job: Job, reason: str) -> None:
        if reason != "cancelled":
            flush_text(job, self._emit)
        now = time.perf_counter()
        prompt_done = job.t_prompt_done or now
        self._release(job)  # before the final event, so a caller that sees Done sees a free slot
        self._emit(
            job,
            Done(
                finish_reason=reason,
                usage=Usage(
                    len(job.prompt),
                    job.generated,
                    job.cached,
                    draft_tokens=job.drafter.proposed if job.drafter else 0,
                    draft_accepted=job.drafter.accepted if job.drafter else 0,
                ),
                timings=Timings(
                    prompt_eval_ns=int((prompt_done - job.t_started) * 1e9),
                    eval_ns=int((now - prompt_done) * 1e9),
                    total_ns=int((now - job.t_queued) * 1e9),
                ),
                stop_sequence=job.stops.matched,
                # image cells are no tokens a client can send back: the text around them
                context=without_images(job.prompt, [i.span for i in job.images]) + job.out_tokens
                if job.images
                else job.prompt + job.out_tokens,
            ),
        )

    def _fail(self, job: Job, exc: EngineError) -> None:
        if job.slot is not None:
            self.ctx.seq_rm(job.slot.id, 0, -1)
            job.slot.truncate(0)
            job.slot.forget_logits()
        self._release(job)
        self._emit(job, exc)

    def _release(self, job: Job) -> None:
        sampling.free_chain(job.chain)
        job.chain = job.fast = None
        job.draft = []
        if self.vision is not None:
            self.vision.release(job)
        else:
            close_media(job)
        if job.slot is not None:
            job.slot.job = None
            job.slot.last_used = time.perf_counter()

    def _shutdown(self) -> None:
        why = "(the daemon is stopping, or the model was unloaded or deleted)"
        for slot in self.slots:
            if slot.job is not None:  # the text so far, then an error: the reply is incomplete
                job = slot.job
                flush_text(job, self._emit)
                self._release(job)
                self._emit(
                    job, Interrupted(f"the reply was cut off: {self.name} was unloaded {why}")
                )
        while self._queue:
            job = self._queue.popleft()
            close_media(job)
            self._emit(
                job, Interrupted(f"{self.name} was unloaded before this request started {why}")
            )
        while self._calls:
            _, future = self._calls.popleft()
            future.cancel()
        while self._embeds:
            self._embeds.popleft().fail(
                Interrupted(f"{self.name} was unloaded before the embedding was done {why}")
            )
        if self.prompt_cache is not None:  # what the slots hold outlives the model
            for slot in self.slots:
                self.prompt_cache.save(slot)
        self.batch.close()
        if self._embedder is not None:
            self._embedder.close()
        if self.vision is not None:
            self.vision.close()
        self.ctx.close()

    # ------------------------------------------------------------ embeddings (runner thread)

    def _embed_step(self) -> None:
        """One chunk of the first embedding request (see :mod:`.embedding`)."""
        while self._embeds:
            job = self._embeds[0]
            if not job.claim():  # its caller went before the runner took it
                self._embeds.popleft()
            elif job.cancelled.is_set():
                self._embeds.popleft()
                job.future.set_exception(Cancelled("the embedding request was cancelled"))
            else:
                break
        else:
            return
        try:
            if self._embedder is None:
                self._embedder = Embedder(self.model, self.embed_shape, self.config.threads)
        except LlamaError as exc:
            self._embeds.popleft()
            job.future.set_exception(
                EngineError(f"could not create the embedding context of {self.name}: {exc}")
            )
            return
        if self._embedder.advance(job):
            with self._wake:
                self._embeds.popleft()
