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
from pathlib import Path

import httpx
import pytest
import yaml

from tests.conftest import gemma_modelfile
from tests.helpers import free_port, run_daemon, settings_env, stop_process, wait_until_ready

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

REPO = Path(__file__).resolve().parents[2]
PROXY_VENV = REPO / ".cache" / "litellm-proxy-venv"
LITELLM = PROXY_VENV / "bin" / "litellm"
MASTER_KEY = "sk-" + secrets.token_hex(32)  # what the proxy's clients send
# the test's own traffic, counted in the daemons' access logs (LiteLLM's health checks chat)
COMPLETIONS, RESPONSES = "/v1/completions", "/v1/responses"
CHAT = [{"role": "user", "content": "Count from 1 to 100"}]


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
        wait_until_ready(
            proc, f"{url}/health/liveliness", "the proxy", log.read_text, 180, probe_timeout=2
        )
        yield url
    finally:
        stop_process(proc, group=True)


def served(daemon, path: str) -> int:
    """Requests to ``path`` the daemon answered with 200 (its access log)."""
    return sum(1 for line in daemon.log().splitlines() if f"POST {path} 200 " in line)


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
            nodes = (first, second)

            def complete(headers: dict | None = None) -> httpx.Response:
                body = {"model": "gemma", "prompt": "Count: 1, 2, 3,", "max_tokens": 4}
                return client.post("/completions", json=body, headers=headers)

            @contextlib.contextmanager
            def busy():
                """A chat stream in flight (chats are not counted: health checks chat), read to
                its end afterwards (LiteLLM would count one cut short as in flight for long)."""
                body = {"model": "gemma", "messages": CHAT, "max_tokens": 64, "stream": True}
                with client.stream("POST", "/chat/completions", json=body) as long:
                    assert long.status_code == 200
                    lines = long.iter_lines()
                    next(lines)  # its first chunk: it is in flight
                    yield
                    assert "[DONE]" in "".join(lines)

            def served_by(path: str, call) -> tuple[httpx.Response, object]:
                before = [served(n, path) for n in nodes]
                r = call()
                assert r.status_code == 200, r.text
                after = [served(n, path) for n in nodes]
                changed = [n for n, a, b in zip(nodes, after, before, strict=True) if a != b]
                assert len(changed) == 1, (before, after)
                return r, changed[0]

            # a conversation stays where its prompt cache is (session_affinity), and a
            # Responses API chain where its responses are stored (each daemon keeps its own):
            # even when least-busy would now pick the other daemon
            session = {"x-litellm-session-id": "conversation-0001"}
            _, pinned = served_by(COMPLETIONS, lambda: complete(session))
            reply = {"model": "gemma", "input": "Say hi", "max_output_tokens": 4}
            created, stored = served_by(RESPONSES, lambda: client.post("/responses", json=reply))
            with busy():
                _, again = served_by(COMPLETIONS, lambda: complete(session))
                follow_up = {**reply, "previous_response_id": created.json()["id"]}
                _, chained = served_by(RESPONSES, lambda: client.post("/responses", json=follow_up))
            assert again is pinned and chained is stored

            # least-busy sends a request to the daemon with fewer requests in flight (as this
            # proxy counts them): while a long stream is open on one, the next goes to the
            # other (rounds, bounded, in case a stream ends before the next is routed)
            for _ in range(5):
                with busy():
                    assert complete().status_code == 200
                if all(served(n, COMPLETIONS) for n in nodes):
                    break
            assert all(served(n, COMPLETIONS) for n in nodes)

            # one daemon dies without a word
            os.killpg(first.proc.pid, signal.SIGKILL)
            first.proc.wait(10)
            before = served(second, COMPLETIONS)
            chat = {"model": "gemma", "messages": CHAT, "max_tokens": 4}
            for _ in range(4):
                r = client.post("/chat/completions", json=chat)
                assert r.status_code == 200, r.text
                assert r.json()["choices"][0]["message"]["content"] is not None
                assert complete().status_code == 200
            assert served(second, COMPLETIONS) == before + 4
