"""The IPC server of a real daemon: RemoteEngine, streaming, cancel, bad messages, versions."""

from __future__ import annotations

import asyncio
import os
import stat
import time

import httpx
import pytest

from mullama.engine.api import (
    ChatRequest,
    Done,
    Message,
    ModelNotFound,
    SamplingOptions,
    Started,
    TextDelta,
    Unavailable,
)
from mullama.ipc import RemoteEngine
from mullama.ipc.protocol import PROTOCOL_VERSION, VersionMismatch

from .conftest import RawClient, raw_request

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

PROMPT = "List the planets of the solar system, one per line."


def chat(max_tokens: int, prompt: str = PROMPT) -> ChatRequest:
    return ChatRequest(
        "gemma",
        [Message("user", prompt)],
        SamplingOptions(max_tokens=max_tokens, temperature=0, seed=1),
    )


async def wait_idle(engine: RemoteEngine, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = await engine.status()
        if status.requests_active == 0 and all(m.busy_slots == 0 for m in status.loaded):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"generation still running after {timeout}s: {status}")


def test_socket_file_is_private(daemon):
    path = daemon.socket[len("ipc://") :]
    assert stat.S_ISSOCK(os.stat(path).st_mode)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


async def test_ping_status_and_models(remote, daemon):
    info = await remote.ping()
    assert info.protocol == PROTOCOL_VERSION and info.pid == daemon.proc.pid
    status = await remote.status()
    assert status.endpoints["socket"] == daemon.socket
    assert "gemma:latest" in [m.name for m in await remote.list_models()]
    details = await remote.show_model("gemma")
    assert "FROM" in details.modelfile and details.info.family == "gemma3"


async def test_errors_cross_the_socket_with_their_class(remote):
    with pytest.raises(ModelNotFound) as info:
        await remote.show_model("gema")
    assert info.value.details["suggestions"]


async def test_stream_arrives_complete_and_in_order(remote, daemon):
    events = [e async for e in remote.chat(chat(24))]
    assert isinstance(events[-1], Done) and sum(isinstance(e, Done) for e in events) == 1
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert events[-1].usage.completion_tokens == 24
    # the same request answered in one piece over HTTP gives the same text
    body = {
        "model": "gemma",
        "messages": [{"role": "user", "content": PROMPT}],
        "stream": False,
        "options": {"num_predict": 24, "temperature": 0, "seed": 1},
    }
    reply = httpx.post(f"{daemon.url}/api/chat", json=body, timeout=300).json()
    assert text == reply["message"]["content"]


async def test_long_generation_does_not_delay_another_client(remote, daemon):
    request = chat(2000)
    request.options.ignore_eos = True  # a generation that lasts until this test ends it
    stream = remote.chat(request)
    assert isinstance(await anext(stream), Started)  # admitted, as in-process
    first = await anext(stream)
    assert isinstance(first, TextDelta)
    other = RemoteEngine(daemon.socket)
    try:
        running = await other.running_models()
    finally:
        await other.close()
    # answered while the generation still runs: its slot is busy in the very answer
    # (other tests may have left other models loaded on the session daemon)
    assert any(m.name == "gemma:latest" and m.busy_slots >= 1 for m in running), running
    assert isinstance(await anext(stream), TextDelta)  # and the stream goes on
    await stream.aclose()
    await wait_idle(remote)


async def test_closing_the_stream_cancels_the_generation(remote):
    stream = remote.chat(chat(400))
    got = [await anext(stream) for _ in range(4)]
    assert isinstance(got[0], Started) and all(isinstance(e, TextDelta) for e in got[1:])
    await stream.aclose()
    await wait_idle(remote)


async def test_cancel_request_by_stream_id(remote, daemon):
    client = RawClient(daemon.socket)
    try:
        started = client.request(
            {
                "type": "ChatCompletion",
                "v": PROTOCOL_VERSION,
                "id": 1,
                "data": {
                    "request": {
                        "model": "gemma",
                        "messages": [{"role": "user", "content": PROMPT}],
                        "options": {"max_tokens": 400},
                    }
                },
            }
        )
        stream_id = started["data"]["stream"]
        batch = client.request(
            {
                "type": "StreamNext",
                "v": PROTOCOL_VERSION,
                "id": 2,
                "data": {"stream": stream_id, "after": 0},
            }
        )
        assert batch["type"] == "Result" and batch["data"]["offset"] == 0
        cancelled = client.request(
            {"type": "Cancel", "v": PROTOCOL_VERSION, "id": 3, "data": {"stream": stream_id}}
        )
        assert cancelled == {
            "type": "Result",
            "data": {"cancelled": True},
            "id": 3,
            "v": PROTOCOL_VERSION,
        }
        after = client.request(
            {
                "type": "StreamNext",
                "v": PROTOCOL_VERSION,
                "id": 4,
                "data": {"stream": stream_id, "after": 0},
            }
        )
        assert after["type"] == "Error" and "unknown stream" in after["data"]["message"]
        await wait_idle(remote)
    finally:
        client.close()


async def test_a_client_that_disconnects_stops_its_generation(remote, daemon):
    raw_request(
        daemon.socket,
        {
            "type": "ChatCompletion",
            "v": PROTOCOL_VERSION,
            "data": {
                "request": {
                    "model": "gemma",
                    "messages": [{"role": "user", "content": PROMPT}],
                    "options": {"max_tokens": 400},
                }
            },
        },
    )
    # raw_request closed its socket: the daemon cancels what that client started
    await wait_idle(remote)


MALFORMED = [
    (b"not json", "invalid_request", "not UTF-8 JSON"),
    (b"[]", "invalid_request", "JSON object"),
    (b'{"v": 1, "data": {}}', "invalid_request", '"type"'),
    (b'{"type": "Frobnicate", "v": 1}', "invalid_request", "unknown request type 'Frobnicate'"),
    (b'{"type": "Show", "v": 1, "data": {}}', "invalid_request", "missing required field `name`"),
    (
        b'{"type": "Show", "v": 1, "data": {"name": 5}}',
        "invalid_request",
        "Expected `str`, got `int` - at `$.name`",
    ),
    (
        b'{"type": "ChatCompletion", "v": 1, "data": {"request": "hi"}}',
        "invalid_request",
        "malformed ChatCompletion request: Expected `object`, got `str` - at `$.request`",
    ),
    (
        b'{"type": "ChatCompletion", "v": 1, "data": {"request": {"model": "gemma", "messages": [3]}}}',
        "invalid_request",
        "at `$.request.messages[0]`",
    ),
    (
        b'{"type": "StreamNext", "v": 1, "data": {"stream": "s", "after": "0"}}',
        "invalid_request",
        "malformed StreamNext request: Expected `int`, got `str` - at `$.after`",
    ),
    (
        b'{"type": "BlobChunk", "v": 1, "data": {"upload": "u", "data": "not base64!"}}',
        "invalid_request",
        "Invalid base64 encoded string - at `$.data`",
    ),
    (
        b'{"type": "StreamNext", "v": 1, "data": {"stream": "nope", "after": 0}}',
        "invalid_request",
        "unknown stream",
    ),
]


@pytest.mark.parametrize("payload, code, words", MALFORMED)
def test_malformed_messages_get_an_error_reply(daemon, payload, code, words):
    reply = raw_request(daemon.socket, payload)
    assert reply["type"] == "Error" and reply["v"] == PROTOCOL_VERSION
    assert reply["data"]["code"] == code and words in reply["data"]["message"]
    assert raw_request(daemon.socket, {"type": "Ping", "v": PROTOCOL_VERSION})["data"]["pong"]


def test_other_protocol_versions_are_told_clearly(daemon):
    reply = raw_request(daemon.socket, {"type": "ListModels", "v": PROTOCOL_VERSION + 1, "id": "x"})
    assert reply["type"] == "Error" and reply["id"] == "x"
    assert reply["data"]["code"] == "version_mismatch"
    message = reply["data"]["message"]
    assert f"v{PROTOCOL_VERSION + 1}" in message and f"v{PROTOCOL_VERSION}" in message
    assert "mullama daemon restart" in message
    # Ping is answered whatever the version, so a client can tell what it talks to
    ping = raw_request(daemon.socket, {"type": "Ping", "v": 99})
    assert ping["type"] == "Result" and ping["data"]["protocol"] == PROTOCOL_VERSION


async def test_client_detects_a_daemon_of_another_version(daemon, monkeypatch):
    import mullama.ipc.client as client

    monkeypatch.setattr(client, "PROTOCOL_VERSION", PROTOCOL_VERSION + 1)
    engine = RemoteEngine(daemon.socket)
    try:
        with pytest.raises(VersionMismatch, match="mullama daemon restart"):
            await engine.ping()
    finally:
        await engine.close()


async def test_no_daemon_raises_unavailable(tmp_path):
    engine = RemoteEngine(f"ipc://{tmp_path / 'none.sock'}")
    with pytest.raises(Unavailable, match="no Mullama daemon answers"):
        await engine.list_models()


async def test_tcp_address(tmp_path):
    from tests.helpers import free_port, run_daemon, settings_env

    env = settings_env(tmp_path)
    env["MULLAMA_SOCKET"] = f"tcp://127.0.0.1:{free_port()}"
    with run_daemon(tmp_path, env=env):
        engine = RemoteEngine(env["MULLAMA_SOCKET"])
        try:
            assert (await engine.ping()).protocol == PROTOCOL_VERSION
            assert await engine.list_models() == []
        finally:
            await engine.close()


async def test_a_daemon_killed_mid_stream_is_noticed_and_a_new_one_reached(
    tmp_path, test_model_path
):
    import signal

    from mullama.config import load_settings
    from mullama.engine.store import ModelStore
    from tests.conftest import gemma_modelfile
    from tests.helpers import run_daemon, settings_env

    env = settings_env(tmp_path)
    ModelStore(load_settings(env=env)).create("gemma", gemma_modelfile(test_model_path), None)
    engine = RemoteEngine(env["MULLAMA_SOCKET"])
    try:
        with run_daemon(tmp_path, env=env) as first:
            stream = engine.chat(chat(400))
            assert isinstance(await anext(stream), Started)
            assert isinstance(await anext(stream), TextDelta)
            first.proc.send_signal(signal.SIGKILL)
            started = time.perf_counter()
            with pytest.raises(Unavailable, match="lost the"):
                async for _ in stream:
                    pass
            assert time.perf_counter() - started < 5
        with pytest.raises(Unavailable):
            await engine.list_models()
        with run_daemon(tmp_path, env=env) as second:
            assert (await engine.ping()).pid == second.proc.pid
            assert [m.name for m in await engine.list_models()] == ["gemma:latest"]
            second.proc.send_signal(signal.SIGKILL)  # this time between two calls
            second.proc.wait(10)
            await asyncio.sleep(0.2)
            started = time.perf_counter()
            with pytest.raises(Unavailable, match="no Mullama daemon answers"):
                await engine.list_models()
            assert time.perf_counter() - started < 2
    finally:
        await engine.close()
