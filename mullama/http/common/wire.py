"""The one path from engine event streams to a dialect's reply, streamed or whole.

A :class:`Writer` turns events into wire objects (its dialect's chunk TypedDicts, or
OpenAI's ``"[DONE]"``; a :class:`~.protocol.Reply` when not streamed) and knows how its
dialect frames them; :func:`answer` runs the streams and sends what the writer makes.

What a streamed answer sends when:

1. nothing until each engine stream's first event — :class:`~mullama.engine.api.Started`
   once the request is admitted (model loaded, prompt tokenized, options checked, context and
   queue checks passed) — or :data:`PRIME_SECONDS`, whichever comes first: an error before
   that (validation, unknown model, context overflow, full queue) is a proper HTTP status;
2. then the headers and the dialect's opening at once, whether the prefill takes a second or
   minutes;
3. while no event comes for :data:`KEEPALIVE_SECONDS`, the writer's :meth:`Writer.keepalive`
   (an SSE comment, Anthropic's ``ping``; nothing for NDJSON, which some Ollama clients cannot
   skip), every interval; an error from then on is the dialect's streamed error.

Whatever is sent, the client's going away is noticed (see :func:`guarded`): the handler is
cancelled, which closes the engine streams, which cancels their generation.
"""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping
from typing import Any, Generic, TypeVar

from sanic import HTTPResponse, Request
from sanic.response import json

from ...engine.api import EngineError, Event, Started
from ..events import Collected, Feed, merge
from ..sse import ndjson, open_stream, sse
from .protocol import Reply

# a dialect's streamed chunk: a TypedDict (or a literal marker such as OpenAI's "[DONE]")
ChunkT = TypeVar("ChunkT", bound=Mapping[str, Any] | str)
ObjectT = TypeVar("ObjectT", bound=Mapping[str, Any])  # a chunk that is a JSON object
ErrorBody = dict[str, Any]  # an error as the dialect words it (see http.errors)

PRIME_SECONDS = 5.0  # a stream's headers wait at most this long for the engine's first event
KEEPALIVE_SECONDS = 10.0  # a streamed answer silent this long sends a keep-alive
WATCH_SECONDS = 10.0  # how often a request's connection is checked (see guarded)
KEEPALIVE_COMMENT = ": keep-alive\n\n"


class Writer(ABC, Generic[ChunkT]):
    """Engine events of one response as one dialect's objects.

    Streamed: :meth:`opening`, then :meth:`event` for each event (``index``: which of several
    prompts it belongs to), then :meth:`closing`; :meth:`error` when the engine fails midway.
    Not streamed: :meth:`whole` of the collected results, one per stream.
    """

    content_type = "text/event-stream"

    def keepalive(self) -> str | None:
        """What is sent while nothing else is (a long prefill): an SSE comment, which every
        SSE parser skips; None sends nothing."""
        return KEEPALIVE_COMMENT

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

    def keepalive(self) -> str | None:
        return None  # a blank line breaks clients that json.loads every line (Ollama sends none)

    def encode(self, chunk: ObjectT | ErrorBody) -> str:
        return ndjson(chunk)


def stream_chunks(writer: Writer[ChunkT], events: list[tuple[int, Event]]) -> list[ChunkT]:
    """Everything a writer sends for an event sequence (the tests' view of a stream)."""
    chunks = writer.opening()
    for index, event in events:
        chunks += writer.event(event, index)
    return chunks + writer.closing()


@contextlib.asynccontextmanager
async def guarded(request: Request):
    """While a generation runs: cancel the handler as soon as its client goes away.

    Sanic cancels a handler when its connection is lost, but it only learns of the loss by
    reading (the peer's FIN or RST) or by a failing write. It stops reading while more than
    ``REQUEST_BUFFER_SIZE`` (64 KiB) is buffered, and a large body (an agent's 17k-token
    prompt) can leave reading paused for the whole request, so that a client that hangs up
    during a long prefill, or while it waits for a whole answer, leaves its socket in
    CLOSE-WAIT and its generation running. So reading is resumed here (the body is read by
    then), and every :data:`WATCH_SECONDS` a watcher resumes it again if something paused
    it and cancels the handler if the transport is closing."""
    transport = getattr(request, "transport", None)
    handler = asyncio.current_task()
    watcher = None
    if isinstance(transport, asyncio.Transport) and handler is not None:  # not under ASGI

        def keep_reading() -> None:
            with contextlib.suppress(Exception):  # a transport that cannot pause does not
                if not transport.is_reading():
                    transport.resume_reading()

        async def watch() -> None:
            while True:
                keep_reading()
                await asyncio.sleep(WATCH_SECONDS)
                if transport.is_closing():
                    handler.cancel()
                    return

        keep_reading()
        watcher = asyncio.create_task(watch(), name="http-connection-watch")
    try:
        yield
    finally:
        if watcher is not None:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)


async def answer(
    request: Request,
    streams: list[AsyncIterator[Event]],
    writer: Writer[Any],
    stream: bool,
) -> HTTPResponse | None:
    """Send engine event streams through ``writer``, as one JSON body or streamed (what is
    sent when: see this module). Leaving closes the streams, which cancels their generation;
    so does the client's going away (:func:`guarded`)."""
    async with guarded(request):
        if not stream:
            return await _whole(streams, writer)
        await _streamed(request, streams, writer)
    return None


async def _whole(streams: list[AsyncIterator[Event]], writer: Writer[Any]) -> HTTPResponse:
    results = [Collected() for _ in streams]
    merged = merge(streams)
    try:
        async for index, event in merged:
            results[index].add(event)
    finally:
        await merged.aclose()  # type: ignore[attr-defined]
        for s in streams:
            aclose = getattr(s, "aclose", None)  # engine streams are async generators
            if aclose is not None:
                await aclose()
    return json(writer.whole(results).wire())


async def _streamed(
    request: Request, streams: list[AsyncIterator[Event]], writer: Writer[Any]
) -> None:
    feed = Feed(streams)
    try:
        early: list[tuple[int, Event]] = []  # events before the headers, Started left out
        waiting = set(range(len(streams)))  # streams that have not said anything yet
        with contextlib.suppress(TimeoutError, StopAsyncIteration):
            async with asyncio.timeout(PRIME_SECONDS):
                while waiting:
                    index, event = await feed.next()  # an error here is the reply's status
                    waiting.discard(index)
                    if not isinstance(event, Started):
                        early.append((index, event))
        response = await open_stream(request, writer.content_type)
        await response.send("")  # Sanic sends the headers with the first data: now, alone
        send = _Sender(response, writer)
        try:
            await send.chunks(writer.opening())
            for index, event in early:
                await send.chunks(writer.event(event, index))
            while True:
                try:
                    async with asyncio.timeout(KEEPALIVE_SECONDS):
                        index, event = await feed.next()
                except TimeoutError:
                    await send.keepalive()
                    continue
                except StopAsyncIteration:
                    break
                if not isinstance(event, Started):
                    await send.chunks(writer.event(event, index))
            await send.chunks(writer.closing())
        except EngineError as exc:
            await response.send(writer.encode(writer.error(exc)))
        await response.eof()
    finally:
        await feed.close()


class _Sender:
    def __init__(self, response: Any, writer: Writer[Any]):
        self.response, self.writer = response, writer

    async def chunks(self, chunks: list[Any]) -> None:
        for chunk in chunks:
            await self.response.send(self.writer.encode(chunk))

    async def keepalive(self) -> None:
        text = self.writer.keepalive()
        if text:  # a closed peer makes this write fail, which ends the handler
            await self.response.send(text)
