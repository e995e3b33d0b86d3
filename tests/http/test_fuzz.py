"""A bounded, seeded fuzz campaign against the real daemon (issue 20).

A few hundred generated requests over every route the app serves: bodies derived from a valid
request of each route with one field replaced by hostile values, required fields dropped, extra
fields, non-object JSON, broken bytes (truncated, invalid UTF-8, deep nesting, huge numbers),
foreign content types and hostile path parameters. Afterwards: no response was a 5xx, every
error was JSON, the daemon still answers and the model store is byte-for-byte unchanged.

State-changing routes (create, copy, delete, pull) only ever get requests that are wrong by
construction (a hostile name, a missing required field, a broken body), so a success there is a
finding too: the store check fails.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.http.conftest import http_daemon_at

pytestmark = pytest.mark.slow

SEED = 20261201
ROUNDS_PER_ROUTE = 8

HOSTILE_NAMES: list[Any] = [
    "",
    " ",
    "../../etc/passwd",
    "/etc/passwd",
    "gemma/../../../outside",
    "..",
    "a" * 400,
    "gemma\x00evil",
    "-leading-dash",
    "%2e%2e%2fetc",
    "<script>",
    "\u202egemma",
    "hf.co/../../x",
    123,
    None,
    ["gemma"],
    {"name": "gemma"},
    True,
]
HOSTILE_VALUES: list[Any] = [
    None,
    True,
    -1,
    0,
    2**31,
    2**63,
    -(2**63),
    1e308,
    -0.0,
    3.5,
    "",
    "x" * 20_000,
    "\ud800" * 3,
    "\x00\x01\x02",
    "{{ .Evil }}{{",
    [],
    [None] * 5,
    [999_999_999],
    [2**40],
    {},
    {"a": {"b": {"c": [1, "2", None]}}},
    "data:image/png;base64,AAAA",
]
# token ids, option values and sizes that have broken servers before
SEED_PROMPT = "Say hi"

# (method, path template, a valid body or None, required keys, changes state)
ROUTES: list[tuple[str, str, dict[str, Any] | None, tuple[str, ...], bool]] = [
    ("GET", "/", None, (), False),
    ("HEAD", "/", None, (), False),
    ("GET", "/health", None, (), False),
    ("GET", "/metrics", None, (), False),
    ("GET", "/api/version", None, (), False),
    ("GET", "/api/tags", None, (), False),
    ("GET", "/api/ps", None, (), False),
    ("GET", "/api/system/status", None, (), False),
    ("GET", "/api/models", None, (), False),
    ("GET", "/api/models/{name}", None, (), False),
    ("GET", "/v1/models", None, (), False),
    ("GET", "/models", None, (), False),
    ("GET", "/v1/models/{name}", None, (), False),
    ("GET", "/models/{name}", None, (), False),
    (
        "POST",
        "/v1/chat/completions",
        {"model": "gemma", "messages": [{"role": "user", "content": SEED_PROMPT}], "max_tokens": 4},
        ("model", "messages"),
        False,
    ),
    (
        "POST",
        "/chat/completions",
        {"model": "gemma", "messages": [{"role": "user", "content": SEED_PROMPT}], "stream": True},
        ("messages",),
        False,
    ),
    ("POST", "/v1/completions", {"model": "gemma", "prompt": SEED_PROMPT}, ("prompt",), False),
    ("POST", "/completions", {"model": "gemma", "prompt": [2, 3, 4]}, ("prompt",), False),
    ("POST", "/v1/embeddings", {"model": "gemma", "input": "hello"}, ("input",), False),
    ("POST", "/embeddings", {"model": "gemma", "input": ["a", "b"]}, ("input",), False),
    ("POST", "/v1/rerank", {"model": "gemma", "query": "q", "documents": ["a"]}, ("query",), False),
    ("POST", "/rerank", {"model": "gemma", "query": "q", "texts": ["a", "b"]}, ("query",), False),
    ("POST", "/v1/reranking", {"query": "q", "documents": [{"text": "a"}]}, ("documents",), False),
    ("POST", "/v2/rerank", {"model": "gemma", "query": "q", "documents": ["a"]}, ("model",), False),
    ("POST", "/tokenize", {"model": "gemma", "content": SEED_PROMPT}, ("content",), False),
    ("POST", "/detokenize", {"model": "gemma", "tokens": [2, 3]}, ("tokens",), False),
    (
        "POST",
        "/v1/responses",
        {"model": "gemma", "input": SEED_PROMPT, "max_output_tokens": 4},
        ("input",),
        False,
    ),
    (
        "POST",
        "/responses",
        {"model": "gemma", "input": [{"role": "user", "content": "hi"}]},
        (),
        False,
    ),
    ("GET", "/v1/responses/{name}", None, (), False),
    ("GET", "/responses/{name}/input_items", None, (), False),
    ("DELETE", "/v1/responses/{name}", None, (), False),
    ("GET", "/v1/responses/{name}/input_items", None, (), False),
    ("GET", "/responses/{name}", None, (), False),
    ("DELETE", "/responses/{name}", None, (), False),
    (
        "POST",
        "/v1/messages",
        {"model": "gemma", "max_tokens": 4, "messages": [{"role": "user", "content": SEED_PROMPT}]},
        ("model", "max_tokens", "messages"),
        False,
    ),
    (
        "POST",
        "/v1/messages/count_tokens",
        {"model": "gemma", "messages": [{"role": "user", "content": SEED_PROMPT}]},
        ("messages",),
        False,
    ),
    (
        "POST",
        "/api/chat",
        {"model": "gemma", "messages": [{"role": "user", "content": SEED_PROMPT}], "stream": False},
        ("model",),
        False,
    ),
    (
        "POST",
        "/api/generate",
        {"model": "gemma", "prompt": SEED_PROMPT, "context": [2, 3]},
        ("model",),
        False,
    ),
    ("POST", "/api/embed", {"model": "gemma", "input": ["hello"]}, ("model",), False),
    ("POST", "/api/embeddings", {"model": "gemma", "prompt": "hello"}, ("model",), False),
    ("POST", "/api/show", {"model": "gemma"}, ("model",), False),
    ("POST", "/api/models/load", {"model": "gemma"}, ("model",), False),
    ("POST", "/api/models/unload", {"model": "gemma-line"}, ("model",), False),
    # state-changing: hostile names only (see the module docstring)
    ("POST", "/api/create", {"model": "!", "from": "gemma", "system": "pwned"}, ("model",), True),
    ("POST", "/api/copy", {"source": "gemma", "destination": "!"}, ("source", "destination"), True),
    ("DELETE", "/api/delete", {"model": "!"}, ("model",), True),
    ("POST", "/api/pull", {"model": "!", "stream": False}, ("model",), True),
    ("POST", "/api/models/pull", {"name": "!"}, ("name",), True),
    ("DELETE", "/api/models/{name}", None, (), True),
    ("HEAD", "/api/blobs/{digest}", None, (), False),
    ("POST", "/api/blobs/{digest}", None, (), True),
    ("GET", "/ui", None, (), False),
    ("POST", "/ui/login", None, (), False),
    ("GET", "/ui/static/{name}", None, (), False),
    ("HEAD", "/ui/static/{name}", None, (), False),
    ("GET", "/ui/ws", None, (), False),
    # last, so that the probes drawn for the routes above stay the ones they were
    ("HEAD", "/health", None, (), False),
    ("GET", "/health/ready", None, (), False),
    ("HEAD", "/health/ready", None, (), False),
]
# keys whose value names a model in a state-changing body: always hostile there
NAME_KEYS = ("model", "name", "destination")


@dataclass
class Probe:
    method: str
    path: str
    content: bytes | None
    headers: dict[str, str]
    why: str


def _dump(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass")


def _hostile_body(
    rng: random.Random, body: dict[str, Any], required: tuple[str, ...], changes_state: bool
) -> tuple[Any, str]:
    choice = rng.randrange(5)
    out = dict(body)
    if choice == 0 and required:
        key = rng.choice(required)
        del out[key]
        return out, f"without {key}"
    if choice == 1:
        return rng.choice(HOSTILE_VALUES), "not an object"
    if choice == 2:
        out[
            rng.choice(["stream", "options", "tools", "n", "logit_bias", "format", "keep_alive"])
        ] = rng.choice(HOSTILE_VALUES)
        if changes_state:
            out = _poison_names(rng, out)
        return out, "hostile extra field"
    key = rng.choice(sorted(body))
    out[key] = rng.choice(HOSTILE_NAMES if key in NAME_KEYS else HOSTILE_VALUES)
    if changes_state:
        out = _poison_names(rng, out)
    return out, f"hostile {key}"


def _poison_names(rng: random.Random, body: dict[str, Any]) -> dict[str, Any]:
    for key in NAME_KEYS:
        if key in body:
            body[key] = rng.choice(HOSTILE_NAMES)
    return body


def _broken_bytes(rng: random.Random, body: dict[str, Any] | None) -> tuple[bytes, str]:
    seed = _dump(body or {"model": "gemma"})
    choice = rng.randrange(6)
    if choice == 0:
        return seed[: rng.randrange(1, max(2, len(seed)))], "truncated JSON"
    if choice == 1:
        return b'{"model": "\xff\xfe\xfa"}', "invalid UTF-8"
    if choice == 2:
        depth = rng.choice([200, 2_000, 20_000])
        return b"[" * depth + b"]" * depth, f"nested {depth} deep"
    if choice == 3:
        return b'{"model": "gemma", "max_tokens": 1' + b"0" * 400 + b"}", "huge number"
    if choice == 4:
        return b"", "empty body"
    return b'{"model": NaN, "prompt": Infinity}', "NaN literals"


PATH_PARAMS = [
    "gemma", "nosuch", "..%2f..%2fetc%2fpasswd", "a" * 300, "%00", "sha256:" + "0" * 64,
    "sha256-zz", "resp_" + "x" * 40, "..", "%2e%2e",
]  # fmt: skip


def _path(rng: random.Random, template: str, changes_state: bool) -> str:
    # a state-changing route never gets a real model's name (DELETE /api/models/gemma works)
    choices = [p for p in PATH_PARAMS if p != "gemma"] if changes_state else PATH_PARAMS
    hostile = rng.choice(choices)
    return template.replace("{name}", hostile).replace("{digest}", hostile)


def probes(rng: random.Random) -> Iterator[Probe]:
    json_type = {"content-type": "application/json"}
    for method, template, body, required, changes_state in ROUTES:
        for _ in range(ROUNDS_PER_ROUTE):
            path = _path(rng, template, changes_state)
            if method == "GET" and rng.random() < 0.25:
                yield Probe("HEAD", path, None, {}, "HEAD of a GET route")
                continue
            if body is None:
                extra = rng.choice([b"", b"garbage", _dump(rng.choice(HOSTILE_VALUES))])
                yield Probe(method, path, extra or None, json_type, "no body expected")
                continue
            kind = rng.randrange(10)
            if kind < 6:
                value, why = _hostile_body(rng, body, required, changes_state)
                yield Probe(method, path, _dump(value), json_type, why)
            elif kind < 9:
                raw, why = _broken_bytes(
                    rng, _poison_names(rng, dict(body)) if changes_state else body
                )
                yield Probe(method, path, raw, json_type, why)
            else:
                bad = _poison_names(rng, dict(body)) if changes_state else body
                ctype = rng.choice(["text/plain", "application/x-www-form-urlencoded", "image/png"])
                yield Probe(method, path, _dump(bad), {"content-type": ctype}, f"as {ctype}")


def store_snapshot(root: Path) -> dict[str, str]:
    """Every file of the model store (manifests and blobs) with its SHA-256 of the first MiB."""
    out = {}
    store = root / "cache"
    for path in sorted(store.rglob("*")):
        if path.is_file():
            with path.open("rb") as f:
                out[str(path.relative_to(store))] = hashlib.sha256(f.read(2**20)).hexdigest()
    return out


def _is_json(response: httpx.Response) -> bool:
    try:
        json.loads(response.content)
    except ValueError:
        return False
    return "json" in response.headers.get("content-type", "")


@pytest.fixture(scope="module")
def fuzz_daemon(tmp_path_factory, test_model_path):
    root = tmp_path_factory.mktemp("fuzz")
    with http_daemon_at(
        root,
        test_model_path,
        MULLAMA_MAX_TOKENS_CAP="4",  # bounds every generation a mutated body asks for
        MULLAMA_MAX_BODY_MB="2",
        HF_ENDPOINT="http://127.0.0.1:9",  # a pull never leaves the machine
    ) as daemon:
        yield daemon, root


def test_the_route_table_covers_every_route_the_app_serves():
    from mullama.config import load_settings
    from mullama.http.app import create_app

    app = create_app(None, load_settings(env={}), name="fuzz-routes")  # type: ignore[arg-type]
    served = set()
    for route in app.router.routes:
        path = "/" + route.path.split("<", 1)[0]
        for method in route.methods:
            served.add((method, path.rstrip("/") or "/"))
    fuzzed = {(m, t.split("{", 1)[0].rstrip("/") or "/") for m, t, *_ in ROUTES}
    fuzzed |= {("HEAD", path) for method, path in fuzzed if method == "GET"}  # see probes()
    missing = sorted(pair for pair in served - fuzzed if pair[0] != "OPTIONS")
    assert not missing, f"routes the fuzz campaign does not reach: {missing}"


def test_fuzz_campaign(fuzz_daemon):
    daemon, root = fuzz_daemon
    before = store_snapshot(root)
    assert before, "the store holds the test models"
    failures: list[str] = []
    sent = 0
    check: Callable[[], None]
    with httpx.Client(base_url=daemon.url, timeout=60) as client:

        def check() -> None:
            assert daemon.proc.poll() is None, f"daemon died:\n{daemon.log()[-4000:]}"
            assert client.get("/health").status_code == 200

        for probe in probes(random.Random(SEED)):
            sent += 1
            try:
                response = client.request(
                    probe.method, probe.path, content=probe.content, headers=probe.headers
                )
            except httpx.TimeoutException:
                failures.append(f"{probe.method} {probe.path[:80]} ({probe.why}): no answer")
                continue
            label = f"{probe.method} {probe.path[:80]} ({probe.why}) -> {response.status_code}"
            if response.status_code >= 500:
                failures.append(f"{label}: {response.text[:300]}")
            elif response.status_code >= 400 and probe.method != "HEAD" and not _is_json(response):
                failures.append(f"{label}: not JSON: {response.text[:200]!r}")
            if sent % 50 == 0:
                check()
        check()
    assert sent >= 250
    assert not failures, f"{len(failures)} of {sent} probes failed:\n" + "\n".join(failures)
    assert store_snapshot(root) == before, "the fuzz campaign changed the model store"
