"""Inputs longer than the model's context over HTTP: a 400 in the route's dialect naming both
lengths, for embeddings and for generation alike (never a 500)."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.slow

LONG = (
    "hello " * 3000
)  # about 3,000 tokens; the test model's context (and embedding context) is 2,048

REQUESTS = [
    ("/v1/embeddings", {"model": "gemma", "input": LONG}),
    ("/v1/embeddings", {"model": "gemma", "input": ["short", LONG]}),
    ("/api/embed", {"model": "gemma", "input": LONG, "truncate": False}),
    ("/api/embeddings", {"model": "gemma", "prompt": LONG, "truncate": False}),
    ("/v1/completions", {"model": "gemma", "prompt": LONG, "max_tokens": 4}),
    (
        "/v1/chat/completions",
        {"model": "gemma", "messages": [{"role": "user", "content": LONG}], "max_tokens": 4},
    ),
    ("/api/generate", {"model": "gemma", "prompt": LONG, "stream": False}),
    ("/api/chat", {"model": "gemma", "messages": [{"role": "user", "content": LONG}]}),
    (
        "/v1/messages",
        {"model": "gemma", "max_tokens": 4, "messages": [{"role": "user", "content": LONG}]},
    ),
]


def message(path: str, body: dict) -> str:
    if path.startswith("/api/"):
        return body["error"]
    if path.startswith("/v1/messages"):
        assert body["error"]["type"] == "invalid_request_error"
        return body["error"]["message"]
    assert body["error"]["code"] == "context_length_exceeded"
    return body["error"]["message"]


@pytest.mark.parametrize(("path", "body"), REQUESTS)
def test_an_over_long_input_is_a_400_with_both_lengths(api, path, body):
    reply = httpx.post(f"{api.url}{path}", json=body, timeout=120)
    assert reply.status_code == 400, reply.text
    text = message(path, reply.json())
    assert "2048" in text and any(str(n) in text for n in range(2900, 3200)), text
