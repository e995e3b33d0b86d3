"""The prompt cache in host memory: KV states of past prompts that no slot holds any more.

A slot's KV sequence keeps the tokens of its last request, so the next turn of that
conversation reuses them — until another request takes the slot. Before its cells are
overwritten, the runner copies them here (``llama_state_seq_get_data``); a later request whose
prompt starts with them gets them back (``llama_state_seq_set_data``) instead of evaluating the
prefix again. So 32 conversations on a 4-slot model each get their next turn from cache.

One :class:`PromptCache` serves every model of a :class:`~.manager.ModelManager` and outlives
their runners: entries are filed under a fingerprint of the model file and the context
parameters that shape the state (``fingerprint``), so a model loaded again finds what it left,
and a different model never reads another's. Entries are least recently used first out, by
total bytes; one bigger than the whole limit is not kept. Runners on several threads share it,
so every method takes the lock; the copies themselves run on the runner's thread, outside it.
"""

from __future__ import annotations

import collections
import hashlib
import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from .llm import LlamaError

if TYPE_CHECKING:
    from .fast_sampler import Logits
    from .llm import Context
    from .prompt_cache_disk import DiskTier
    from .runner_state import Slot

log = logging.getLogger("mullama.prompt_cache")

# a prefix this long (in tokens) is worth a copy; a shorter one is quicker to evaluate again
MIN_TOKENS = 32
# and a restore copies a whole entry, so it must spare evaluating at least this share of it
# (a GPU evaluates a prompt token in about the time that 10-20 tokens' states take to copy)
RESTORE_SHARE = 16
DEFAULT_LIMIT_MB = 8192  # llama-server's --cache-ram default
RAM_FRACTION = 0.10  # at most this share of the machine's memory by default

Tokens = npt.NDArray[np.int32]


def default_limit_mb(total_bytes: int | None = None) -> int:
    """The automatic size: 8 GiB as llama-server, but no more than a tenth of the memory."""
    if total_bytes is None:
        import psutil

        total_bytes = int(psutil.virtual_memory().total)
    return min(DEFAULT_LIMIT_MB, int(total_bytes * RAM_FRACTION) // 2**20)


def limit_bytes(setting_mb: int) -> int:
    """The setting ``prompt_cache_ram_mb`` in bytes: negative = automatic, 0 = off."""
    mb = default_limit_mb() if setting_mb < 0 else setting_mb
    return mb * 2**20


def fingerprint(model_path: str, *parts: object) -> str:
    """What a saved state is only valid for: this model file (path, size and modification
    time) with these context parameters and adapters."""
    try:
        st = os.stat(model_path)
        stamp = f"{st.st_size}:{st.st_mtime_ns}"
    except OSError:
        stamp = ""
    text = "\0".join([os.path.realpath(model_path), stamp, *map(repr, parts)])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def common_prefix(a: Tokens, b: Tokens) -> int:
    """The length of the common start of two token arrays, in C speed."""
    n = min(len(a), len(b))
    differ = np.flatnonzero(a[:n] != b[:n])
    return int(differ[0]) if len(differ) else n


@dataclass(eq=False)
class Entry:
    key: str
    tokens: Tokens
    state: npt.NDArray[np.uint8]
    # the logits after the first ``logits_at`` tokens (a prompt's end), when the slot had them
    logits: Logits | None = None
    logits_at: int = 0
    nbytes: int = field(init=False)

    def __post_init__(self) -> None:
        self.nbytes = (
            self.state.nbytes
            + self.tokens.nbytes
            + (self.logits.nbytes if self.logits is not None else 0)
        )


class PromptCache:
    def __init__(self, limit: int, disk: DiskTier | None = None) -> None:
        self.limit = limit  # bytes
        self.disk = disk  # where evicted entries go, if anywhere (see prompt_cache_disk)
        self._lock = threading.Lock()
        self._entries: collections.OrderedDict[int, Entry] = collections.OrderedDict()  # LRU first
        self._next_id = 0
        self.bytes = 0
        # counters for metrics
        self.saves = 0
        self.hits = 0
        self.restored_tokens = 0
        self.evictions = 0

    @property
    def entries(self) -> int:
        return len(self._entries)

    def find(self, key: str, prompt: Tokens) -> tuple[Entry | None, int]:
        """The entry of ``key`` sharing the longest start with ``prompt``, and that length
        (one on disk that shares more is read back into memory)."""
        best, best_n = self._find(key, prompt)
        if self.disk is not None:
            stored, n = self.disk.find(key, prompt)
            if stored is not None and n > best_n:
                entry = self.disk.take(stored)
                if entry is not None:
                    self.put(entry, saved=False)
                    return entry, n
        return best, best_n

    def _find(self, key: str, prompt: Tokens) -> tuple[Entry | None, int]:
        best, best_n = None, 0
        with self._lock:
            for entry in self._entries.values():
                if entry.key != key or not len(entry.tokens) or entry.tokens[0] != prompt[0]:
                    continue
                n = common_prefix(entry.tokens, prompt)
                if n > best_n or (n == best_n and best and len(entry.tokens) < len(best.tokens)):
                    best, best_n = entry, n  # the longest match, and the shortest copy of it
        return best, best_n

    def covers(self, key: str, tokens: Tokens) -> bool:
        """Whether an entry already holds ``tokens`` (or more after them)."""
        with self._lock:
            return any(
                e.key == key
                and len(e.tokens) >= len(tokens)
                and common_prefix(e.tokens, tokens) == len(tokens)
                for e in self._entries.values()
            )

    def put(self, entry: Entry, saved: bool = True) -> bool:
        """Keep ``entry`` (the most recent), dropping entries it extends, then the least
        recently used ones until all fit; one bigger than the limit is not kept."""
        if entry.nbytes > self.limit:
            return False
        with self._lock:
            for id_, old in list(self._entries.items()):
                if old.key == entry.key and common_prefix(old.tokens, entry.tokens) == len(
                    old.tokens
                ):
                    self._drop(id_)
            while self._entries and self.bytes + entry.nbytes > self.limit:
                oldest = next(iter(self._entries))
                if self.disk is not None:
                    self.disk.spill(self._entries[oldest])
                self._drop(oldest)
                self.evictions += 1
            self._entries[self._next_id] = entry
            self._next_id += 1
            self.bytes += entry.nbytes
            self.saves += saved
        return True

    def hit(self, entry: Entry, tokens: int) -> None:
        """``entry`` gave a request ``tokens`` of its prompt: count it, and keep it longest."""
        with self._lock:
            self.hits += 1
            self.restored_tokens += tokens
            for id_, e in self._entries.items():
                if e is entry:
                    self._entries.move_to_end(id_)
                    return

    def persist(self, seconds: float) -> None:
        """Write the entries to the disk tier, most recently used first, for ``seconds`` at
        most (the daemon is stopping)."""
        if self.disk is None:
            return
        deadline = time.monotonic() + seconds
        self.disk.flush(seconds)
        with self._lock:
            entries = list(reversed(self._entries.values()))
        for entry in entries:
            if time.monotonic() > deadline:
                break
            self.disk.write(entry)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.bytes = 0

    def _drop(self, id_: int) -> None:
        self.bytes -= self._entries.pop(id_).nbytes


class SlotCache:
    """One runner's use of the shared cache: saving a slot before its cells are discarded and
    restoring a better prefix into it (both on the runner thread, between steps)."""

    def __init__(self, cache: PromptCache, key: str, ctx: Context) -> None:
        self.cache = cache
        self.key = key
        self.ctx = ctx

    def save(self, slot: Slot) -> None:
        """Copy what ``slot`` holds into the cache, unless it is short, holds images (their
        cells are no tokens a prompt can match), or the cache has it already."""
        if len(slot.tokens) < MIN_TOKENS or slot.images:
            return
        tokens = np.asarray(slot.tokens, dtype=np.int32)
        if self.cache.covers(self.key, tokens):
            return
        try:
            if self.ctx.state_seq_size(slot.id) > self.cache.limit:
                return  # it would not be kept: spare the copy
            state = self.ctx.state_seq_get(slot.id)
        except LlamaError as exc:
            log.warning("not caching slot %d: %s", slot.id, exc)
            return
        logits = slot.logits if 0 < slot.logits_at <= len(tokens) else None
        self.cache.put(
            Entry(self.key, tokens, state, logits, slot.logits_at if logits is not None else 0)
        )

    def prepare(self, slot: Slot, prompt: Sequence[int], keep: int, text_only: bool) -> int:
        """Before ``slot`` takes ``prompt`` keeping ``keep`` of its tokens: restore a cached
        prefix longer by at least ``MIN_TOKENS`` into it, or save what it would lose. Returns
        the prefix of the slot's (new) tokens the prompt keeps."""
        restored = self._restore(slot, prompt, keep) if text_only and prompt else None
        if restored is not None:
            return restored
        if len(slot.tokens) - keep >= MIN_TOKENS:
            self.save(slot)
        return keep

    def _restore(self, slot: Slot, prompt: Sequence[int], keep: int) -> int | None:
        wanted = np.asarray(prompt, dtype=np.int32)
        entry, n = self.cache.find(self.key, wanted)
        if entry is None:
            return None
        # the prompt's last token is evaluated, unless the entry has the logits after it
        usable = n if n == len(prompt) == entry.logits_at else min(n, len(prompt) - 1)
        if usable - keep < max(MIN_TOKENS, len(entry.tokens) // RESTORE_SHARE):
            return None
        if len(slot.tokens) - keep >= MIN_TOKENS:
            self.save(slot)
        try:
            self.ctx.state_seq_set(slot.id, entry.state)
        except LlamaError as exc:
            log.warning("could not restore a cached prompt into slot %d: %s", slot.id, exc)
            slot.truncate(0)
            slot.forget_logits()
            return 0
        slot.tokens = entry.tokens.tolist()
        slot.images = []
        slot.logits, slot.logits_at = entry.logits, entry.logits_at
        if entry.logits is None:
            slot.forget_logits()
        self.cache.hit(entry, usable)
        return usable
