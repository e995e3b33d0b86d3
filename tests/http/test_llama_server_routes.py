"""llama-server's routes beside the OpenAI API — /tokenize, /detokenize, and the OpenAI routes
without /v1 — against the real daemon."""

from __future__ import annotations

import httpx
import openai
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def post(api, path: str, body: dict) -> httpx.Response:
    return httpx.post(f"{api.url}{path}", json=body, timeout=120)


def test_tokenize_and_detokenize_round_trip(api):
    plain = post(api, "/tokenize", {"model": "gemma", "content": "Hello world"}).json()
    ids = plain["tokens"]
    assert ids and all(isinstance(t, int) for t in ids)
    special = post(
        api, "/tokenize", {"model": "gemma", "content": "Hello world", "add_special": True}
    )
    assert special.json()["tokens"] == [2, *ids]  # Gemma's BOS first
    text = post(api, "/detokenize", {"model": "gemma", "tokens": ids}).json()
    assert text == {"content": "Hello world"}


def test_tokenize_with_pieces_and_control_tokens(api):
    body = {"model": "gemma", "content": "<start_of_turn>hé", "with_pieces": True}
    pieces = post(api, "/tokenize", body).json()["tokens"]
    assert pieces[0]["piece"] == "<start_of_turn>"  # parse_special: one control token
    joined = b"".join(
        p["piece"].encode() if isinstance(p["piece"], str) else bytes(p["piece"]) for p in pieces
    )
    assert joined.decode() == "<start_of_turn>hé"
    literal = post(api, "/tokenize", {**body, "parse_special": False}).json()["tokens"]
    assert len(literal) > len(pieces)  # the same text, spelled out


def test_bad_token_ids_and_bodies_are_400s_naming_the_field(api):
    r = post(api, "/detokenize", {"model": "gemma", "tokens": [1, 10**9]})
    assert r.status_code == 400 and r.json()["error"]["param"] == "tokens[1]"
    r = post(api, "/detokenize", {"model": "gemma", "tokens": [-1]})
    assert r.status_code == 400 and r.json()["error"]["param"] == "tokens[0]"
    r = post(api, "/tokenize", {"model": "gemma"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "content"
    assert post(api, "/tokenize", {"model": "gemma", "content": "ok"}).status_code == 200


def test_openai_routes_answer_without_the_v1_prefix(api):
    with openai.OpenAI(base_url=api.url, api_key="unused", max_retries=0) as client:
        reply = client.chat.completions.create(
            model="gemma", messages=[{"role": "user", "content": "Hi"}], max_tokens=3
        )
        assert reply.choices[0].message.content
        assert client.completions.create(model="gemma", prompt="1,", max_tokens=2).choices
        assert len(client.embeddings.create(model="gemma", input="x").data[0].embedding) > 0
        assert "gemma:latest" in [m.id for m in client.models.list()]
    bad = post(api, "/chat/completions", {"model": "gemma", "messages": "hi"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "messages"
