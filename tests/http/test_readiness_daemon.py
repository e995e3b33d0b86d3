"""The daemon's readiness from start to stop: HTTP answers before the ``--model`` models are
loaded, with /health/ready 503 until they are, and 503 again while it drains on SIGTERM.

A real ``mullama serve`` process, whose model load and drain wait for a file the test writes
once it has looked (the same command line, with LocalEngine's load_model and close held)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from tests.helpers import settings_env

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

HELD = """
import asyncio, pathlib, sys
from mullama.engine.local import LocalEngine

gates = pathlib.Path(sys.argv[1])
load, close = LocalEngine.load_model, LocalEngine.close


async def opened(name):
    while not (gates / name).exists():
        await asyncio.sleep(0.02)


async def held_load(self, *args, **kwargs):
    await opened("load")
    return await load(self, *args, **kwargs)


async def held_close(self):
    await opened("close")
    await close(self)


LocalEngine.load_model, LocalEngine.close = held_load, held_close
from mullama.cli.main import main

sys.exit(main(["serve", "--headless", *sys.argv[2:]]))
"""


def until(probe, what: str, deadline: float = 120):
    """``probe()``'s first answer that is not None (connection errors count as None)."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            answer = probe()
        except httpx.TransportError:
            answer = None
        if answer is not None:
            return answer
        time.sleep(0.05)
    raise AssertionError(f"no {what} in {deadline}s")


def ready_is(client: httpx.Client, status: int) -> httpx.Response | None:
    r = client.get("/health/ready")
    return r if r.status_code == status else None


def test_ready_only_once_the_models_are_loaded_and_not_while_draining(tmp_path, test_model_path):
    env = {**os.environ, **settings_env(tmp_path)}
    url = f"http://127.0.0.1:{env['MULLAMA_HTTP_PORT']}"
    gates = tmp_path / "gates"
    gates.mkdir()
    log = tmp_path / "daemon.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", HELD, str(gates), "--model", str(test_model_path)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            seen: list[tuple[int, str]] = []

            def loading() -> httpx.Response | None:
                r = client.get("/health/ready")
                seen.append((r.status_code, r.json()["status"]))
                return r if r.json()["status"] == "loading" else None

            r = until(loading, "loading")  # "starting" first, while the store is pruned
            assert set(seen) <= {(503, "starting"), (503, "loading")}, seen
            assert int(r.headers["retry-after"]) > 0
            assert client.get("/health").status_code == 200  # alive
            generate = client.post("/api/generate", json={"model": "m", "prompt": "hi"})
            assert generate.status_code == 503 and generate.headers["retry-after"]

            (gates / "load").touch()
            r = until(lambda: ready_is(client, 200), "readiness")
            assert r.json() == {"status": "ok"}
            models = client.get("/api/ps").json()["models"]
            assert [m["model"] for m in models] == [str(test_model_path)]

            proc.send_signal(signal.SIGTERM)
            # on the connection the client keeps open (new ones are refused now): readiness
            # refuses, liveness still answers
            r = until(lambda: ready_is(client, 503), "drain")
            assert r.json()["status"] == "draining" and r.headers["retry-after"]
            assert client.get("/health").status_code == 200
        (gates / "close").touch()
        assert proc.wait(60) == 0, log.read_text()
    finally:
        (gates / "load").touch()
        (gates / "close").touch()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
