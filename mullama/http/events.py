"""Engine event streams as the HTTP handlers need them: primed, collected, merged."""

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
    queue: asyncio.Queue = asyncio.Queue()
    finished = object()

    async def pump(index: int, stream: AsyncIterator[Event]) -> None:
        try:
            async for event in stream:
                await queue.put((index, event))
        except Exception as exc:  # handed to the consumer
            await queue.put((index, exc))
        finally:
            await queue.put((index, finished))

    tasks = [asyncio.create_task(pump(i, s)) for i, s in enumerate(streams)]
    try:
        remaining = len(tasks)
        while remaining:
            index, item = await queue.get()
            if item is finished:
                remaining -= 1
            elif isinstance(item, Exception):
                raise item
            else:
                yield index, item
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
