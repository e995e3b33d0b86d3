"""A pull that cannot write to the disk fails visibly, in each dialect: 507 for a whole reply,
an error line at the end of a stream (never "success").

A real daemon pulls from the local fake hub under ``RLIMIT_FSIZE``: the kernel refuses to grow
any file past the limit (EFBIG; Python ignores SIGXFSZ), as a full disk would (ENOSPC). A blob
bigger than the limit fails while downloading; a model whose blob is already stored fails at
its manifest, the last write (where the stream used to end with "writing manifest", status 200).
"""

from __future__ import annotations

import json
import sys

import httpx
import ollama
import pytest

from tests.fakehub import FakeHub, make_gguf_bytes
from tests.helpers import run_daemon, settings_env

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

REPO = "testorg/Full-GGUF"
LIMIT = 512  # bytes: above the daemon's lock and pid files, below a manifest
BIG = make_gguf_bytes(name="big", file_type=15, padding=64 * 1024, seed="big")  # "Q4_K_M"
SMALL = make_gguf_bytes(name="small", file_type=7, seed="small")  # "Q8_0", stored beforehand
LIMITED = (
    "import os, resource, sys; resource.setrlimit(resource.RLIMIT_FSIZE, ({n}, {n})); "
    "os.execv(sys.executable, [sys.executable, '-m', 'mullama', 'serve', *sys.argv[1:]])"
)


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    """(daemon, hub): the daemon may grow no file past LIMIT bytes."""
    from mullama.config import load_settings
    from mullama.engine.store import ModelStore

    root = tmp_path_factory.mktemp("disk-full")
    with FakeHub() as hub:
        hub.add_repo(REPO, {"full-Q4_K_M.gguf": BIG, "full-Q8_0.gguf": SMALL})
        env = {**settings_env(root), "HF_ENDPOINT": hub.url, "HF_TOKEN": ""}
        env["MULLAMA_NOPRUNE"] = "1"  # keep the blob stored below, which no model uses yet
        ModelStore(load_settings(env=env)).add_blob(SMALL)
        command = [sys.executable, "-c", LIMITED.format(n=LIMIT)]
        with run_daemon(root, env=env, command=command) as daemon:
            yield daemon, hub


def ndjson(response: httpx.Response) -> list[dict]:
    return [json.loads(line) for line in response.text.splitlines() if line.strip()]


@pytest.mark.parametrize("quant", ["Q4_K_M", "Q8_0"], ids=["download", "manifest"])
def test_ollama_pull_is_507(full, quant):
    daemon, _ = full
    r = httpx.post(
        f"{daemon.url}/api/pull", json={"model": f"hf.co/{REPO}:{quant}", "stream": False}
    )
    assert r.status_code == 507, r.text
    assert "disk" in r.json()["error"]


@pytest.mark.parametrize("quant", ["Q4_K_M", "Q8_0"], ids=["download", "manifest"])
def test_ollama_stream_ends_with_an_error(full, quant):
    daemon, _ = full
    with ollama.Client(host=daemon.url, timeout=60) as client:
        with pytest.raises(ollama.ResponseError) as err:
            for update in client.pull(f"hf.co/{REPO}:{quant}", stream=True):
                assert update.status != "success"
    assert "disk" in err.value.error
    models = httpx.get(f"{daemon.url}/api/tags").json()["models"]
    assert not [m for m in models if REPO in m["name"]]


@pytest.mark.parametrize("quant", ["Q4_K_M", "Q8_0"], ids=["download", "manifest"])
def test_management_pull(full, quant):
    daemon, _ = full
    target = f"hf:{REPO}:{quant}"
    whole = httpx.post(f"{daemon.url}/api/models/pull", json={"name": target, "stream": False})
    assert whole.status_code == 507 and "disk" in whole.json()["error"], whole.text
    lines = ndjson(httpx.post(f"{daemon.url}/api/models/pull", json={"name": target}))
    assert "disk" in lines[-1]["error"]
    assert not [line for line in lines if line.get("status") == "success"]


def test_the_daemon_is_alive_afterwards(full):
    daemon, _ = full
    assert httpx.get(f"{daemon.url}/health").status_code == 200
