"""Raw HTTP against the daemon: malformed bodies, limits, unknown routes and CORS, each
answered in the dialect of its route while the daemon stays healthy."""

from __future__ import annotations

import httpx
import pytest

from tests.http.conftest import CORS_ORIGIN, MAX_BODY_MB

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

ROUTES = {
    "openai": "/v1/chat/completions",
    "anthropic": "/v1/messages",
    "ollama": "/api/models/pull",
}


def assert_dialect(dialect: str, response: httpx.Response, status: int) -> str:
    """Checks the error shape of ``dialect``; returns the message."""
    assert response.status_code == status, response.text
    body = response.json()
    if dialect == "openai":
        assert set(body["error"]) == {"message", "type", "param", "code"}
        return body["error"]["message"]
    if dialect == "anthropic":
        assert body["type"] == "error" and set(body["error"]) == {"type", "message"}
        return body["error"]["message"]
    assert set(body) == {"error"} and isinstance(body["error"], str)
    return body["error"]


@pytest.fixture(autouse=True)
def stays_healthy(api):
    yield
    assert httpx.get(f"{api.url}/health").json()["status"] == "ok"


@pytest.mark.parametrize("dialect", ROUTES)
@pytest.mark.parametrize(
    "body, fragment",
    [
        (b"{not json", "not valid JSON"),
        (b"", "body is empty"),
        (b"[1, 2]", "must be a JSON object"),
        (b"\xff\xfe", "not valid JSON"),
    ],
)
def test_malformed_bodies(api, dialect, body, fragment):
    r = httpx.post(
        api.url + ROUTES[dialect], content=body, headers={"content-type": "application/json"}
    )
    assert fragment in assert_dialect(dialect, r, 400)


@pytest.mark.parametrize(
    "route, body, param",
    [
        ("/v1/chat/completions", {"model": "gemma", "messages": "hi"}, "messages"),
        ("/v1/chat/completions", {"model": 3, "messages": []}, "model"),
        (
            "/v1/chat/completions",
            {"model": "gemma", "messages": [{"role": "user", "content": 5}]},
            "messages[0].content",
        ),
        (
            "/v1/chat/completions",
            {"model": "gemma", "messages": [{"role": "user", "content": "x"}], "max_tokens": "ten"},
            "max_tokens",
        ),
        (
            "/v1/chat/completions",
            {"model": "gemma", "messages": [{"role": "user", "content": "x"}], "temperature": True},
            "temperature",
        ),
        (
            "/v1/chat/completions",
            {"model": "gemma", "messages": [{"role": "user", "content": "x"}], "stop": [1, 2]},
            "stop",
        ),
        (
            "/v1/chat/completions",
            {"model": "gemma", "messages": [{"role": "user", "content": "x"}], "stream": "yes"},
            "stream",
        ),
        ("/v1/completions", {"model": "gemma", "prompt": {"a": 1}}, "prompt"),
        ("/v1/embeddings", {"model": "gemma", "input": 42}, "input"),
        (
            "/v1/embeddings",
            {"model": "gemma", "input": "x", "encoding_format": "hex"},
            "encoding_format",
        ),
    ],
)
def test_wrong_types_name_the_field(api, route, body, param):
    r = httpx.post(api.url + route, json=body)
    assert_dialect("openai", r, 400)
    assert r.json()["error"]["param"] == param


@pytest.mark.parametrize(
    "body, fragment",
    [
        (
            {"model": "gemma", "max_tokens": "5", "messages": [{"role": "user", "content": "x"}]},
            "max_tokens",
        ),
        ({"model": "gemma", "max_tokens": 5}, "messages is required"),
        ({"max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}, "model is required"),
        (
            {
                "model": "gemma",
                "max_tokens": 5,
                "messages": [{"role": "user", "content": [{"type": "video"}]}],
            },
            "'video' is not supported",
        ),
        (
            {
                "model": "gemma",
                "max_tokens": 5,
                "system": 7,
                "messages": [{"role": "user", "content": "x"}],
            },
            "system",
        ),
    ],
)
def test_anthropic_wrong_types(api, body, fragment):
    r = httpx.post(f"{api.url}/v1/messages", json=body)
    assert fragment in assert_dialect("anthropic", r, 400)


@pytest.mark.parametrize("dialect", ROUTES)
def test_huge_body_is_413(api, dialect):
    body = b'{"pad": "' + b"x" * (MAX_BODY_MB * 2**20 + 10) + b'"}'
    r = httpx.post(
        api.url + ROUTES[dialect], content=body, headers={"content-type": "application/json"}
    )
    assert f"limit of {MAX_BODY_MB} MB" in assert_dialect(dialect, r, 413)


@pytest.mark.parametrize(
    "dialect, path",
    [
        ("openai", "/v1/nothing"),
        ("openai", "/nothing"),
        ("anthropic", "/v1/messages/nothing"),
        ("ollama", "/api/nothing"),
    ],
)
def test_unknown_routes_are_404_in_dialect(api, dialect, path):
    assert "no such route" in assert_dialect(dialect, httpx.post(api.url + path, json={}), 404)


def test_wrong_method_is_405(api):
    assert_dialect("openai", httpx.get(f"{api.url}/v1/chat/completions"), 405)
    assert_dialect("anthropic", httpx.get(f"{api.url}/v1/messages"), 405)


def test_queue_and_model_errors_keep_status(api):
    r = httpx.post(f"{api.url}/v1/embeddings", json={"model": "missing", "input": "x"})
    assert_dialect("openai", r, 404)
    r = httpx.get(f"{api.url}/api/models/missing")
    assert "not found" in assert_dialect("ollama", r, 404)


def test_cors_preflight_and_simple_requests(api):
    pre = httpx.options(
        f"{api.url}/v1/chat/completions",
        headers={
            "Origin": CORS_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert pre.status_code == 204
    assert pre.headers["access-control-allow-origin"] == CORS_ORIGIN
    assert "POST" in pre.headers["access-control-allow-methods"]
    assert pre.headers["access-control-allow-headers"] == "authorization, content-type"
    r = httpx.get(f"{api.url}/v1/models", headers={"Origin": CORS_ORIGIN})
    assert r.headers["access-control-allow-origin"] == CORS_ORIGIN
    err = httpx.get(f"{api.url}/v1/nothing", headers={"Origin": CORS_ORIGIN})
    assert err.headers["access-control-allow-origin"] == CORS_ORIGIN
    other = httpx.get(f"{api.url}/v1/models", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in other.headers


def test_cors_on_streams(api):
    body = {
        "model": "gemma",
        "max_tokens": 2,
        "stream": True,
        "messages": [{"role": "user", "content": "x"}],
    }
    with httpx.stream(
        "POST",
        f"{api.url}/v1/chat/completions",
        json=body,
        headers={"Origin": CORS_ORIGIN},
        timeout=120,
    ) as r:
        assert r.headers["access-control-allow-origin"] == CORS_ORIGIN
        assert list(r.iter_lines())[-2:] == ["data: [DONE]", ""]
