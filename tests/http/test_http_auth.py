"""The optional API key: 401 in the dialect of the route, /health exempt, both header styles."""

from __future__ import annotations

import anthropic
import httpx
import openai
import pytest

from tests.http.conftest import http_daemon_at

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

KEY = "sk-test-key"
HELLO = [{"role": "user", "content": "Hello"}]


@pytest.fixture(scope="module")
def keyed(tmp_path_factory, test_model_path):
    with http_daemon_at(
        tmp_path_factory.mktemp("keyed"), test_model_path, MULLAMA_API_KEY=KEY
    ) as d:
        yield d


def test_health_needs_no_key(keyed):
    assert httpx.get(f"{keyed.url}/health").status_code == 200


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"x-api-key": "wrong"}, {"Authorization": KEY}],
)
def test_missing_or_wrong_key_is_401_per_dialect(keyed, headers):
    r = httpx.post(f"{keyed.url}/v1/chat/completions", json={}, headers=headers)
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    r = httpx.post(f"{keyed.url}/v1/messages", json={}, headers=headers)
    assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
    r = httpx.get(f"{keyed.url}/api/models", headers=headers)
    assert r.status_code == 401 and set(r.json()) == {"error"}
    assert httpx.get(f"{keyed.url}/metrics", headers=headers).status_code == 401


def test_both_header_styles_work(keyed):
    assert (
        httpx.get(f"{keyed.url}/api/models", headers={"Authorization": f"Bearer {KEY}"}).status_code
        == 200
    )
    assert httpx.get(f"{keyed.url}/api/models", headers={"x-api-key": KEY}).status_code == 200


def test_sdks_with_the_key(keyed):
    oai = openai.OpenAI(base_url=f"{keyed.url}/v1", api_key=KEY, max_retries=0)
    assert (
        oai.chat.completions.create(
            model="gemma", messages=HELLO, max_tokens=2
        ).usage.completion_tokens
        == 2
    )
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{keyed.url}/v1", api_key="nope", max_retries=0).models.list()
    claude = anthropic.Anthropic(base_url=keyed.url, api_key=KEY, max_retries=0)
    assert (
        claude.messages.create(model="gemma", max_tokens=2, messages=HELLO).usage.output_tokens == 2
    )
    with pytest.raises(anthropic.AuthenticationError):
        anthropic.Anthropic(base_url=keyed.url, api_key="nope", max_retries=0).messages.create(
            model="gemma", max_tokens=2, messages=HELLO
        )
