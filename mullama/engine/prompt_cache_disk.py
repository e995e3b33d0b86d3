"""The prompt cache's disk tier: states the host-memory tier evicts, kept in files.

When :class:`~.prompt_cache.PromptCache` evicts an entry to stay in its limit, it hands the
entry here; a writer thread puts it in a file of its own (so no runner waits for the disk), and
a later prompt that starts the same way reads it back into memory. The folder is scanned at
start, so states outlive the daemon too. It has its own size limit (least recently used files
go first) and is private to its user (0700, files 0600): a state file holds the KV cache of a
conversation. A file that does not parse is removed.

A file: ``MAGIC``, one line of JSON (the fingerprint, the sizes), then the tokens (int32), the
logits (float32, possibly none) and llama.cpp's state bytes.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import msgspec
import numpy as np

from .prompt_cache import Entry, Tokens, common_prefix

log = logging.getLogger("mullama.prompt_cache")

MAGIC = b"mullama-prompt-state 1\n"
SUFFIX = ".state"
# evicted entries waiting for the writer hold memory beyond the RAM tier's limit: at most this
MAX_PENDING = 256 * 2**20


class Header(msgspec.Struct):
    key: str
    tokens: int
    logits: int  # floats of the logits (0: none)
    logits_at: int
    state: int  # bytes


@dataclass(eq=False)
class Stored:
    key: str
    tokens: Tokens
    path: Path
    nbytes: int  # the file's size
    used: float  # when it was written or last read (its modification time at start)


def _private(path: str, flags: int) -> int:
    return os.open(path, flags, 0o600)


class DiskTier:
    def __init__(self, folder: Path, limit: int) -> None:
        self.folder = Path(folder)
        self.limit = limit  # bytes
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        with contextlib.suppress(OSError):
            os.chmod(self.folder, 0o700)
        self._lock = threading.Lock()
        self._stored: dict[Path, Stored] = {}
        self.bytes = 0
        self.writes = 0
        self.hits = 0
        self._queue: collections.deque[Entry] = collections.deque()
        self._pending = 0  # bytes in the queue
        self._writing = False
        self._cond = threading.Condition()
        self._closing = False
        self._scan()
        self._thread = threading.Thread(target=self._write_loop, name="prompt-cache-disk")
        self._thread.daemon = True
        self._thread.start()

    @property
    def entries(self) -> int:
        return len(self._stored)

    # ------------------------------------------------------------ any thread

    def spill(self, entry: Entry) -> None:
        """Queue ``entry`` for a file (dropped when it cannot fit or the writer is far behind)."""
        if entry.nbytes > self.limit:
            return
        with self._cond:
            if self._closing or self._pending + entry.nbytes > MAX_PENDING:
                return
            self._queue.append(entry)
            self._pending += entry.nbytes
            self._cond.notify()

    def find(self, key: str, prompt: Tokens) -> tuple[Stored | None, int]:
        best, best_n = None, 0
        with self._lock:
            for stored in self._stored.values():
                if stored.key != key:
                    continue
                n = common_prefix(stored.tokens, prompt)
                if n > best_n:
                    best, best_n = stored, n
        return best, best_n

    def take(self, stored: Stored) -> Entry | None:
        """Read ``stored`` back (its file then goes: the entry lives in memory again)."""
        with self._lock:
            if self._stored.get(stored.path) is not stored:
                return None  # evicted meanwhile
            self._forget(stored.path)
        try:
            entry = _read(stored.path, with_state=True)
        except (OSError, ValueError) as exc:
            log.warning("dropping the prompt state %s: %s", stored.path.name, exc)
            entry = None
        with contextlib.suppress(OSError):
            stored.path.unlink()
        if entry is not None:
            self.hits += 1
        return entry

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until every queued entry is written."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while (self._queue or self._writing) and time.monotonic() < deadline:
                self._cond.wait(0.05)

    def close(self, timeout: float = 30.0) -> None:
        """Write what is queued (for up to ``timeout`` seconds), then stop the writer."""
        self.flush(timeout)
        with self._cond:
            self._closing = True
            self._queue.clear()
            self._cond.notify_all()
        self._thread.join(timeout)

    # ------------------------------------------------------------ the writer thread

    def _write_loop(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closing:
                    self._cond.wait()
                if self._closing:
                    return
                entry = self._queue.popleft()
                self._writing = True
            try:
                self.write(entry)
            finally:
                with self._cond:
                    self._pending -= entry.nbytes
                    self._writing = False
                    self._cond.notify_all()

    def write(self, entry: Entry) -> None:
        """Put ``entry`` in a file now (on the calling thread)."""
        try:
            self._write(entry)
        except OSError as exc:
            log.warning("could not write a prompt state to %s: %s", self.folder, exc)

    def _write(self, entry: Entry) -> None:
        if entry.nbytes > self.limit:
            return
        with self._lock:
            for s in self._stored.values():
                if s.key == entry.key and common_prefix(s.tokens, entry.tokens) == len(
                    entry.tokens
                ):
                    return  # a file holds these tokens (or more) already
        logits = entry.logits if entry.logits is not None else np.zeros(0, dtype=np.float32)
        header = Header(
            entry.key, len(entry.tokens), len(logits), entry.logits_at, entry.state.size
        )
        path = self.folder / f"{entry.key}-{uuid.uuid4().hex}{SUFFIX}"
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb", opener=_private) as f:
            f.write(MAGIC)
            f.write(msgspec.json.encode(header) + b"\n")
            f.write(entry.tokens.astype(np.int32).tobytes())
            f.write(logits.astype(np.float32).tobytes())
            entry.state.tofile(f)
        os.replace(tmp, path)
        size = path.stat().st_size
        with self._lock:
            for old in list(self._stored.values()):  # files this one extends
                if old.key == entry.key and common_prefix(old.tokens, entry.tokens) == len(
                    old.tokens
                ):
                    self._remove(old.path)
            self._stored[path] = Stored(entry.key, entry.tokens, path, size, time.time())
            self.bytes += size
            self.writes += 1
            self._trim()

    # ------------------------------------------------------------ the index (under the lock)

    def _scan(self) -> None:
        for path in self.folder.iterdir():
            if path.suffix == ".tmp":  # a write cut short
                with contextlib.suppress(OSError):
                    path.unlink()
                continue
            if path.suffix != SUFFIX:
                continue
            try:
                entry = _read(path, with_state=False)
                st = path.stat()
            except (OSError, ValueError) as exc:
                log.warning("removing the prompt state %s: %s", path.name, exc)
                with contextlib.suppress(OSError):
                    path.unlink()
                continue
            self._stored[path] = Stored(entry.key, entry.tokens, path, st.st_size, st.st_mtime)
            self.bytes += st.st_size
        self._stored = dict(sorted(self._stored.items(), key=lambda item: item[1].used))
        with self._lock:
            self._trim()

    def _trim(self) -> None:
        while self._stored and self.bytes > self.limit:
            self._remove(min(self._stored.values(), key=lambda s: s.used).path)

    def _forget(self, path: Path) -> None:
        self.bytes -= self._stored.pop(path).nbytes

    def _remove(self, path: Path) -> None:
        self._forget(path)
        with contextlib.suppress(OSError):
            path.unlink()


def _read(path: Path, with_state: bool) -> Entry:
    """A file's entry; without ``with_state``, its state is left unread (an empty array)."""
    with open(path, "rb") as f:
        if f.read(len(MAGIC)) != MAGIC:
            raise ValueError("not a prompt state file")
        try:
            header = msgspec.json.decode(f.readline(), type=Header)
        except msgspec.DecodeError as exc:
            raise ValueError(f"bad header: {exc}") from None
        tokens = np.fromfile(f, dtype=np.int32, count=header.tokens)
        logits = np.fromfile(f, dtype=np.float32, count=header.logits) if header.logits else None
        if with_state:
            state = np.fromfile(f, dtype=np.uint8, count=header.state)
        else:
            state = np.zeros(0, dtype=np.uint8)
    if len(tokens) != header.tokens or (logits is not None and len(logits) != header.logits):
        raise ValueError("the file is cut short")
    if with_state and state.size != header.state:
        raise ValueError("the file is cut short")
    return Entry(header.key, tokens, state, logits, header.logits_at if logits is not None else 0)
