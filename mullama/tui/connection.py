"""Which engine the app talks to: a running daemon over nng, else the engine in-process."""

from __future__ import annotations

import asyncio

from ..config import Settings
from ..engine.api import Engine, Unavailable

ATTACH_TIMEOUT = 1.5


async def attach(address: str, api_key: str = "") -> Engine:
    """A RemoteEngine for the daemon at ``address``; raises Unavailable if none answers (and
    the daemon's refusal when ``api_key`` is not its key)."""
    from ..ipc.client import RemoteEngine

    remote = RemoteEngine(address, ping_timeout=3.0, api_key=api_key)
    try:
        await remote.ping(timeout=ATTACH_TIMEOUT)
    except BaseException:
        await remote.close()
        raise
    return remote


async def connect(settings: Settings, address: str, *, attach_only: bool = False) -> Engine:
    """Attach to the daemon at ``address`` if one answers, else start a LocalEngine."""
    try:
        return await attach(address, settings.api_key)
    except Unavailable:
        if attach_only:
            raise
    from ..engine.local import LocalEngine  # imports llama.cpp: off the UI thread

    return await asyncio.to_thread(LocalEngine, settings)
