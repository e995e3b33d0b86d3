"""The Playground's requests: one per API endpoint, as a method, a path, a JSON body and cURL."""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Endpoint:
    api: str  # openai | anthropic | ollama
    name: str
    method: str
    path: str
    body: Callable[[str, bool], dict] | None  # (model, stream) -> body; None: no body


def _messages(prompt: str = "Why is the sky blue? Answer in one sentence.") -> list[dict]:
    return [{"role": "user", "content": prompt}]


ENDPOINTS = [
    Endpoint(
        "openai",
        "Chat completions",
        "POST",
        "/v1/chat/completions",
        lambda m, s: {"model": m, "messages": _messages(), "stream": s, "max_tokens": 128},
    ),
    Endpoint(
        "openai",
        "Completions",
        "POST",
        "/v1/completions",
        lambda m, s: {"model": m, "prompt": "Once upon a time", "stream": s, "max_tokens": 64},
    ),
    Endpoint(
        "openai",
        "Embeddings",
        "POST",
        "/v1/embeddings",
        lambda m, s: {"model": m, "input": "The quick brown fox"},
    ),
    Endpoint("openai", "Models", "GET", "/v1/models", None),
    Endpoint(
        "anthropic",
        "Messages",
        "POST",
        "/v1/messages",
        lambda m, s: {"model": m, "max_tokens": 128, "messages": _messages(), "stream": s},
    ),
    Endpoint(
        "anthropic",
        "Count tokens",
        "POST",
        "/v1/messages/count_tokens",
        lambda m, s: {"model": m, "messages": _messages()},
    ),
    Endpoint(
        "ollama",
        "Chat",
        "POST",
        "/api/chat",
        lambda m, s: {"model": m, "messages": _messages(), "stream": s},
    ),
    Endpoint(
        "ollama",
        "Generate",
        "POST",
        "/api/generate",
        lambda m, s: {"model": m, "prompt": "Once upon a time", "stream": s},
    ),
    Endpoint("ollama", "Embed", "POST", "/api/embed", lambda m, s: {"model": m, "input": "Hello"}),
    Endpoint("ollama", "Show", "POST", "/api/show", lambda m, s: {"model": m}),
    Endpoint("ollama", "Tags", "GET", "/api/tags", None),
    Endpoint("ollama", "Running (ps)", "GET", "/api/ps", None),
]

APIS = [("OpenAI", "openai"), ("Anthropic", "anthropic"), ("Ollama", "ollama")]


def endpoints(api: str) -> list[Endpoint]:
    return [e for e in ENDPOINTS if e.api == api]


def find(api: str, path: str) -> Endpoint:
    """The endpoint of ``api`` at ``path``; its first one while the endpoint picker still
    shows another API's path (the two pickers change one after the other)."""
    choices = endpoints(api)
    return next((e for e in choices if e.path == path), choices[0])


def body_text(endpoint: Endpoint, model: str, stream: bool) -> str:
    return "" if endpoint.body is None else json.dumps(endpoint.body(model, stream), indent=2)


def headers(api: str, api_key: str) -> dict[str, str]:
    out = {"Content-Type": "application/json"}
    if api == "anthropic":
        out["anthropic-version"] = "2023-06-01"
        if api_key:
            out["x-api-key"] = api_key
    elif api_key:
        out["Authorization"] = f"Bearer {api_key}"
    return out


def curl(endpoint: Endpoint, base_url: str, body: str, api_key: str) -> str:
    """The equivalent cURL command (the key shown as $MULLAMA_API_KEY, never in clear)."""
    parts = ["curl", "-N" if '"stream": true' in body else "-s"]
    if endpoint.method != "GET":
        parts += ["-X", endpoint.method]
    parts.append(shlex.quote(base_url.rstrip("/") + endpoint.path))
    for name, value in headers(endpoint.api, "$MULLAMA_API_KEY" if api_key else "").items():
        quoted = f'"{name}: {value}"' if "$" in value else shlex.quote(f"{name}: {value}")
        parts.append(f"\\\n  -H {quoted}")
    if endpoint.body is not None and body.strip():
        compact = json.dumps(json.loads(body)) if _is_json(body) else body
        parts.append(f"\\\n  -d {shlex.quote(compact)}")
    return " ".join(parts)


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True
