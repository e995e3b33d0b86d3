"""Engine event streams as the HTTP handlers need them: primed, collected, merged, fed."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from ..engine.api import Done, Event, TextDelta, ThinkingDelta, ToolCall, ToolCallDelta


@dataclass
class Collected:
    """A whole (non-streamed) answer assembled from its events."""

    text: str = ""
    thinking: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    logprobs: list[dict] = field(default_factory=list)
    done: Done = field(default_factory=lambda: Done("stop"))

    def add(self, event: Event) -> None:
        if isinstance(event, TextDelta):
            self.text += event.text
            self.logprobs.extend(event.logprobs or [])
        elif isinstance(event, ThinkingDelta):
            self.thinking += event.text
        elif isinstance(event, ToolCallDelta):
            while len(self.tool_calls) <= event.index:
                self.tool_calls.append(ToolCall("", "", ""))
            call = self.tool_calls[event.index]
            call.id = event.id or call.id
            call.name = event.name or call.name
            call.arguments += event.arguments
        elif isinstance(event, Done):
            self.done = event


async def collect(events: AsyncIterator[Event]) -> Collected:
    result = Collected()
    async for event in events:
        result.add(event)
    return result


@contextlib.asynccontextmanager
async def primed(stream: AsyncIterator[Event]):
    """Fetch the first event before anything is sent, so that engine errors (unknown model,
    context overflow, full queue) become a proper HTTP status rather than a broken stream.
    Closing the context closes the engine stream, which cancels its generation."""
    try:
        try:
            first = await stream.__anext__()
        except StopAsyncIteration:
            first = None

        async def events() -> AsyncIterator[Event]:
            if first is None:
                return
            yield first
            async for event in stream:
                yield event

        yield events()
    finally:
        aclose = getattr(stream, "aclose", None)  # engine streams are async generators
        if aclose is not None:
            await aclose()


async def merge(streams: list[AsyncIterator[Event]]) -> AsyncIterator[tuple[int, Event]]:
    """Events of several streams as ``(index, event)`` in arrival order (they run concurrently)."""
    if len(streams) == 1:  # the usual case: no pump task and queue hop per token
        async for event in streams[0]:
            yield 0, event
        return
    feed = Feed(streams)
    try:
        while True:
            try:
                yield await feed.next()
            except StopAsyncIteration:
                return
    finally:
        await feed.close()


class Feed:
    """Several engine streams read concurrently (one task each) into one queue of
    ``(index, event)``, so that the reader can wait for the next event with a timeout (and send
    a keep-alive meanwhile) without ever cancelling an engine stream mid-step.

    :meth:`next` returns the next pair, raises the error a stream raised, and raises
    ``StopAsyncIteration`` once every stream has ended; :meth:`close` cancels what still runs
    (which cancels its generation) and waits for it."""

    _END = object()

    def __init__(self, streams: list[AsyncIterator[Event]]):
        self._queue: asyncio.Queue[tuple[int, object]] = asyncio.Queue()
        self._remaining = len(streams)
        self._tasks = [
            asyncio.create_task(self._pump(i, s), name=f"http-stream-{i}")
            for i, s in enumerate(streams)
        ]

    async def _pump(self, index: int, stream: AsyncIterator[Event]) -> None:
        try:
            async for event in stream:
                self._queue.put_nowait((index, event))
        except Exception as exc:  # handed to the reader
            self._queue.put_nowait((index, exc))
        finally:
            self._queue.put_nowait((index, self._END))

    async def next(self) -> tuple[int, Event]:
        while self._remaining:
            index, item = await self._queue.get()
            if item is self._END:
                self._remaining -= 1
            elif isinstance(item, Exception):
                raise item
            else:
                return index, item  # type: ignore[return-value]
        raise StopAsyncIteration

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
