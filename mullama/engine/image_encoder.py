"""The image encoder of a vision model: one thread per projector, so that encoding an image
(seconds on a CPU for a real projector) never stalls the runner's decode steps.

The runner asks for an image's embeddings with :meth:`ImageEncoder.submit` and gets a future;
the thread encodes in order, keeping the last images' rows by digest (a repeated image, in
another conversation or after its cache was evicted, is not encoded again). The thread is the
only one using the projector's output buffer, and a prompt's mtmd chunks are freed on it too
(:meth:`ImageEncoder.dispose`), after any encode of them it still has queued.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .api import Cancelled, EngineError
from .vision import ChunkedPrompt, ImageChunk, Projector

log = logging.getLogger("mullama.vision")

Rows = npt.NDArray[np.float32]
CACHE_BYTES = 64 * 2**20  # encoded rows kept by digest


@dataclass
class _Encode:
    chunk: ImageChunk
    future: Future[Rows]
    cancelled: threading.Event


class ImageEncoder:
    def __init__(
        self,
        projector: Projector,
        on_done: Callable[[], None],
        cache_bytes: int = CACHE_BYTES,
        name: str = "",
    ) -> None:
        self.projector = projector
        self.on_done = on_done  # called on the encoder thread when an encode finished
        self.cache_bytes = cache_bytes
        self._cache: collections.OrderedDict[str, Rows] = collections.OrderedDict()
        self._cached_bytes = 0
        self._lock = threading.Lock()
        self._work: collections.deque[_Encode | ChunkedPrompt] = collections.deque()
        self._wake = threading.Condition(self._lock)
        self._stopping = False
        self.encoded = 0  # images encoded (not served from the cache)
        self.encode_seconds = 0.0
        self._thread = threading.Thread(target=self._run, name=f"encoder:{name}", daemon=True)
        self._thread.start()

    def submit(self, chunk: ImageChunk, cancelled: threading.Event) -> Future[Rows]:
        future: Future[Rows] = Future()
        with self._lock:
            rows = self._cache.get(chunk.digest)
            if rows is not None:
                self._cache.move_to_end(chunk.digest)
                future.set_result(rows)
                return future
            self._work.append(_Encode(chunk, future, cancelled))
            self._wake.notify()
        return future

    def dispose(self, prompt: ChunkedPrompt) -> None:
        """Free ``prompt``'s mtmd chunks once the encodes queued before are done."""
        with self._lock:
            if self._stopping:
                prompt.close()  # the thread is gone or going: nothing encodes any more
                return
            self._work.append(prompt)
            self._wake.notify()

    def close(self) -> None:
        with self._lock:
            self._stopping = True
            self._wake.notify()
        self._thread.join()

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._work and not self._stopping:
                    self._wake.wait()
                if self._stopping:
                    break
                item = self._work.popleft()
            if isinstance(item, ChunkedPrompt):
                item.close()
            else:
                self._encode(item)
        while self._work:  # stopping: nothing more is encoded
            item = self._work.popleft()
            if isinstance(item, ChunkedPrompt):
                item.close()
            elif item.future.set_running_or_notify_cancel():
                item.future.set_exception(Cancelled("the model was unloaded"))

    def _encode(self, item: _Encode) -> None:
        # a future the runner dropped (its job ended) is not encoded; one that runs can no
        # longer be cancelled, so its result is always set
        if not item.future.set_running_or_notify_cancel():
            return
        if item.cancelled.is_set():
            item.future.set_exception(Cancelled("cancelled before its image was encoded"))
            self.on_done()
            return
        digest = item.chunk.digest
        with self._lock:
            rows = self._cache.get(digest)  # an earlier request of this queue encoded it
        if rows is None:
            started = time.perf_counter()
            try:
                rows = self.projector.encode(item.chunk)
            except EngineError as exc:
                item.future.set_exception(exc)
                self.on_done()
                return
            except Exception as exc:  # handed to the request, which fails alone
                log.exception("encoding an image failed")
                item.future.set_exception(EngineError(f"the image could not be encoded: {exc}"))
                self.on_done()
                return
            self.encoded += 1
            self.encode_seconds += time.perf_counter() - started
            self._remember(digest, rows)
        item.future.set_result(rows)
        self.on_done()

    def _remember(self, digest: str, rows: Rows) -> None:
        if rows.nbytes > self.cache_bytes:
            return
        with self._lock:
            self._cache[digest] = rows
            self._cached_bytes += rows.nbytes
            while self._cached_bytes > self.cache_bytes:
                _, old = self._cache.popitem(last=False)
                self._cached_bytes -= old.nbytes
