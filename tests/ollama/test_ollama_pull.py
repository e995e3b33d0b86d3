"""``/api/pull`` through the official client, from a local fake Hugging Face hub reached by a
daemon started with ``HF_ENDPOINT`` pointing at it (the real ``huggingface_hub`` code runs).
That daemon also requires an API key, which Ollama clients send as a bearer token."""

from __future__ import annotations

import hashlib

import ollama
import pytest

from tests.fakehub import FakeHub, make_gguf_bytes
from tests.helpers import run_daemon, settings_env

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

REPO = "testorg/Tiny-GGUF"
KEY = "sk-test-ollama"
Q4 = make_gguf_bytes(name="tiny", file_type=15, padding=3 * 2**20, seed="q4")
Q8 = make_gguf_bytes(name="tiny", file_type=7, padding=2**20, seed="q8")


@pytest.fixture(scope="module")
def hub():
    with FakeHub() as hub:
        hub.add_repo(REPO, {"tiny-Q4_K_M.gguf": Q4, "tiny-Q8_0.gguf": Q8, "README.md": b"# tiny"})
        yield hub


@pytest.fixture(scope="module")
def pull_daemon(tmp_path_factory, hub):
    root = tmp_path_factory.mktemp("pull-daemon")
    env = {**settings_env(root), "HF_ENDPOINT": hub.url, "HF_TOKEN": "", "MULLAMA_API_KEY": KEY}
    with run_daemon(root, env=env) as daemon:
        yield daemon


@pytest.fixture(scope="module")
def pull_client(pull_daemon):
    headers = {"Authorization": f"Bearer {KEY}"}
    with ollama.Client(host=pull_daemon.url, timeout=120, headers=headers) as client:
        yield client


def test_the_api_key_is_required_and_refused_ollama_style(pull_daemon):
    with ollama.Client(host=pull_daemon.url) as client, pytest.raises(ollama.ResponseError) as err:
        client.list()
    assert err.value.status_code == 401 and "API key" in err.value.error


def test_pull_streams_ollama_progress(pull_client):
    name = f"hf.co/{REPO}:Q4_K_M"
    updates = list(pull_client.pull(name, stream=True))
    statuses = [u.status for u in updates]
    assert statuses[0] == "pulling manifest"
    assert statuses[-3:] == ["verifying sha256 digest", "writing manifest", "success"]
    digest = "sha256:" + hashlib.sha256(Q4).hexdigest()
    downloads = [u for u in updates if u.status.startswith("pulling ") and u.digest]
    assert downloads and {u.status for u in downloads} == {f"pulling {digest[7:19]}"}
    assert {u.digest for u in downloads} == {digest}
    assert all(u.total == len(Q4) for u in downloads)
    completed = [u.completed for u in downloads]
    assert completed == sorted(completed) and completed[-1] == len(Q4)
    [model] = [m for m in pull_client.list().models if m.model == name]
    assert model.digest == digest[7:] and model.size == len(Q4)
    assert model.details.quantization_level == "Q4_K_M"


def test_pull_whole_then_use_and_delete(pull_client):
    name = f"hf.co/{REPO}:Q8_0"
    assert pull_client.pull(name).status == "success"
    shown = pull_client.show(name)
    assert shown.details.family == "llama" and shown.details.quantization_level == "Q8_0"
    assert shown.modelinfo["llama.context_length"] == 2048
    # the hf: spelling names the same model
    assert pull_client.show(f"hf:{REPO}:Q8_0").details.quantization_level == "Q8_0"
    assert pull_client.delete(name).status == "success"
    assert name not in [m.model for m in pull_client.list().models]


def test_pull_again_reuses_the_blob(pull_client, hub):
    name = f"hf.co/{REPO}:Q4_K_M"
    pull_client.pull(name)
    before = len(hub.gets("tiny-Q4_K_M.gguf"))
    assert pull_client.pull(name).status == "success"
    assert len(hub.gets("tiny-Q4_K_M.gguf")) == before


def test_pull_errors(pull_client):
    with pytest.raises(ollama.ResponseError) as err:
        pull_client.pull("hf.co/testorg/missing-GGUF:Q4_K_M")
    assert err.value.status_code in (401, 404) and "missing-GGUF" in err.value.error
    with pytest.raises(ollama.ResponseError) as err:
        list(pull_client.pull("hf.co/testorg/missing-GGUF:Q4_K_M", stream=True))
    assert "missing-GGUF" in err.value.error
    with pytest.raises(ollama.ResponseError) as err:
        pull_client.pull(f"hf.co/{REPO}:Q2_K")
    assert "Q2_K" in err.value.error


def test_pull_an_alias_then_chat_with_it(pull_client):
    # gemma3:270m is shipped as a Python package: the alias resolves without the hub.
    statuses = [u.status for u in pull_client.pull("gemma3:270m", stream=True)]
    assert statuses[-1] == "success"
    assert "gemma3:270m" in [m.model for m in pull_client.list().models]
    reply = pull_client.chat(
        model="gemma3:270m",
        messages=[{"role": "user", "content": "Hi"}],
        options={"num_predict": 2, "temperature": 0},
    )
    assert reply.done and reply.eval_count <= 2
    assert pull_client.generate(model="gemma3:270m", keep_alive=0).done_reason == "unload"
