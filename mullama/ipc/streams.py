"""Server-side streams: an engine event iterator buffered until the client pulls it.

A stream belongs to the nng pipe (client connection) that opened it: when that
client goes away its streams are cancelled at once, which stops the generation.
A stream nobody has pulled for :data:`IDLE_SECONDS` is cancelled too.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

from mullama.engine.api import (
    Cancelled,
    EngineError,
    InvalidRequest,
    PullProgress,
    error_to_wire,
)

from .codec import encode_value
from .protocol import MAX_BATCH, POLL_SECONDS

log = logging.getLogger("mullama.ipc")

IDLE_SECONDS = 120.0


class Stream:
    def __init__(self, iterator: AsyncIterator[Any], pipe: int | None):
        self.id = secrets.token_hex(8)
        self.pipe = pipe
        self.events: list[
            dict[str, Any]
        ] = []  # not yet acknowledged; events[0] has index self.offset
        self.offset = 0
        self.end = False
        self.error: dict[str, Any] | None = None
        self.changed = asyncio.Event()
        self.touched = time.monotonic()
        self.task = asyncio.create_task(self._pump(iterator), name=f"ipc-stream-{self.id}")

    async def _pump(self, iterator: AsyncIterator[Any]) -> None:
        try:
            async for event in iterator:
                self._append(event)
        except EngineError as exc:
            self.error = error_to_wire(exc)
        except asyncio.CancelledError:
            self.error = error_to_wire(Cancelled("cancelled"))
        except Exception as exc:  # reported to the client, logged here
            log.exception("stream %s failed", self.id)
            self.error = error_to_wire(EngineError(f"internal error: {exc}"))
        finally:
            self.end = True
            self.changed.set()

    def _append(self, event: Any) -> None:
        wire = encode_value(event)
        last = self.events[-1] if self.events else None
        # download progress supersedes itself: keep only the newest unread one
        if (
            isinstance(event, PullProgress)
            and event.status == "downloading"
            and last is not None
            and last["__type__"] == "PullProgress"
            and last["status"] == "downloading"
            and last["file"] == event.file
        ):
            self.events[-1] = wire
        else:
            self.events.append(wire)
        self.changed.set()

    async def next_batch(self, after: int) -> dict[str, Any]:
        """Events from index ``after`` on (waiting briefly for one), and whether that is all."""
        if after < self.offset or after > self.offset + len(self.events):
            raise InvalidRequest(
                f"stream {self.id}: cursor {after} is outside "
                f"{self.offset}..{self.offset + len(self.events)}",
                param="after",
            )
        del self.events[: after - self.offset]
        self.offset = after
        if not self.events and not self.end:
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), POLL_SECONDS)
            except TimeoutError:
                pass
        batch = self.events[:MAX_BATCH]
        end = self.end and len(batch) == len(self.events)
        self.touched = time.monotonic()
        return {
            "offset": self.offset,
            "events": batch,
            "end": end,
            "error": self.error if end else None,
        }

    async def cancel(self) -> None:
        if not self.task.done():
            self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


class Streams:
    """The open streams of one server."""

    def __init__(self) -> None:
        self._streams: dict[str, Stream] = {}
        self._reaper: asyncio.Task[None] | None = None

    def open(self, iterator: AsyncIterator[Any], pipe: int | None) -> Stream:
        stream = Stream(iterator, pipe)
        self._streams[stream.id] = stream
        if self._reaper is None:
            self._reaper = asyncio.create_task(self._reap(), name="ipc-stream-reaper")
        return stream

    def get(self, stream_id: str) -> Stream:
        stream = self._streams.get(stream_id)
        if stream is None:
            raise InvalidRequest(
                f"unknown stream {stream_id!r}: it ended, was cancelled, or the daemon restarted",
                param="stream",
            )
        return stream

    async def next_batch(self, stream_id: str, after: int) -> dict[str, Any]:
        stream = self.get(stream_id)
        reply = await stream.next_batch(after)
        if reply["end"]:
            self._streams.pop(stream_id, None)
        return reply

    async def cancel(self, stream_id: str) -> bool:
        stream = self._streams.pop(stream_id, None)
        if stream is None:
            return False
        await stream.cancel()
        return True

    async def cancel_pipe(self, pipe: int) -> None:
        """The client on ``pipe`` disconnected: stop what it started."""
        for stream_id in [s.id for s in self._streams.values() if s.pipe == pipe]:
            log.info("client disconnected: cancelling stream %s", stream_id)
            await self.cancel(stream_id)

    async def close(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            await asyncio.gather(self._reaper, return_exceptions=True)
        for stream_id in list(self._streams):
            await self.cancel(stream_id)

    async def _reap(self) -> None:
        while True:
            await asyncio.sleep(IDLE_SECONDS / 4)
            limit = time.monotonic() - IDLE_SECONDS
            for stream_id in [s.id for s in self._streams.values() if s.touched < limit]:
                log.info("stream %s not read for %.0fs: cancelling", stream_id, IDLE_SECONDS)
                await self.cancel(stream_id)
