"""`mullama cluster config`: the LiteLLM config it writes, and its errors, against small real
HTTP servers on loopback that answer as a daemon would (the real daemons and the real proxy:
tests/http/test_cluster_litellm.py)."""

from __future__ import annotations

import contextlib
import io
import json
import os
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

from mullama.cli.cluster import backend_url, to_yaml
from tests.helpers import free_port


def card(name: str, **capabilities: bool) -> dict:
    return {"id": name, "object": "model", "capabilities": capabilities}


@contextlib.contextmanager
def backend(models: list[dict] | None = None, *, key: str = "", status: int = 200, body=None):
    """A loopback HTTP server answering GET /v1/models; yields its URL and the requests'
    Authorization headers."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.headers.get("Authorization", ""))
            if key and self.headers.get("Authorization") != f"Bearer {key}":
                code, payload = 401, {"error": {"message": "invalid or missing API key"}}
            elif self.path != "/v1/models":
                code, payload = 404, {"error": "no such route"}
            else:
                code = status
                payload = body if body is not None else {"object": "list", "data": models}
            data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str


def config(*args: str, env: dict | None = None) -> Run:
    """`mullama cluster config ARGS`, run in this process (as the command line runs it)."""
    from unittest import mock

    from mullama.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    with (
        mock.patch.dict(os.environ, env or {}),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        code = main(["cluster", "config", *args])
    return Run(code, out.getvalue(), err.getvalue())


def test_one_deployment_per_model_and_backend_with_litellm_router_settings():
    with (
        backend([card("gemma:latest"), card("nomic:latest", embedding=True)]) as (one, _),
        backend([card("gemma:latest"), card("nomic:latest", embedding=True)]) as (two, _),
    ):
        made = config("--backend", one, "--backend", f"{two}/v1/")
    assert made.returncode == 0, made.stderr
    assert made.stderr == ""  # every model is on every backend
    assert made.stdout.startswith("# LiteLLM proxy config for ")
    doc = yaml.safe_load(made.stdout)
    assert doc["model_list"] == [
        {
            "model_name": name,
            "litellm_params": {
                "model": f"openai/{name}",
                "api_base": f"{url}/v1",
                "api_key": "none",
            },
            "model_info": info,
        }
        for name, info in [
            ("gemma:latest", {"mode": "chat", "health_check_max_tokens": 1}),
            ("nomic:latest", {"mode": "embedding"}),
        ]
        for url in (one, two)
    ]
    assert doc["router_settings"] == {
        "routing_strategy": "least-busy",
        "num_retries": 3,
        "allowed_fails": 1,
        "cooldown_time": 60,
        "enable_health_check_routing": True,
        "optional_pre_call_checks": ["session_affinity", "responses_api_deployment_check"],
        "model_group_alias": {"gemma": "gemma:latest", "nomic": "nomic:latest"},
    }
    assert doc["general_settings"] == {
        "master_key": "os.environ/LITELLM_MASTER_KEY",
        "background_health_checks": True,
        "health_check_interval": 30,
    }


def test_a_model_missing_somewhere_is_routed_where_it_is_or_left_out():
    with (
        backend([card("gemma:latest"), card("solo:latest")]) as (one, _),
        backend([card("gemma:latest")]) as (two, _),
    ):
        made = config("-b", one, "-b", two)
        common = config("-b", one, "-b", two, "--common")
    assert made.returncode == 0
    assert f"Warning: solo:latest is not on every backend: routed only to {one}" in made.stderr
    solo = [
        d for d in yaml.safe_load(made.stdout)["model_list"] if d["model_name"] == "solo:latest"
    ]
    assert [d["litellm_params"]["api_base"] for d in solo] == [f"{one}/v1"]
    assert common.returncode == 0
    assert "solo:latest is not on every backend: left out (--common)" in common.stderr
    names = {d["model_name"] for d in yaml.safe_load(common.stdout)["model_list"]}
    assert names == {"gemma:latest"}


def test_the_api_key_queries_the_backends_and_goes_into_the_config():
    with backend([card("gemma:latest")], key="sekret") as (url, seen):
        refused = config("-b", url)
        given = config("-b", url, "--api-key", "sekret")
        from_env = config("-b", url, "--api-key-env", "NODE_KEY", env={"NODE_KEY": "sekret"})
    assert refused.returncode == 1
    assert f"backend {url} refused the API key (401)" in refused.stderr
    assert "--api-key" in refused.stderr
    params = yaml.safe_load(given.stdout)["model_list"][0]["litellm_params"]
    assert params["api_key"] == "sekret"
    params = yaml.safe_load(from_env.stdout)["model_list"][0]["litellm_params"]
    assert params["api_key"] == "os.environ/NODE_KEY"  # LiteLLM reads it from its environment
    assert seen[1:] == ["Bearer sekret", "Bearer sekret"]


@pytest.mark.parametrize(
    "answer, words",
    [
        ({"status": 500}, "HTTP 500"),
        ({"body": b"<html>hello</html>"}, "gave no model list at /v1/models"),
        ({"body": {"models": []}}, "gave no model list at /v1/models"),
    ],
    ids=["server-error", "not-json", "not-openai"],
)
def test_a_backend_that_is_no_daemon_is_named(answer, words):
    with backend([card("gemma:latest")], **answer) as (url, _):
        made = config("-b", url)
    assert made.returncode == 1
    assert f"Error: backend {url} " in made.stderr and words in made.stderr
    assert made.stdout == ""


def test_a_backend_that_does_not_answer_is_named():
    with backend([card("gemma:latest")]) as (url, _):
        dead = f"http://127.0.0.1:{free_port()}"
        made = config("-b", url, "-b", dead)
    assert made.returncode == 1
    assert f"Error: backend {dead} does not answer" in made.stderr
    assert made.stdout == ""


@pytest.mark.parametrize(
    "args, words",
    [
        (["-b", "ftp://node1"], "'ftp://node1' is not a daemon's HTTP address"),
        (["-b", "http://"], "is not a daemon's HTTP address"),
        (
            ["-b", "node1:8080", "-b", "http://node1:8080/"],
            "backend http://node1:8080 is given twice",
        ),
        (["-b", "http://node1:8080", "--api-key-env", "UNSET_VAR_X"], "$UNSET_VAR_X is not set"),
    ],
)
def test_bad_arguments_are_told(args, words):
    made = config(*args, env={"UNSET_VAR_X": ""})
    assert made.returncode == 2
    assert words in made.stderr


def test_no_models_at_all_is_an_error():
    with backend([]) as (url, _):
        made = config("-b", url)
    assert made.returncode == 1 and "the backends serve no models" in made.stderr


@pytest.mark.parametrize(
    "raw, url",
    [
        ("node1:8080", "http://node1:8080"),
        ("http://node1:8080/", "http://node1:8080"),
        ("https://node1/v1", "https://node1"),
        ("http://[::1]:8080/v1/", "http://[::1]:8080"),
        ("http://node1:8080/mullama/v1", "http://node1:8080/mullama"),
    ],
)
def test_backend_urls_are_normalised(raw, url):
    assert backend_url(raw) == url


NAMES = [
    "gemma:latest",
    "hf.co/owner/repo:Q4_K_M",
    "a: b",
    "- dash",
    "#hash",
    "yes",
    "null",
    "1e3",
    'quote"s',
    "tab\there",
    "üñí",
    "[x]",
    "{y}",
    "&anchor",
    "*alias",
    "!tag",
    "%percent",
    "@at",
    "`tick`",
    "",
]


def test_any_name_reads_back_as_itself():
    doc = {
        "model_list": [
            {"model_name": n, "litellm_params": {"model": f"openai/{n}"}} for n in NAMES
        ],
        "router_settings": {"model_group_alias": {n: n + ":latest" for n in NAMES}, "n": 3},
        "flags": [True, False, None, 1.5, [], {}],
    }
    assert yaml.safe_load(to_yaml(doc)) == doc
