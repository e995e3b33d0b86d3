"""Streams under pressure: disconnects, concurrency, a full queue, and a graceful shutdown."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import time

import httpx
import openai
import pytest

from tests.http.conftest import http_daemon_at

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

LONG = {
    "model": "gemma",
    "max_tokens": 1500,
    "stream": True,
    "ignore_eos": True,
    "messages": [{"role": "user", "content": "Write a very long story"}],
}


def wait_idle(url: str, timeout: float = 30) -> dict:
    """The status once no request is active and no slot is busy."""
    deadline = time.monotonic() + timeout
    while True:
        status = httpx.get(f"{url}/api/system/status").json()
        if status["requests_active"] == 0 and all(
            m["busy_slots"] == 0 and m["queued"] == 0 for m in status["models"]
        ):
            return status
        assert time.monotonic() < deadline, f"still busy: {status}"
        time.sleep(0.1)


def test_disconnect_mid_stream_frees_the_runner(api):
    wait_idle(api.url)
    with httpx.Client(timeout=120) as client:
        with client.stream("POST", f"{api.url}/v1/chat/completions", json=LONG) as r:
            lines = r.iter_lines()
            received = [next(lines) for _ in range(6)]
            assert any('"content"' in line for line in received)
            busy = httpx.get(f"{api.url}/api/system/status").json()
            assert busy["requests_active"] == 1
    status = wait_idle(api.url, timeout=10)
    generated = status["tokens_generated"]
    time.sleep(0.5)
    assert httpx.get(f"{api.url}/api/system/status").json()["tokens_generated"] == generated


def test_disconnect_anthropic_stream_too(api):
    body = {**LONG, "messages": LONG["messages"]}
    with httpx.stream("POST", f"{api.url}/v1/messages", json=body, timeout=120) as r:
        for line in r.iter_lines():
            if "text_delta" in line:
                break
    wait_idle(api.url, timeout=10)


async def test_eight_concurrent_streams_all_finish(api, aoai):
    prompts = [f"Tell me fact number {i}" for i in range(8)]

    async def one(prompt: str) -> tuple[str, str | None, int]:
        stream = await aoai.chat.completions.create(
            model="gemma",
            messages=[{"role": "user", "content": prompt}],
            max_tokens=20,
            stream=True,
            stream_options={"include_usage": True},
        )
        text, finish, usage = "", None, 0
        async for chunk in stream:
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
                finish = chunk.choices[0].finish_reason or finish
            if chunk.usage:
                usage = chunk.usage.completion_tokens
        return text, finish, usage

    results = await asyncio.gather(*(one(p) for p in prompts))
    for text, finish, usage in results:
        assert text and finish == "length" and usage == 20
    wait_idle(api.url)


async def test_full_queue_is_503_with_retry_after(tmp_path, test_model_path):
    with http_daemon_at(
        tmp_path, test_model_path, MULLAMA_NUM_PARALLEL="1", MULLAMA_MAX_QUEUE="1"
    ) as d:
        async with httpx.AsyncClient(base_url=d.url, timeout=120) as client:

            async def stream_one():
                async with client.stream("POST", "/v1/chat/completions", json=LONG) as r:
                    async for _ in r.aiter_lines():
                        pass

            # one request generating, one waiting in the queue (its headers come once admitted)
            running = [asyncio.create_task(stream_one()) for _ in range(2)]
            try:
                deadline = time.monotonic() + 60
                while True:
                    status = (await client.get("/api/system/status")).json()
                    if any(m["queued"] == 1 for m in status["models"]):
                        break
                    assert time.monotonic() < deadline, (status, [t.done() for t in running])
                    await asyncio.sleep(0.05)
                sdk = openai.AsyncOpenAI(base_url=f"{d.url}/v1", api_key="x", max_retries=0)
                with pytest.raises(openai.APIStatusError) as err:
                    await sdk.chat.completions.create(
                        model="gemma", max_tokens=2, messages=[{"role": "user", "content": "hi"}]
                    )
                assert err.value.status_code == 503
                assert err.value.response.headers["retry-after"] == "1"
                assert err.value.body["code"] == "queue_full"
                r = await client.post(
                    "/v1/messages",
                    json={
                        "model": "gemma",
                        "max_tokens": 2,
                        "messages": [{"role": "user", "content": "hi"}],
                    },
                )
                assert r.status_code == 503 and r.json()["error"]["type"] == "overloaded_error"
            finally:
                for task in running:
                    task.cancel()
                await asyncio.gather(*running, return_exceptions=True)
        wait_idle(d.url)


def test_sigterm_ends_streams_with_an_error_event(tmp_path, test_model_path):
    with http_daemon_at(tmp_path, test_model_path) as d:
        pid_file = tmp_path / "mullamad.pid"
        info = json.loads(pid_file.read_text())
        assert info["pid"] == d.proc.pid and info["http"] == d.url and info["socket"] == d.socket
        assert info["version"] and info["started"]
        anthropic_body = {
            "model": "gemma",
            "max_tokens": 1500,
            "stream": True,
            "messages": [{"role": "user", "content": "Write a very long story"}],
        }
        with httpx.Client(timeout=60) as client:
            oai = client.send(
                client.build_request("POST", f"{d.url}/v1/chat/completions", json=LONG), stream=True
            )
            ant = client.send(
                client.build_request("POST", f"{d.url}/v1/messages", json=anthropic_body),
                stream=True,
            )
            oai_lines, ant_lines = oai.iter_lines(), ant.iter_lines()
            for lines in (oai_lines, ant_lines):
                while '"content"' not in (line := next(lines)) and "text_delta" not in line:
                    pass
            d.proc.send_signal(signal.SIGTERM)
            oai_rest, ant_rest = (
                [line for line in oai_lines if line],
                [line for line in ant_lines if line],
            )
        # the text so far, then an error in each dialect: the client knows the reply is cut off
        error = json.loads(oai_rest[-1][6:])["error"]
        assert error["code"] == "interrupted" and "cut off" in error["message"]
        assert "data: [DONE]" not in oai_rest
        assert ant_rest[-2] == "event: error"
        assert json.loads(ant_rest[-1][6:])["type"] == "error"
        assert not any("message_stop" in line for line in ant_rest)
        assert d.proc.wait(20) == 0
        assert not pid_file.exists()
        assert "shutting down" in d.log()


def test_unloading_the_model_mid_stream_is_an_error_the_sdk_raises(api):
    wait_idle(api.url)
    client = openai.OpenAI(base_url=f"{api.url}/v1", api_key="unused", max_retries=0)
    stream = client.chat.completions.create(
        model="gemma",
        max_tokens=1500,
        stream=True,
        extra_body={"ignore_eos": True},
        messages=[{"role": "user", "content": "A long story"}],
    )
    text = ""
    with pytest.raises(openai.APIError, match="cut off"):
        for chunk in stream:
            text += chunk.choices[0].delta.content or "" if chunk.choices else ""
            if len(text) > 20:
                r = httpx.post(f"{api.url}/api/models/unload", json={"name": "gemma"}, timeout=60)
                assert r.json()["status"] == "unloaded"
    assert len(text) > 20
    wait_idle(api.url)


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "whole"])
def test_a_client_gone_during_a_long_prefill_frees_the_slot(api, stream):
    """The client hangs up while its long prompt is prefilled (nothing is being sent to it), with
    a body over Sanic's 64 KiB read buffer as agents send: the runner frees the slot, and the
    request ends long before its 600 tokens."""
    wait_idle(api.url)
    before = httpx.get(f"{api.url}/api/system/status").json()["tokens_generated"]
    body = json.dumps(
        {
            "model": "gemma",
            "max_tokens": 600,
            "ignore_eos": True,
            "stream": stream,
            "user": "u" * 70_000,  # bytes of the body, no tokens of the prompt
            "messages": [{"role": "user", "content": "Summarise: " + "The cat sat. " * 300}],
        }
    ).encode()
    host, port = api.url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json"
            b"\r\nContent-Length: %d\r\n\r\n%b" % (len(body), body)
        )
        deadline = time.monotonic() + 60
        while httpx.get(f"{api.url}/api/system/status").json()["requests_active"] == 0:
            assert time.monotonic() < deadline, "the request never reached the engine"
            time.sleep(0.02)
        if stream:  # the status line came while the prompt is prefilled
            assert sock.makefile("rb").readline().startswith(b"HTTP/1.1 200")
    status = wait_idle(api.url, timeout=60)
    assert status["tokens_generated"] - before < 600
