"""`mullama serve --model NAME`: the model is loaded at start and stays loaded."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.helpers import run_daemon, settings_env

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def test_models_named_at_start_stay_loaded_past_keep_alive(tmp_path, test_model_path):
    env = {**settings_env(tmp_path), "MULLAMA_KEEP_ALIVE": "1s"}
    with run_daemon(tmp_path, "--model", str(test_model_path), env=env) as daemon:
        loaded = httpx.get(f"{daemon.url}/api/ps").json()["models"]
        assert [m["model"] for m in loaded] == [str(test_model_path)]
        time.sleep(3)  # three times the keep_alive every other model gets
        assert len(httpx.get(f"{daemon.url}/api/ps").json()["models"]) == 1
        # an explicit keep_alive still applies, as in Ollama
        r = httpx.post(
            f"{daemon.url}/api/generate",
            json={"model": str(test_model_path), "keep_alive": 0},
            timeout=60,
        )
        assert r.status_code == 200, r.text
        deadline = time.monotonic() + 30
        while httpx.get(f"{daemon.url}/api/ps").json()["models"] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert httpx.get(f"{daemon.url}/api/ps").json()["models"] == []
