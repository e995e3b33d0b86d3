"""Dedicated embedding and reranking models: one thread per loaded model, batching sequences.

An *embedding model* (the BERT family, nomic/gte, Qwen3-Embedding: its GGUF declares a
pooling, or its architecture is an encoder) turns each input into one vector, L2-normalised
as the popular models' cards use them (cosine similarity). A *reranking model* (a
cross-encoder with rank pooling: BGE and Jina rerankers, Qwen3-Reranker as ggml-org converts
it) turns each query–document pair into one score, given as llama.cpp computes it and
llama-server returns it: a raw logit for the BERT-family heads, a probability for Qwen3.

Either way a request is a list of token sequences. The thread packs the waiting sequences of
every request, first come first served, into one ``llama_decode`` as parallel sequences (at
most ``n_seq`` of them and ``PACK_TOKENS`` tokens, or one longer sequence alone), so one
request's documents and concurrent requests are evaluated together. A sequence is at most
``n_ctx`` tokens: an encoder evaluates a whole batch in one pass (llama.cpp aborts on more
tokens than its ubatch), and the context's compute buffers are sized for that.
"""

from __future__ import annotations

import collections
import ctypes
import logging
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from typing import Any, TypeVar

import llama_cpp
import numpy as np

from .api import ContextOverflow, EngineError, Interrupted, InvalidRequest, QueueFull
from .gguf_info import EMBEDDING, EMBEDDING_ARCHES, POOLING_RANK, RERANK
from .llm import Batch, Context, ContextParams, LlamaError, Model

log = logging.getLogger("mullama.embedder")

DEFAULT_CTX = 2048  # tokens of one input when neither the settings nor the Modelfile say
# tokens one decode packs from several short sequences: attention over a packed batch costs
# its square, so beyond this a second decode is cheaper than a bigger one
PACK_TOKENS = 512
RERANK_TEMPLATE_KEY = "tokenizer.chat_template.rerank"  # llama_model_chat_template(m, "rerank")
_PLACEHOLDER = re.compile(r"(\{query\}|\{document\})")

Vectors = list[list[float]]
_T = TypeVar("_T")


@dataclass
class EmbedderConfig:
    n_ctx: int  # most tokens of one sequence, and of one decode
    n_seq: int = 16  # sequences one decode takes
    threads: int = 0
    flash_attention: bool | None = None
    max_queue: int = 64

    @property
    def n_parallel(self) -> int:
        """As a generation runner's config says it (``ps``, metrics)."""
        return self.n_seq


def context_for(meta: Mapping[str, Any], requested: int) -> int:
    """The tokens one input may have: ``requested`` (0 = ``DEFAULT_CTX``), at most what the
    model was trained on."""
    arch = meta.get("general.architecture", "")
    n_train = int(float(meta.get(f"{arch}.context_length", 0) or 0))
    n = requested if requested > 0 else DEFAULT_CTX
    return max(8, min(n, n_train) if n_train > 0 else n)


def memory_estimate(meta: Mapping[str, Any], config: EmbedderConfig, kv_bytes: int) -> int:
    """Bytes beyond the weights: compute buffers for one decode of ``n_ctx`` tokens (llama.cpp
    reserves them for the largest batch; without flash attention its attention scores are
    ``n_ctx²`` per head), the embeddings of every token, the KV cache of a decoder
    (``kv_bytes``: an encoder keeps none) and a fixed overhead."""
    arch = meta.get("general.architecture", "")

    def get(key: str, default: int) -> int:
        return int(float(meta.get(f"{arch}.{key}", default) or default))

    n_embd = get("embedding_length", 1024)
    n_ff = get("feed_forward_length", 4 * n_embd)
    n_head = get("attention.head_count", 16)
    n = config.n_ctx
    compute = n * (n_ff + 4 * n_embd) * 4 * 2 + n * n_embd * 4
    if config.flash_attention is False:
        compute += n * n * n_head * 4
    kv = 0 if arch in EMBEDDING_ARCHES else kv_bytes
    return compute + kv + 64 * 2**20


@dataclass
class _Request:
    sequences: list[list[int]]
    future: Future[tuple[Vectors, int]]
    results: list[list[float] | None] = field(default_factory=list)
    next: int = 0  # the first sequence no decode has taken yet
    done: int = 0
    failed: bool = False

    @property
    def tokens(self) -> int:
        return sum(len(s) for s in self.sequences)


class Embedder:
    """An embedding or reranking model's context and the thread that alone decodes with it.

    ``embed`` and ``rerank`` tokenize in the caller's thread (refusing over-long inputs
    there, with both token counts) and return a Future the thread completes."""

    def __init__(
        self, model: Model, config: EmbedderConfig, *, name: str = "", kind: str = EMBEDDING
    ) -> None:
        self.model = model
        self.config = config
        self.name = name or model.path
        self.kind = kind
        self.n_ctx = config.n_ctx
        declared = model.metadata.get(f"{model.architecture}.pooling_type", "")
        pooling = int(declared) if declared.isdigit() and int(declared) > 0 else 0
        if kind == RERANK:
            pooling = POOLING_RANK
        elif pooling in (0, POOLING_RANK):  # none: one vector per token; pool them by mean
            pooling = llama_cpp.LLAMA_POOLING_TYPE_MEAN
        self.pooling = pooling
        # llama.cpp reserves its graph for a batch of n_seq sequences of equal length: a batch
        # size that n_seq does not divide breaks mean pooling's shapes (an abort)
        capacity = -(-config.n_ctx // config.n_seq) * config.n_seq
        self.ctx = Context(
            model,
            ContextParams(
                n_ctx=capacity,
                n_batch=capacity,
                n_seq_max=config.n_seq,
                threads=config.threads,
                flash_attention=config.flash_attention,
                embeddings=True,
                pooling=pooling,
                swa_full=False,
                kv_unified=True,
            ),
        )
        n_cls: int = llama_cpp.llama_model_n_cls_out(model.ptr)
        n_embd: int = llama_cpp.llama_model_n_embd_out(model.ptr)  # a pooled vector's size
        self.n_out = max(n_cls, 1) if kind == RERANK else n_embd
        self.batch = Batch(capacity)
        self.rerank_template = model.metadata.get(RERANK_TEMPLATE_KEY) or None
        self._template = self._template_pieces()
        self._specials = self._special_tail()
        self._queue: collections.deque[_Request] = collections.deque()
        self._calls: collections.deque[tuple[Callable[[], Any], Future[Any]]] = collections.deque()
        self._wake = threading.Condition()
        self._stopping = False
        # counters for ps, status and metrics, as a generation runner keeps them
        self.requests_total = 0
        self.prompt_tokens = 0
        self.tokens_generated = 0
        self.last_batch_size = 0
        self.decodes = 0
        self.busy_slots = 0  # sequences in the decode under way
        self._thread = threading.Thread(target=self._run, name=f"embedder:{self.name}", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------ public, any thread

    @property
    def queued(self) -> int:
        return len(self._queue)

    @property
    def active(self) -> int:
        return self.busy_slots + self.queued

    def refusal(self, what: str) -> str:
        """Why this model cannot ``what`` ("chat", "generate text", "embed")."""
        if self.kind == RERANK:
            return (
                f"{self.name} is a reranking model: it cannot {what}; use the rerank API "
                "(POST /v1/rerank)"
            )
        return (
            f"{self.name} is an embedding model: it cannot {what}; use /v1/embeddings "
            "(or Ollama's /api/embed)"
        )

    def embed(
        self, inputs: Sequence[str | list[int]], truncate: bool
    ) -> Future[tuple[Vectors, int]]:
        """One L2-normalised vector per input (a text, or token ids embedded as given), and
        the tokens evaluated. An input longer than the context is cut (keeping the closing
        special token) when ``truncate``, else refused."""
        if self.kind == RERANK:
            raise InvalidRequest(self.refusal("embed"), param="model")
        sequences = []
        for i, item in enumerate(inputs):
            if isinstance(item, list):
                tokens = list(item)
                tail: list[int] = []
            else:
                tokens = self.model.tokenize(item, add_special=True, parse_special=False)
                tail = self._specials if tokens[-len(self._specials) :] == self._specials else []
            if not tokens:  # an empty text of a vocabulary that adds no special token
                tokens = [self.model.bos if self.model.bos >= 0 else max(self.model.eos, 0)]
            if len(tokens) > self.n_ctx:
                if not truncate:
                    raise ContextOverflow(
                        f"input[{i}] is {len(tokens)} tokens but {self.name} embeds at most "
                        f"{self.n_ctx} tokens at a time; shorten it, ask to truncate, or raise "
                        "num_ctx",
                        param="input",
                        prompt_tokens=len(tokens),
                        context_length=self.n_ctx,
                    )
                tokens = tokens[: self.n_ctx - len(tail)] + tail
            sequences.append(tokens)
        return self._submit(sequences)

    def rerank(
        self, query: str, documents: Sequence[str], truncate: bool
    ) -> Future[tuple[Vectors, int]]:
        """Each (query, document) pair's score (a one-element vector per document), and the
        tokens evaluated. A pair longer than the context loses the end of its document when
        ``truncate``, else is refused; a query that leaves no room for any document is."""
        if self.kind != RERANK:
            raise InvalidRequest(
                f"{self.name} is an embedding model without rank pooling: it cannot rerank; "
                "use a reranking model (bge-reranker-v2-m3, Qwen3-Reranker)",
                param="model",
            )
        q = self._text(query, "{query}")
        sequences = []
        for i, text in enumerate(documents):
            d = self._text(text, "{document}")
            tokens = self._pair(q, d)
            if len(tokens) > self.n_ctx:
                fixed = len(tokens) - len(d)
                if fixed >= self.n_ctx:
                    raise ContextOverflow(
                        f"the query with {self.name}'s rerank prompt is {fixed} tokens but it "
                        f"scores at most {self.n_ctx} tokens at a time: no room is left for a "
                        "document; shorten the query or raise num_ctx",
                        param="query",
                        prompt_tokens=fixed,
                        context_length=self.n_ctx,
                    )
                if not truncate:
                    raise ContextOverflow(
                        f"documents[{i}] with the query is {len(tokens)} tokens but "
                        f"{self.name} scores at most {self.n_ctx} tokens at a time; shorten it, "
                        "ask to truncate, or raise num_ctx",
                        param=f"documents[{i}]",
                        prompt_tokens=len(tokens),
                        context_length=self.n_ctx,
                    )
                tokens = self._pair(q, d[: self.n_ctx - fixed])
            sequences.append(tokens)
        return self._submit(sequences)

    def call(self, fn: Callable[[], _T]) -> Future[_T]:
        """Run ``fn`` on the embedder's thread between decodes."""
        future: Future[_T] = Future()
        with self._wake:
            self._calls.append((fn, future))
            self._wake.notify()
        return future

    def stop(self, timeout: float = 30.0) -> None:
        """Finish: waiting requests end as interrupted, then free the context."""
        with self._wake:
            self._stopping = True
            self._wake.notify()
        self._thread.join(timeout)

    # ------------------------------------------------------------ the prompts

    def _special_tail(self) -> list[int]:
        """The special tokens the tokenizer closes a text with ([SEP], </s>), kept when an
        input is cut."""
        around = self.model.tokenize("", add_special=True, parse_special=False)
        if around and self.model.add_bos and around[0] == self.model.bos:
            around = around[1:]
        return around

    def _template_pieces(self) -> list[tuple[str, list[int]]]:
        """The GGUF's rerank template as (placeholder or "", its fixed tokens) pieces, the
        fixed text tokenized once with its special tokens. The spaces that end a fixed text
        before a placeholder are tokenized with the text put there (BPE vocabularies join
        "▁word" and " word"); ``_leads`` keeps them."""
        self._leads: dict[str, str] = {}
        if self.rerank_template is None:
            return []
        pieces: list[tuple[str, list[int]]] = []
        lead = ""
        for part in _PLACEHOLDER.split(self.rerank_template):
            if part in ("{query}", "{document}"):
                self._leads.setdefault(part, lead)
                pieces.append((part, []))
                lead = ""
            elif part:
                text = part.rstrip(" ")
                lead = part[len(text) :]
                if text:
                    fixed = self.model.tokenize(text, add_special=False, parse_special=True)
                    pieces.append(("", fixed))
        if lead:
            pieces.append(("", self.model.tokenize(lead, add_special=False, parse_special=True)))
        return pieces

    def _text(self, text: str, placeholder: str) -> list[int]:
        """A query's or document's tokens, without special tokens (a document cannot close
        the prompt early), after the spaces the template puts before it."""
        lead = self._leads.get(placeholder, "")
        return self.model.tokenize(lead + text, add_special=False, parse_special=False)

    def _pair(self, query: list[int], doc: list[int]) -> list[int]:
        """A rerank prompt as llama-server builds it: the GGUF's rerank template (Qwen3) with
        the query and document in place, else [BOS] query [EOS] [SEP] document [EOS], each
        special token where the vocabulary adds it."""
        if self._template:
            out: list[int] = []
            for placeholder, fixed in self._template:
                out += fixed if not placeholder else query if placeholder == "{query}" else doc
            return out
        model, vocab = self.model, self.model.vocab
        eos = model.eos if model.eos >= 0 else llama_cpp.llama_vocab_sep(vocab)
        add_eos = bool(llama_cpp.llama_vocab_get_add_eos(vocab))
        out = [model.bos] if model.add_bos and model.bos >= 0 else []
        out += query
        if add_eos:
            out.append(eos)
        if llama_cpp.llama_vocab_get_add_sep(vocab):
            out.append(llama_cpp.llama_vocab_sep(vocab))
        out += doc
        if add_eos:
            out.append(eos)
        return out

    # ------------------------------------------------------------ the queue

    def _submit(self, sequences: list[list[int]]) -> Future[tuple[Vectors, int]]:
        future: Future[tuple[Vectors, int]] = Future()
        request = _Request(sequences, future, [None] * len(sequences))
        if not sequences:
            self._settle(request)
            return future
        with self._wake:
            if self._stopping:
                raise Interrupted(f"{self.name} is being unloaded")
            if len(self._queue) >= self.config.max_queue:
                raise QueueFull(
                    f"{self.name} already has {len(self._queue)} requests waiting; retry shortly",
                    retry_after=1,
                )
            self._queue.append(request)
            self.requests_total += 1
            self.prompt_tokens += request.tokens
            self._wake.notify()
        return future

    def _take(self) -> list[tuple[_Request, int]]:
        """The next decode's sequences: the waiting ones in order, as many as fit."""
        taken: list[tuple[_Request, int]] = []
        room = 0
        while self._queue:
            request = self._queue[0]
            if request.future.cancelled():  # its client went away
                self._queue.popleft()
                continue
            while request.next < len(request.sequences) and len(taken) < self.config.n_seq:
                n = len(request.sequences[request.next])
                if not taken:
                    room = min(max(PACK_TOKENS, n), self.n_ctx)
                elif n > room:
                    return taken
                taken.append((request, request.next))
                request.next += 1
                room -= n
            if request.next < len(request.sequences):
                return taken  # this decode is full
            self._queue.popleft()
        return taken

    # ------------------------------------------------------------ the thread

    def _run(self) -> None:
        try:
            while True:
                with self._wake:
                    while not (self._stopping or self._queue or self._calls):
                        self._wake.wait()
                    if self._stopping:
                        break
                    calls, self._calls = list(self._calls), collections.deque()
                for fn, future in calls:
                    if future.set_running_or_notify_cancel():
                        try:
                            future.set_result(fn())
                        except BaseException as exc:  # handed to the caller
                            future.set_exception(exc)
                with self._wake:
                    taken = self._take()
                    self.busy_slots = len(taken)
                if taken:
                    try:
                        self._decode(taken)
                    except Exception as exc:  # the thread lives on; those requests fail
                        log.exception("%s: a decode failed", self.name)
                        for request in {id(r): r for r, _ in taken}.values():
                            self._fail(request, EngineError(f"{self.name}: {exc}"))
                self.busy_slots = 0
        finally:
            self._shutdown()

    def _decode(self, taken: list[tuple[_Request, int]]) -> None:
        batch = self.batch
        batch.clear()
        self.ctx.clear()  # a decoder's KV cache holds the last batch: start each one empty
        for seq, (request, i) in enumerate(taken):
            for pos, token in enumerate(request.sequences[i]):
                batch.add(token, pos, seq, True)  # pooling reads every token's output
        self.last_batch_size = batch.n
        self.decodes += 1
        try:
            self.ctx.decode(batch)
        except LlamaError as exc:
            for request in {id(r): r for r, _ in taken}.values():
                self._fail(request, EngineError(f"{self.name}: decoding failed: {exc}"))
            return
        finished = []
        for seq, (request, i) in enumerate(taken):
            if request.failed:
                continue
            vector = self._output(seq)
            if vector is None:
                self._fail(request, EngineError(f"{self.name} returned no embedding"))
                continue
            request.results[i] = vector
            request.done += 1
            if request.done == len(request.sequences):
                finished.append(request)
        for request in finished:
            self._settle(request)

    def _output(self, seq: int) -> list[float] | None:
        ptr = llama_cpp.llama_get_embeddings_seq(self.ctx.ptr, seq)
        if not ptr:
            return None
        address = ctypes.cast(ptr, ctypes.c_void_p).value
        row = np.ctypeslib.as_array((ctypes.c_float * self.n_out).from_address(address or 0))
        if self.kind == RERANK:
            return [float(row[0])]
        norm = float(np.linalg.norm(row)) or 1.0
        out: list[float] = (row / norm).tolist()
        return out

    def _settle(self, request: _Request) -> None:
        vectors = [v for v in request.results if v is not None]
        try:
            request.future.set_result((vectors, request.tokens))
        except InvalidStateError:  # cancelled meanwhile
            pass

    def _fail(self, request: _Request, exc: EngineError) -> None:
        request.failed = True
        with self._wake:
            if request in self._queue:
                self._queue.remove(request)
        try:
            request.future.set_exception(exc)
        except InvalidStateError:
            pass

    def _shutdown(self) -> None:
        why = "(the daemon is stopping, or the model was unloaded or deleted)"
        with self._wake:
            waiting, self._queue = list(self._queue), collections.deque()
            calls, self._calls = list(self._calls), collections.deque()
        for _, future in calls:
            future.cancel()
        for request in waiting:
            self._fail(
                request,
                Interrupted(f"{self.name} was unloaded before this request completed {why}"),
            )
        self.batch.close()
        self.ctx.close()


def start(
    path: str, gpu_layers: int, config: EmbedderConfig, name: str, kind: str
) -> tuple[Model, Embedder]:
    """Load ``path`` and start its embedder (what the model manager runs in a worker)."""
    model = Model(path, gpu_layers=gpu_layers)
    try:
        embedder = Embedder(model, config, name=name, kind=kind)
    except Exception:
        model.close()
        raise
    log.debug(
        "%s: %s model, pooling %d, %d-token inputs", name, kind, embedder.pooling, config.n_ctx
    )
    return model, embedder
