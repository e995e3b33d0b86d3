"""The one path from engine event streams to a dialect's reply, streamed or whole.

A :class:`Writer` turns events into wire objects (its dialect's chunk TypedDicts, or
OpenAI's ``"[DONE]"``; a :class:`~.protocol.Reply` when not streamed) and knows how its
dialect frames them; :func:`answer` runs the streams and sends what the writer makes.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping
from typing import Any, Generic, TypeVar

from sanic import HTTPResponse, Request
from sanic.response import json

from ...engine.api import EngineError, Event
from ..events import Collected, merge, primed
from ..sse import ndjson, open_stream, sse
from .protocol import Reply

# a dialect's streamed chunk: a TypedDict (or a literal marker such as OpenAI's "[DONE]")
ChunkT = TypeVar("ChunkT", bound=Mapping[str, Any] | str)
ObjectT = TypeVar("ObjectT", bound=Mapping[str, Any])  # a chunk that is a JSON object
ErrorBody = dict[str, Any]  # an error as the dialect words it (see http.errors)


class Writer(ABC, Generic[ChunkT]):
    """Engine events of one response as one dialect's objects.

    Streamed: :meth:`opening`, then :meth:`event` for each event (``index``: which of several
    prompts it belongs to), then :meth:`closing`; :meth:`error` when the engine fails midway.
    Not streamed: :meth:`whole` of the collected results, one per stream.
    """

    content_type = "text/event-stream"

    def opening(self) -> list[ChunkT]:
        return []

    @abstractmethod
    def event(self, event: Event, index: int = 0) -> list[ChunkT]: ...

    def closing(self) -> list[ChunkT]:
        return []

    @abstractmethod
    def error(self, exc: EngineError) -> ErrorBody: ...

    @abstractmethod
    def whole(self, results: list[Collected]) -> Reply: ...

    def encode(self, chunk: ChunkT | ErrorBody) -> str:
        return sse(chunk)


class NdjsonWriter(Writer[ObjectT]):
    content_type = "application/x-ndjson"

    def encode(self, chunk: ObjectT | ErrorBody) -> str:
        return ndjson(chunk)


def stream_chunks(writer: Writer[ChunkT], events: list[tuple[int, Event]]) -> list[ChunkT]:
    """Everything a writer sends for an event sequence (the tests' view of a stream)."""
    chunks = writer.opening()
    for index, event in events:
        chunks += writer.event(event, index)
    return chunks + writer.closing()


async def answer(
    request: Request,
    streams: list[AsyncIterator[Event]],
    writer: Writer[Any],
    stream: bool,
) -> HTTPResponse | None:
    """Send engine event streams through ``writer``, as one JSON body or streamed.

    Each stream is primed first, so that an engine error before the first event is a proper
    HTTP status; leaving closes the streams, which cancels their generation."""
    async with contextlib.AsyncExitStack() as stack:
        primed_streams = [await stack.enter_async_context(primed(s)) for s in streams]
        merged = merge(primed_streams)
        stack.push_async_callback(merged.aclose)  # type: ignore[attr-defined]
        if not stream:
            results = [Collected() for _ in streams]
            async for index, event in merged:
                results[index].add(event)
            return json(writer.whole(results).wire())
        response = await open_stream(request, writer.content_type)
        try:
            for chunk in writer.opening():
                await response.send(writer.encode(chunk))
            async for index, event in merged:
                for chunk in writer.event(event, index):
                    await response.send(writer.encode(chunk))
            for chunk in writer.closing():
                await response.send(writer.encode(chunk))
        except EngineError as exc:
            await response.send(writer.encode(writer.error(exc)))
        await response.eof()
    return None
