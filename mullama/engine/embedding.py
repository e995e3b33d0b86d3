"""Embeddings: a model's embedding context, bounded, and inputs run through it a chunk at a time.

A generative model computes its output layer (the logits, ``n_vocab`` floats) for every token
llama.cpp returns an embedding for; with pooling in the graph that is every token of the input,
all in one compute pass. For Gemma 3 (262,144 tokens in its vocabulary) that is 2 MiB per input
token, so one pass over 2,048 tokens took 4.5 GB and held the runner for tens of seconds. So a
causal model embeds in chunks of ``n_ubatch`` tokens (its KV cache carries each chunk's context
into the next, which gives the same vectors as one pass) and pools the token embeddings here;
the runner takes one chunk between its decode steps, so streams on the model keep flowing. A
bidirectional model (BERT and its kin) must see the whole input in one pass: its context holds
one input, and its output layer is small.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import llama_cpp
import numpy as np
import numpy.typing as npt

from .api import EngineError
from .llm import POOLING_NONE, Batch, Context, ContextParams, LlamaError, Model

POOLING_MEAN, POOLING_CLS, POOLING_LAST = 1, 2, 3
# A chunk's output rows (the logits buffer and the compute buffer's result rows, 2 * 4 *
# n_vocab bytes a token) and its work (tokens * parameters) are bounded: Gemma 3 270M takes 64
# tokens a chunk, a 7B model 16
CHUNK_OUTPUT_BYTES = 128 * 2**20
CHUNK_WORK = 2**35
MIN_CHUNK, MAX_CHUNK = 16, 512
# GGUF architectures whose attention sees the whole input (their converters do not always
# write ``<arch>.attention.causal``)
BIDIRECTIONAL = {"bert", "nomic-bert", "nomic-bert-moe", "jina-bert-v2", "jina-bert-v3"}
BIDIRECTIONAL |= {"modern-bert", "neo-bert", "t5encoder", "eurobert"}

Metadata = Mapping[str, Any]


@dataclass(frozen=True)
class EmbedShape:
    """How a model embeds: the longest input, the tokens one compute pass takes, and whether
    inputs go through in chunks (causal) or whole (bidirectional, or a reranker's head)."""

    n_ctx: int
    n_ubatch: int
    chunked: bool
    pooling: int


def declared_pooling(meta: Metadata) -> int:
    arch = meta.get("general.architecture", "")
    value = str(meta.get(f"{arch}.pooling_type", ""))
    return int(value) if value.isdigit() and int(value) > 0 else POOLING_MEAN


def is_causal(meta: Metadata) -> bool:
    arch = meta.get("general.architecture", "")
    causal = meta.get(f"{arch}.attention.causal")
    return arch not in BIDIRECTIONAL and str(causal).lower() not in ("false", "0")


def embed_shape(
    meta: Metadata, n_ctx: int, max_tokens: int, n_vocab: int, n_params: int = 0
) -> EmbedShape:
    """The embedding context of a model with GGUF metadata ``meta`` whose generation context
    is ``n_ctx`` per sequence: as long as that (at least 512), capped by the model's training
    context and by ``max_tokens`` (the setting ``embed_max_tokens``). Without ``n_params``
    the chunk is the largest the model may get (what the memory estimate needs)."""
    arch = meta.get("general.architecture", "")
    n_train = int(float(meta.get(f"{arch}.context_length", 0) or 0))
    longest = max(1, min(n_train or n_ctx, max(n_ctx, 512), max_tokens))
    pooling = declared_pooling(meta)
    if is_causal(meta) and pooling in (POOLING_MEAN, POOLING_CLS, POOLING_LAST):
        per_token = 2 * 4 * max(n_vocab, 1)
        chunk = min(MAX_CHUNK, CHUNK_OUTPUT_BYTES // per_token)
        if n_params > 0:
            chunk = min(chunk, CHUNK_WORK // n_params)
        chunk = max(MIN_CHUNK, min(chunk, longest))
        return EmbedShape(longest, chunk, True, pooling)
    return EmbedShape(longest, longest, False, pooling)


def embed_context_bytes(meta: Metadata, shape: EmbedShape, n_vocab: int, kv_bytes: int) -> int:
    """What the embedding context costs: its KV cache (``kv_bytes`` for ``shape.n_ctx``
    positions), the output rows of one pass (logits and embeddings, in the output buffer and
    the compute buffer), the attention scores of one pass, and its graph, batch and threads
    (measured: Gemma 3 270M, 1,024 positions, chunks of 64: 148 MiB; this gives 163)."""
    arch = meta.get("general.architecture", "")
    n_embd = int(float(meta.get(f"{arch}.embedding_length", 4096) or 4096))
    n_head = int(float(meta.get(f"{arch}.attention.head_count", 32) or 32))
    outputs = shape.n_ubatch * (n_vocab + n_embd) * 4 * 2
    scores = shape.n_ubatch * shape.n_ctx * n_head * 4
    return kv_bytes + outputs + scores + 16 * 2**20


@dataclass
class EmbedJob:
    """One request's inputs (token ids, each at most the embedding context long) and where its
    vectors go: ``future`` gets one L2-normalised vector per input, or the error."""

    inputs: list[list[int]]
    future: Future[list[list[float]]] = field(default_factory=Future)
    cancelled: threading.Event = field(default_factory=threading.Event)
    running: bool = False  # the runner has taken it (see ``claim``)
    vectors: list[list[float]] = field(default_factory=list)
    done: int = 0  # tokens of the current input (``inputs[len(vectors)]``) in the context
    pooled: npt.NDArray[np.float64] | None = None

    def cancel(self) -> None:
        self.cancelled.set()

    def claim(self) -> bool:
        """The runner takes the job: False when its caller gave up on it before."""
        if not self.running:
            self.running = True
            return self.future.set_running_or_notify_cancel()
        return not self.future.done()

    def fail(self, exc: EngineError) -> None:
        if self.claim():
            self.future.set_exception(exc)


class Embedder:
    """A model's embedding context; only its runner thread calls it."""

    def __init__(self, model: Model, shape: EmbedShape, threads: int) -> None:
        self.model = model
        self.shape = shape
        self.ctx = Context(
            model,
            ContextParams(
                n_ctx=shape.n_ctx,
                n_batch=shape.n_ubatch,
                threads=threads,
                embeddings=True,
                pooling=POOLING_NONE if shape.chunked else shape.pooling,
                swa_full=False,
            ),
        )
        try:
            self.batch = Batch(shape.n_ubatch)
        except BaseException:
            self.ctx.close()
            raise

    def close(self) -> None:
        self.batch.close()
        self.ctx.close()

    def advance(self, job: EmbedJob) -> bool:
        """Embed up to one chunk of ``job`` (its next inputs, or part of one); True once every
        input has its vector. A failure fails the job; the context is clear for the next."""
        try:
            budget = self.shape.n_ubatch
            while budget > 0 and len(job.vectors) < len(job.inputs):
                whole = len(job.inputs[len(job.vectors)])
                if not self.shape.chunked and budget < min(whole, self.shape.n_ubatch):
                    break  # a whole input does not fit what is left of this step's budget
                budget -= self._pass(job, budget)
        except LlamaError as exc:
            self.ctx.clear()
            job.future.set_exception(EngineError(f"computing the embedding failed: {exc}"))
            return True
        if len(job.vectors) == len(job.inputs):
            job.future.set_result(job.vectors)
            return True
        return False

    def _pass(self, job: EmbedJob, budget: int) -> int:
        """One llama_decode over the next tokens of the current input; the tokens it took."""
        tokens = job.inputs[len(job.vectors)]
        if job.done == 0:
            self.ctx.clear()
        if not self.shape.chunked:
            self._decode(tokens, 0, [True] * len(tokens))
            job.vectors.append(_normalise(self.ctx.seq_embedding(0, self.model.n_embd)))
            return len(tokens)
        start = job.done
        piece = tokens[start : start + budget]
        end = start + len(piece)
        # an embeddings context returns every token's embedding, whatever the batch asks
        self._decode(piece, start, [True] * len(piece))
        rows = self._rows(len(piece))
        if self.shape.pooling == POOLING_MEAN:
            total = rows.sum(axis=0, dtype=np.float64)
            job.pooled = total if job.pooled is None else job.pooled + total
        elif self.shape.pooling == POOLING_CLS and start == 0:
            job.pooled = rows[0].astype(np.float64)
        elif self.shape.pooling == POOLING_LAST and end == len(tokens):
            job.pooled = rows[-1].astype(np.float64)
        job.done = end
        if end == len(tokens):
            assert job.pooled is not None  # every input has a token that is pooled
            job.vectors.append(_normalise(job.pooled.tolist()))
            job.done, job.pooled = 0, None
        return len(piece)

    def _decode(self, tokens: list[int], start: int, wanted: list[bool]) -> None:
        self.batch.clear()
        for k, (token, out) in enumerate(zip(tokens, wanted)):
            self.batch.add(token, start + k, 0, out)
        self.ctx.decode(self.batch)

    def _rows(self, n: int) -> npt.NDArray[np.float32]:
        """The embeddings of the last pass's ``n`` tokens, one row each."""
        n_embd = self.model.n_embd
        ptr = llama_cpp.llama_get_embeddings(self.ctx.ptr)
        if not ptr:
            raise LlamaError("the model returned no embeddings")
        buffer = (ctypes.c_float * (n * n_embd)).from_address(ctypes.addressof(ptr.contents))
        rows: npt.NDArray[np.float32] = np.frombuffer(buffer, dtype=np.float32)  # type: ignore[call-overload]
        return rows.reshape(n, n_embd)


def _normalise(vector: list[float]) -> list[float]:
    array = np.asarray(vector, dtype=np.float64)
    norm = float(np.sqrt(array @ array)) or 1.0
    normalised: list[float] = (array / norm).tolist()
    return normalised
