"""The management API, /health and /metrics."""

from __future__ import annotations

import json
import re

import httpx
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

CHAT = {"model": "gemma", "max_tokens": 3, "messages": [{"role": "user", "content": "Hi"}]}


def test_health(api):
    r = httpx.get(f"{api.url}/health")
    assert r.status_code == 200 and r.json()["status"] == "ok" and r.json()["version"]


def test_models_list_and_details(api):
    models = httpx.get(f"{api.url}/api/models").json()["models"]
    names = {m["name"] for m in models}
    assert {"gemma:latest", "gemma-line:latest"} <= names
    gemma = next(m for m in models if m["name"] == "gemma:latest")
    assert gemma["kind"] == "created" and gemma["size"] > 0 and "json" in gemma["capabilities"]
    details = httpx.get(f"{api.url}/api/models/gemma").json()
    assert details["info"]["name"] == "gemma:latest"
    assert "PARAMETER temperature 0" in details["modelfile"]
    assert details["parameters"]["num_ctx"] == 2048


def test_system_status(api):
    httpx.post(f"{api.url}/v1/chat/completions", json=CHAT, timeout=120).raise_for_status()
    status = httpx.get(f"{api.url}/api/system/status").json()
    assert status["version"] and status["uptime_secs"] >= 0
    assert status["http_endpoint"] == api.url
    assert status["models_loaded"] >= 1 and status["requests_total"] >= 1
    assert status["tokens_generated"] >= 3 and status["requests_active"] == 0
    assert status["endpoints"]["socket"] == api.socket
    loaded = {m["name"]: m for m in status["models"]}
    assert loaded["gemma:latest"]["context_length"] == 2048
    assert loaded["gemma:latest"]["size"] > 0 and loaded["gemma:latest"]["parameters"] > 0


def test_metrics_names(api):
    httpx.post(f"{api.url}/v1/chat/completions", json=CHAT, timeout=120).raise_for_status()
    r = httpx.get(f"{api.url}/metrics")
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    for name in (
        "mullama_info",
        "mullama_uptime_seconds",
        "mullama_models_loaded",
        "mullama_requests_total",
        "mullama_requests_active",
        "mullama_tokens_generated_total",
        "mullama_prompt_tokens_total",
        "mullama_time_to_first_token_seconds_bucket",
        "mullama_time_per_output_token_seconds_bucket",
    ):
        assert re.search(rf"^{name}[{{ ]", text, re.M), name
    for name in (
        "mullama_model_parameters",
        "mullama_model_context_size",
        "mullama_model_gpu_layers",
        "mullama_model_queue_depth",
    ):
        assert re.search(rf'^{name}{{model="gemma:latest"}} ', text, re.M), name
    assert re.search(r'^mullama_model_context_size{model="gemma:latest"} 2048', text, re.M)


def test_unload_and_load(api):
    httpx.post(f"{api.url}/v1/chat/completions", json=CHAT, timeout=120).raise_for_status()
    r = httpx.post(f"{api.url}/api/models/unload", json={"name": "gemma"})
    assert r.json() == {"status": "unloaded", "name": "gemma"}
    names = [m["name"] for m in httpx.get(f"{api.url}/api/system/status").json()["models"]]
    assert "gemma:latest" not in names
    loaded = httpx.post(f"{api.url}/api/models/load", json={"name": "gemma"}, timeout=120).json()
    assert loaded["name"] == "gemma:latest" and loaded["context_length"] == 2048
    r = httpx.post(f"{api.url}/api/models/load", json={"name": "no-such-model"})
    assert r.status_code == 404 and "no-such-model" in r.json()["error"]
    assert httpx.post(f"{api.url}/api/models/load", json={}).json() == {
        "error": "model is required"
    }


def test_delete(api, test_model_path):
    from mullama.config import load_settings
    from mullama.engine.store import ModelStore
    from tests.conftest import gemma_modelfile

    ModelStore(load_settings(env=api.env)).create("scratch", gemma_modelfile(test_model_path), None)
    assert "scratch:latest" in {
        m["name"] for m in httpx.get(f"{api.url}/api/models").json()["models"]
    }
    r = httpx.delete(f"{api.url}/api/models/scratch")
    assert r.status_code == 200 and r.json()["status"] == "deleted"
    assert "scratch:latest" not in {
        m["name"] for m in httpx.get(f"{api.url}/api/models").json()["models"]
    }
    assert httpx.delete(f"{api.url}/api/models/scratch").status_code == 404


def test_pull_streams_progress(api):
    """``gemma3:270m`` resolves offline from its installed PyPI package."""
    with httpx.stream(
        "POST", f"{api.url}/api/models/pull", json={"name": "gemma3:270m"}, timeout=300
    ) as r:
        assert r.headers["content-type"].startswith("application/x-ndjson")
        lines = [json.loads(line) for line in r.iter_lines() if line]
    assert lines[-1] == {"status": "success", "name": "gemma3:270m"}
    assert all("error" not in line for line in lines)
    assert "gemma3:270m" in {m["name"] for m in httpx.get(f"{api.url}/api/models").json()["models"]}
    again = httpx.post(
        f"{api.url}/api/models/pull", json={"name": "gemma3:270m", "stream": False}, timeout=300
    )
    assert again.json() == {"status": "success", "name": "gemma3:270m"}
    assert httpx.delete(f"{api.url}/api/models/gemma3:270m").status_code == 200


def test_pull_unknown_alias_is_404(api):
    r = httpx.post(f"{api.url}/api/models/pull", json={"name": "no-such-alias:1b"})
    assert r.status_code == 404 and "no-such-alias" in r.json()["error"]
