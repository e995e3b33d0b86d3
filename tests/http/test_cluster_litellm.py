"""Two real daemons behind a real LiteLLM proxy, configured by `mullama cluster config`: the
traffic reaches both, and when one is killed, requests through the proxy keep succeeding.

``litellm[proxy]`` cannot share the project's venv (its pins conflict with the litellm client
the other tests use), so ``scripts/setup.sh --test`` installs it into its own venv under the
ignored ``.cache/``. Everything stays on loopback: the proxy reads its model cost map from its
own package, and any other connection it tried would go to a proxy address that refuses it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.conftest import gemma_modelfile
from tests.helpers import free_port, run_daemon, settings_env

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

REPO = Path(__file__).resolve().parents[2]
PROXY_VENV = REPO / ".cache" / "litellm-proxy-venv"
LITELLM = PROXY_VENV / "bin" / "litellm"
MASTER_KEY = "sk-" + secrets.token_hex(32)  # what the proxy's clients send
COMPLETIONS = "POST /v1/completions "  # the test's own traffic; LiteLLM's health checks chat


@contextlib.contextmanager
def node(root: Path, model_path: Path, *models: str):
    """A daemon (with its access log) whose store has ``models``, each the test model."""
    from mullama.config import load_settings
    from mullama.engine.store import ModelStore

    # one thread each: two daemons and the proxy share a small machine
    env = {**settings_env(root), "MULLAMA_THREADS": "1"}
    store = ModelStore(load_settings(env=env))
    for name in models:
        store.create(name, gemma_modelfile(model_path), None)
    with run_daemon(root, "--verbose", env=env) as daemon:
        yield daemon


def cluster_config(*urls: str) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "mullama", "cluster", "config"]
    for url in urls:
        argv += ["--backend", url]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


@contextlib.contextmanager
def litellm_proxy(config: Path, log: Path):
    port = free_port()
    dead_end = f"http://127.0.0.1:{free_port()}"  # nothing listens: a connection out fails
    env = {
        **os.environ,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_DONT_SHOW_FEEDBACK_BOX": "True",
        "LITELLM_MASTER_KEY": MASTER_KEY,
        "HTTP_PROXY": dead_end,
        "HTTPS_PROXY": dead_end,
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }
    env.pop("DATABASE_URL", None)
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(LITELLM), "--config", str(config), "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"the proxy exited with {proc.returncode}:\n{log.read_text()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/health/liveliness", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the proxy did not start:\n{log.read_text()}")
            time.sleep(0.2)
        yield url
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)


def completions_served(daemon) -> int:
    return sum(1 for line in daemon.log().splitlines() if COMPLETIONS in line and " 200 " in line)


@pytest.mark.skipif(
    not LITELLM.exists(),
    reason=f"the LiteLLM proxy is not installed in {PROXY_VENV} (scripts/setup.sh --test does)",
)
def test_litellm_spreads_requests_and_survives_a_killed_daemon(tmp_path, test_model_path):
    with (
        node(tmp_path / "n1", test_model_path, "gemma", "solo") as first,
        node(tmp_path / "n2", test_model_path, "gemma") as second,
    ):
        made = cluster_config(first.url, second.url)
        assert made.returncode == 0, made.stderr
        assert f"solo:latest is not on every backend: routed only to {first.url}" in made.stderr
        config = yaml.safe_load(made.stdout)
        deployments = {
            (d["model_name"], d["litellm_params"]["api_base"]) for d in config["model_list"]
        }
        assert deployments == {
            ("gemma:latest", f"{first.url}/v1"),
            ("gemma:latest", f"{second.url}/v1"),
            ("solo:latest", f"{first.url}/v1"),
        }
        assert config["router_settings"]["routing_strategy"] == "least-busy"
        assert config["router_settings"]["model_group_alias"]["gemma"] == "gemma:latest"
        path = tmp_path / "config.yaml"
        path.write_text(made.stdout)

        with litellm_proxy(path, tmp_path / "proxy.log") as proxy:
            client = httpx.Client(
                base_url=f"{proxy}/v1",
                headers={"Authorization": f"Bearer {MASTER_KEY}"},
                timeout=120,
            )

            def complete(max_tokens: int = 8) -> httpx.Response:
                body = {"model": "gemma", "prompt": "Count: 1, 2, 3,", "max_tokens": max_tokens}
                return client.post("/completions", json=body)

            # least-busy sends a request to the daemon with fewer requests in flight (as this
            # proxy counts them): while a long stream is open on one, the next goes to the
            # other (rounds, bounded, in case a stream ends before the next is routed)
            for _ in range(5):
                body = {"model": "gemma", "prompt": "Count: 1, 2,", "max_tokens": 400}
                with client.stream("POST", "/completions", json={**body, "stream": True}) as long:
                    assert long.status_code == 200
                    next(long.iter_lines())  # its first chunk: it is in flight
                    assert complete().status_code == 200
                if completions_served(first) and completions_served(second):
                    break
            assert completions_served(first) >= 1 and completions_served(second) >= 1

            # one daemon dies without a word
            os.killpg(first.proc.pid, signal.SIGKILL)
            first.proc.wait(10)
            before = completions_served(second)
            chat = {
                "model": "gemma",
                "messages": [{"role": "user", "content": "Say hi"}],
                "max_tokens": 4,
            }
            for _ in range(4):
                r = client.post("/chat/completions", json=chat)
                assert r.status_code == 200, r.text
                assert r.json()["choices"][0]["message"]["content"] is not None
                assert complete().status_code == 200
            assert completions_served(second) == before + 4
