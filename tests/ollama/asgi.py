"""An httpx transport straight into a Sanic app (ASGI), for tests that need no daemon."""

from __future__ import annotations

import asyncio
import contextlib

import httpx


@contextlib.asynccontextmanager
async def asgi_transport(app):
    """An httpx transport into ``app`` with its ASGI lifespan started and stopped around it."""
    inbox: asyncio.Queue = asyncio.Queue()
    outbox: asyncio.Queue = asyncio.Queue()
    lifespan = asyncio.create_task(
        app({"type": "lifespan", "asgi": {"version": "3.0"}}, inbox.get, outbox.put)
    )
    await inbox.put({"type": "lifespan.startup"})
    assert (await outbox.get())["type"] == "lifespan.startup.complete"
    try:
        yield httpx.ASGITransport(app=app)
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        await outbox.get()
        await lifespan
