"""The daemon's readiness from start to stop: HTTP answers before the ``--model`` models are
loaded, with /health/ready 503 until they are, and 503 again while it drains. The daemon runs
in this process so that the test can hold its model load and its drain until it has looked."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from mullama.config import load_settings
from mullama.daemon import Daemon
from mullama.engine.local import LocalEngine
from tests.helpers import settings_env

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


async def until(probe, deadline: float = 60):
    """``probe()``'s first answer that is not None (connection errors count as None)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while loop.time() < end:
        try:
            answer = await probe()
        except httpx.TransportError:
            answer = None
        if answer is not None:
            return answer
        await asyncio.sleep(0.05)
    raise AssertionError("no answer in time")


async def test_ready_only_once_the_models_are_loaded_and_not_while_draining(
    tmp_path, test_model_path, monkeypatch
):
    loading, closing = asyncio.Event(), asyncio.Event()
    load, close = LocalEngine.load_model, LocalEngine.close

    async def held_load(self, *args, **kwargs):
        await loading.wait()
        return await load(self, *args, **kwargs)

    async def held_close(self):
        await closing.wait()
        await close(self)

    monkeypatch.setattr(LocalEngine, "load_model", held_load)
    monkeypatch.setattr(LocalEngine, "close", held_close)
    settings = load_settings(env=settings_env(tmp_path))
    daemon = Daemon(settings, [str(test_model_path)])
    started = asyncio.ensure_future(daemon.start())
    url = settings.http_endpoint
    try:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:

            async def answered():
                return await client.get("/health/ready")

            r = await until(answered)
            assert r.status_code == 503 and r.json()["status"] == "loading"
            assert r.headers["retry-after"]
            assert (await client.get("/health")).status_code == 200
            generate = await client.post(
                "/api/generate", json={"model": str(test_model_path), "prompt": "hi"}
            )
            assert generate.status_code == 503 and generate.headers["retry-after"]
            loading.set()
            await started
            r = await client.get("/health/ready")
            assert r.status_code == 200 and r.json() == {"status": "ok"}
            models = (await client.get("/api/ps")).json()["models"]
            assert [m["model"] for m in models] == [str(test_model_path)]

            stopping = asyncio.ensure_future(daemon.stop())  # runs at the client's first await
            # on the connection the client keeps open (new ones are refused now): liveness
            # answers, readiness and every other route refuse
            assert (await client.get("/health")).status_code == 200
            r = await client.get("/health/ready")
            assert r.status_code == 503 and r.json()["status"] == "draining"
            assert r.headers["retry-after"]
            closing.set()
            await stopping
    finally:
        loading.set()
        closing.set()
        if not started.done():
            started.cancel()
        await daemon.stop()
