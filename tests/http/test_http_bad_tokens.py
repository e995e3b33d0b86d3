"""Token ids outside the vocabulary over HTTP: a 400 in the route's dialect, while another
client's stream on the same model goes on to its end."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

pytestmark = pytest.mark.slow

N_VOCAB = 262144  # the test model's

BAD_REQUESTS = [
    ("/v1/completions", {"model": "gemma", "prompt": [999_999_999], "max_tokens": 4}, 999_999_999),
    ("/v1/completions", {"model": "gemma", "prompt": [2, 2**32 + 5], "max_tokens": 4}, 2**32 + 5),
    (
        "/api/generate",
        {"model": "gemma", "prompt": "hi", "context": [2147483647], "stream": False},
        2147483647,
    ),
    ("/api/generate", {"model": "gemma", "prompt": "", "context": [2, -3]}, -3),
    ("/v1/embeddings", {"model": "gemma", "input": [[2, 2**31]]}, 2**31),
]


def message(path: str, body: dict) -> str:
    if path.startswith("/api/"):
        return body["error"]
    assert body["error"]["type"] == "invalid_request_error"
    return body["error"]["message"]


async def stream_to_the_end(client: httpx.AsyncClient, started: asyncio.Event) -> dict:
    body = {
        "model": "gemma",
        "prompt": "1, 2, 3,",
        "max_tokens": 40,
        "ignore_eos": True,
        "stream": True,
    }
    last = {}
    async with client.stream("POST", "/v1/completions", json=body) as reply:
        assert reply.status_code == 200
        async for line in reply.aiter_lines():
            if line.startswith("data: {"):
                last = json.loads(line[6:])
                started.set()
    return last


@pytest.mark.parametrize(("path", "body", "bad"), BAD_REQUESTS)
async def test_a_bad_token_id_is_a_400_and_a_concurrent_stream_completes(api, path, body, bad):
    async with httpx.AsyncClient(base_url=api.url, timeout=120) as client:
        started = asyncio.Event()
        stream = asyncio.ensure_future(stream_to_the_end(client, started))
        await started.wait()
        reply = await client.post(path, json=body)
        last = await stream
    assert reply.status_code == 400, reply.text
    text = message(path, reply.json())
    assert str(bad) in text and str(N_VOCAB) in text
    assert last["choices"][0]["finish_reason"] == "length"
