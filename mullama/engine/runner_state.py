"""What the runner keeps per request and per sequence: :class:`Job` and :class:`Slot`."""

from __future__ import annotations

import asyncio
import collections
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import llama_cpp

from .api import Done, EngineError, SamplingOptions, TextDelta
from .fast_sampler import FastSampler, Logits
from .output import StopMatcher, Utf8Stream
from .speculative import Drafter
from .vision_prompt import ImagePrompt, ImageSpan, PromptImage, position_of

if TYPE_CHECKING:
    from .image_encoder import Rows

# what a job's queue receives: text as it is generated, then Done or an error
RunnerEvent = TextDelta | Done | EngineError


@dataclass
class RunnerConfig:
    n_ctx: int  # per sequence
    n_parallel: int = 1
    # prompt tokens one step takes (as llama-server): a long prompt goes in one llama_decode,
    # which llama.cpp splits into compute passes of 512
    n_batch: int = 2048
    n_ubatch: int = 0  # tokens per compute pass; 0: llama.cpp's (512)
    threads: int = 0
    flash_attention: bool | None = None
    max_queue: int = 64
    embed_max_tokens: int = 8192  # the longest embedding input (see embedding.embed_shape)


@dataclass
class Job:
    prompt: list[int]
    opts: SamplingOptions  # fully merged and validated
    # TextDelta, Done or EngineError events go to this queue on its loop: the runner hands over
    # all events of a decode step in one callback per loop (see Runner._flush)
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[RunnerEvent]
    cancelled: threading.Event = field(default_factory=threading.Event)
    # runner state
    slot: Slot | None = None
    pending: list[int] = field(default_factory=list)
    generated: int = 0
    cached: int = 0
    # a native sampler chain, or None when ``fast`` samples
    chain: llama_cpp.llama_sampler_p | None = None
    fast: FastSampler | None = None
    utf8: Utf8Stream = field(default_factory=Utf8Stream)
    stops: StopMatcher = field(default_factory=lambda: StopMatcher([]))  # the request's: _start
    # text and logprobs travel together (see Runner._text_out): the entries of tokens whose bytes
    # gave no text yet; the (characters, entries) of each group of tokens whose text went into
    # the stop matcher and has not been sent; and text the matcher let through that ends inside
    # a group, sent once the whole group is through
    no_text: list[dict[str, Any]] = field(default_factory=list)
    groups: collections.deque[tuple[int, list[dict[str, Any]]]] = field(
        default_factory=collections.deque
    )
    released: str = ""
    t_queued: float = field(default_factory=time.perf_counter)
    t_started: float = 0.0
    t_prompt_done: float = 0.0
    out_tokens: list[int] = field(default_factory=list)
    prefilling: bool = True  # feeding prompt (or forced) tokens rather than sampled ones
    replay: Logits | None = None  # the whole prompt is cached: sample from these logits
    inject: list[int] | None = None  # tokens to force next (set from another thread)
    # a prompt with images: where they are in ``prompt`` (their cells hold image ids, see
    # vision_prompt), the mtmd chunks they came from, and their embeddings as they are encoded
    images: list[PromptImage] = field(default_factory=list)
    media: ImagePrompt | None = None
    encodes: dict[int, Future[Rows]] = field(default_factory=dict)
    # speculative decoding: the request's draft source (None: it does not draft), and the
    # tokens drafted for this step (after ``pending``'s one token, see Runner._draft)
    drafter: Drafter | None = None
    draft: list[int] = field(default_factory=list)

    def cancel(self) -> None:
        self.cancelled.set()

    @property
    def started_slot(self) -> Slot:
        """The slot of a job the runner has started (``_start`` sets it, nothing clears it)."""
        assert self.slot is not None, "the job has not started"
        return self.slot


@dataclass
class Slot:
    id: int
    tokens: list[int] = field(default_factory=list)  # what the KV cache holds for this sequence
    job: Job | None = None
    last_used: float = 0.0
    # the logits after the last prompt this slot evaluated (its first ``logits_at`` tokens), so
    # that the same prompt again starts from them: no decode, and the very same first token
    logits: Logits | None = None
    logits_at: int = 0
    images: list[ImageSpan] = field(default_factory=list)  # the images among ``tokens``

    def forget_logits(self) -> None:
        self.logits, self.logits_at = None, 0

    @property
    def next_pos(self) -> int:
        """The position the next cell gets: the cell count, unless an image advanced fewer
        positions than it took cells (M-RoPE)."""
        return position_of(len(self.tokens), self.images) if self.images else len(self.tokens)

    def truncate(self, keep: int) -> None:
        """Keep the first ``keep`` cells (never inside an image)."""
        self.tokens = self.tokens[:keep]
        self.images = [s for s in self.images if s.end <= keep]


Outbox = list[tuple[asyncio.Queue[RunnerEvent], RunnerEvent]]


def deliver(items: Outbox) -> None:
    for queue, event in items:
        queue.put_nowait(event)


def close_media(job: Job) -> None:
    """Free the mtmd chunks of a job no encoder has seen (it never started)."""
    if job.media is not None:
        job.media.close()
        job.media = None


def common_prefix(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def draft_counts(runner: object) -> tuple[int, int]:
    """(draft tokens verified, kept) of a runner; an embedding model drafts nothing."""
    return int(getattr(runner, "draft_tokens", 0)), int(getattr(runner, "draft_accepted", 0))
