"""One model across machines: llama.cpp RPC workers (`mullama worker`) on loopback ports, a
real daemon whose model's layers live on them, and what happens when a worker dies.

These need llama-cpp-python built with ``CMAKE_ARGS=-DGGML_RPC=ON`` (scripts/setup.sh builds
it so); with another build they skip, saying so.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from mullama.engine import rpc
from mullama.engine.api import ChatRequest, Message, ModelLoadError, SamplingOptions
from tests.conftest import gemma_modelfile
from tests.helpers import free_port, run_daemon, settings_env

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        rpc.missing() is not None,
        reason=f"needs llama-cpp-python with RPC (scripts/setup.sh builds it): {rpc.missing()}",
    ),
]

PROMPT = [{"role": "user", "content": "Write a short poem about the sea."}]
RENDERED = (
    "<start_of_turn>user\nWrite a short poem about the sea.<end_of_turn>\n<start_of_turn>model\n"
)
N_TOKENS = 32


def local_reference(env: dict[str, str], modelfile: str, monkeypatch) -> str:
    """The greedy completion of ``RENDERED`` by a model in this process, through the engine
    the daemon runs, with the CPU kernels a worker's CPU backend uses: a model in the
    daemon's own process keeps its weights repacked for faster kernels (llama.cpp's "extra
    buffer types"), whose rounding differs a little, so its greedy output may part from a
    worker's after some tokens."""
    import asyncio

    import llama_cpp

    from mullama.config import load_settings
    from mullama.engine.api import CompletionRequest, TextDelta
    from mullama.engine.local import LocalEngine

    default_params = llama_cpp.llama_model_default_params

    def without_repacking():
        params = default_params()
        params.use_extra_bufts = False
        return params

    async def run() -> str:
        engine = LocalEngine(load_settings(env=env))
        try:
            await engine.create_model("reference", modelfile)
            request = CompletionRequest(
                "reference", RENDERED, raw=True, options=SamplingOptions(max_tokens=N_TOKENS)
            )
            return "".join(
                [e.text async for e in engine.complete(request) if isinstance(e, TextDelta)]
            )
        finally:
            await engine.close()

    with monkeypatch.context() as patch:
        patch.setattr(llama_cpp, "llama_model_default_params", without_repacking)
        return asyncio.run(run())


@contextlib.contextmanager
def run_worker(port: int, log: Path):
    """``mullama worker`` on a loopback port (CPU, one thread), ready when it answers hello."""
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mullama", "worker", "--listen", f"127.0.0.1:{port}"]
            + ["--device", "cpu", "--threads", "1"],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"worker exited with {proc.returncode}:\n{log.read_text()}")
            try:
                rpc.probe(f"127.0.0.1:{port}", timeout=5)
                break
            except rpc.RpcError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def create(env: dict[str, str], name: str, modelfile: str) -> None:
    from mullama.config import load_settings
    from mullama.engine.store import ModelStore

    ModelStore(load_settings(env=env)).create(name, modelfile, None)


def chat(url: str, model: str, **extra) -> httpx.Response:
    body = {"model": model, "messages": PROMPT, "max_tokens": 40, **extra}
    return httpx.post(f"{url}/v1/chat/completions", json=body, timeout=300)


def generate(url: str, model: str) -> httpx.Response:
    body = {
        "model": model,
        "prompt": RENDERED,
        "raw": True,
        "stream": False,
        "options": {"num_predict": N_TOKENS, "temperature": 0},
    }
    return httpx.post(f"{url}/api/generate", json=body, timeout=300)


def test_serve_rpc_gives_the_local_greedy_output_and_embeds(tmp_path, test_model_path, monkeypatch):
    """``serve --rpc`` puts every model on the workers (``RPC none`` keeps one local): the
    model split across two workers answers what it answers in one process."""
    ports = free_port(), free_port()
    env = {**settings_env(tmp_path), "MULLAMA_NUM_PARALLEL": "2"}
    create(env, "gemma", gemma_modelfile(test_model_path))
    create(env, "gemma-local", gemma_modelfile(test_model_path, "RPC none\n"))
    with (
        run_worker(ports[0], tmp_path / "w1.log"),
        run_worker(ports[1], tmp_path / "w2.log"),
        run_daemon(tmp_path, "--rpc", ",".join(f"127.0.0.1:{p}" for p in ports), env=env) as d,
    ):
        remote = generate(d.url, "gemma")
        assert remote.status_code == 200, remote.text
        text = remote.json()["response"]
        reference_env = {**settings_env(tmp_path / "reference"), "MULLAMA_NUM_PARALLEL": "2"}
        assert text == local_reference(reference_env, gemma_modelfile(test_model_path), monkeypatch)
        local = chat(d.url, "gemma-local")
        assert local.status_code == 200, local.text
        assert local.json()["choices"][0]["message"]["content"]
        # every layer of the one is offloaded (to the workers), none of the other
        ps = httpx.get(f"{d.url}/api/ps", timeout=10).json()["models"]
        vram = {m["name"]: m["size_vram"] for m in ps}
        assert vram["gemma:latest"] > 0 and vram["gemma-local:latest"] == 0, vram

        vectors = []
        for model in ("gemma", "gemma-local"):
            r = httpx.post(
                f"{d.url}/v1/embeddings", json={"model": model, "input": "the sea"}, timeout=300
            )
            assert r.status_code == 200, r.text
            vectors.append(r.json()["data"][0]["embedding"])
        assert max(abs(a - b) for a, b in zip(*vectors, strict=True)) < 1e-3


def read_stream(response: httpx.Response):
    for line in response.iter_lines():
        if line.startswith("data: ") and line != "data: [DONE]":
            yield json.loads(line[len("data: ") :])


def test_a_worker_killed_mid_stream_ends_that_reply_and_the_daemon_serves_on(
    tmp_path, test_model_path
):
    """A Modelfile's RPC and TENSOR_SPLIT place one model; killing a worker while it streams
    ends that stream with an error in the dialect, and the daemon, its other models, and the
    model itself (once its worker is back) serve on."""
    ports = free_port(), free_port()
    servers = ",".join(f"127.0.0.1:{p}" for p in ports)
    env = settings_env(tmp_path)
    create(env, "gemma-rpc", gemma_modelfile(test_model_path, f"RPC {servers}\nTENSOR_SPLIT 1,1\n"))
    create(env, "gemma", gemma_modelfile(test_model_path))
    with (
        run_worker(ports[0], tmp_path / "w1.log"),
        run_daemon(tmp_path, env=env) as d,
    ):
        with run_worker(ports[1], tmp_path / "w2.log") as second:
            body = {
                "model": "gemma-rpc",
                "messages": PROMPT,
                "stream": True,
                "max_tokens": 1500,
                "ignore_eos": True,
            }
            with httpx.stream(
                "POST", f"{d.url}/v1/chat/completions", json=body, timeout=300
            ) as response:
                assert response.status_code == 200
                chunks = read_stream(response)
                for chunk in chunks:
                    if chunk.get("choices") and chunk["choices"][0]["delta"].get("content"):
                        break
                os.killpg(second.pid, signal.SIGKILL)  # mid-stream: 1500 tokens were asked
                rest = list(chunks)
        assert rest, "the stream ended without a word"
        error = rest[-1].get("error")
        assert error is not None, rest[-1]
        assert "the reply was cut off" in error["message"]
        assert "RPC worker" in error["message"], error["message"]
        assert all(c.get("choices", [{}])[0].get("finish_reason") is None for c in rest[:-1])

        assert httpx.get(f"{d.url}/health", timeout=10).status_code == 200
        other = chat(d.url, "gemma")
        assert other.status_code == 200, other.text
        # the worker is gone: loading the model again says so, in the dialect
        again = chat(d.url, "gemma-rpc")
        assert again.status_code == 500, again.text
        message = again.json()["error"]["message"]
        assert f"cannot reach the RPC worker at 127.0.0.1:{ports[1]}" in message
        assert d.proc.poll() is None

        with run_worker(ports[1], tmp_path / "w2-again.log"):
            back = chat(d.url, "gemma-rpc")
            assert back.status_code == 200, back.text
            assert back.json()["choices"][0]["message"]["content"]
    assert "ended (killed by SIGABRT)" in d.log()


async def test_an_unreachable_worker_at_load_is_a_clear_error(engine, test_model_path):
    port = free_port()  # nobody listens there
    await engine.create_model("far", gemma_modelfile(test_model_path, f"RPC 127.0.0.1:{port}\n"))
    request = ChatRequest("far", [Message("user", "hi")], options=SamplingOptions(max_tokens=4))
    with pytest.raises(ModelLoadError) as caught:
        async for _ in engine.chat(request):
            pass
    assert f"cannot reach the RPC worker at 127.0.0.1:{port}" in caught.value.message
    assert "mullama worker" in caught.value.message
    assert await engine.running_models() == []
