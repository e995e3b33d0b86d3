"""The Engine API's front-end methods (liveness, default model, blobs, pruning, mode),
in-process on a LocalEngine and over IPC on the real daemon."""

from __future__ import annotations

import hashlib
import os

import pytest

from mullama.engine.api import InvalidRequest, Liveness, PruneResult
from mullama.ipc.protocol import PROTOCOL_VERSION

from .conftest import raw_request

pytestmark = [pytest.mark.slow]

CONTENT = os.urandom(300_000)
DIGEST = "sha256:" + hashlib.sha256(CONTENT).hexdigest()


async def pieces(data: bytes, size: int = 65536):
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def check_seam(engine, expected_mode: str) -> None:
    assert engine.mode == expected_mode
    alive = await engine.ping()
    assert isinstance(alive, Liveness) and alive.pong and alive.instance
    assert alive.protocol == (PROTOCOL_VERSION if expected_mode == "remote" else None)
    assert await engine.ping() == alive  # the same instance answers

    await engine.set_default_model("gemma")
    assert await engine.default_model() == "gemma"
    assert (await engine.status()).default_model == "gemma"

    content = os.urandom(200_000)
    digest = "sha256:" + hashlib.sha256(content).hexdigest()
    assert await engine.blob_path(digest) is None
    assert await engine.add_blob(digest, pieces(content)) == digest
    path = await engine.blob_path(digest)
    with open(path, "rb") as f:
        assert f.read() == content
    assert await engine.add_blob(digest, pieces(content)) == digest  # already there: fine

    wrong = "sha256:" + "0" * 64
    with pytest.raises(InvalidRequest, match="digest"):
        await engine.add_blob(wrong, pieces(b"something else"))
    assert await engine.blob_path(wrong) is None

    pruned = await engine.prune_store()
    assert isinstance(pruned, PruneResult)
    assert await engine.blob_path(digest) == path  # just uploaded: within the grace period


async def test_local_engine(engine):
    await check_seam(engine, "local")


async def test_remote_engine(remote, daemon, monkeypatch):
    import mullama.ipc.client as client

    monkeypatch.setattr(client, "BLOB_CHUNK_BYTES", 50_000)  # several BlobChunk messages
    await check_seam(remote, "remote")
    assert (await remote.ping()).pid == daemon.proc.pid
    assert await remote.add_blob(DIGEST, pieces(CONTENT, 7777)) == DIGEST
    assert os.path.getsize(await remote.blob_path(DIGEST)) == len(CONTENT)


async def test_a_failed_upload_leaves_no_blob_and_the_daemon_answers(remote, daemon):
    async def broken():
        yield b"a first piece"
        raise RuntimeError("the client's source broke")

    digest = "sha256:" + "1" * 64
    with pytest.raises(RuntimeError, match="source broke"):
        await remote.add_blob(digest, broken())
    assert await remote.blob_path(digest) is None
    reply = raw_request(
        daemon.socket,
        {"type": "BlobCommit", "v": PROTOCOL_VERSION, "data": {"upload": "nope"}},
    )
    assert reply["type"] == "Error" and "unknown blob upload" in reply["data"]["message"]
    assert (await remote.ping()).pong


async def test_the_model_library_over_ipc(tmp_path, fake_hub):
    """Aliases, a hub search and a repository's quantizations from a daemon whose hub is the
    fake one, through the generated RemoteEngine methods; a hub error arrives as itself."""
    from mullama.engine.api import HubModel, Unauthorized
    from mullama.ipc import RemoteEngine
    from tests.fakehub import make_gguf_bytes, write_user_registry
    from tests.helpers import run_daemon, settings_env

    fake_hub.add_repo(
        "acme/Tiny-GGUF",
        {"tiny.Q4_K_M.gguf": make_gguf_bytes(padding=2000), "tiny.Q8_0.gguf": make_gguf_bytes()},
        downloads=42,
    )
    env = {
        **settings_env(tmp_path),
        "HF_ENDPOINT": fake_hub.url,
        "MULLAMA_QUANT_PREFERENCE": "Q8_0",
    }
    from mullama.config import load_settings

    write_user_registry(load_settings(env=env), '[models."tiny:1m"]\nrepo = "acme/Tiny-GGUF"\n')
    with run_daemon(tmp_path, env=env) as daemon:
        remote = RemoteEngine(daemon.socket)
        try:
            aliases = {a.name: a for a in await remote.list_aliases()}
            assert aliases["tiny:1m"].repo == "acme/Tiny-GGUF" and "llama3.2:1b" in aliases
            found = await remote.search_models("tiny", 5)
            assert found == [
                HubModel("acme/Tiny-GGUF", 42, 0, found[0].created_at, "text-generation")
            ]
            quants = await remote.list_quants("acme/Tiny-GGUF")
            assert [(q.quant, q.preferred) for q in quants] == [("Q8_0", True), ("Q4_K_M", False)]
            with pytest.raises(Unauthorized, match="acme/Missing-GGUF"):
                await remote.list_quants("acme/Missing-GGUF")
        finally:
            await remote.close()


async def test_rerank_and_embed_over_ipc(tmp_path):
    """The Rerank operation through the generated RemoteEngine method on a real daemon, with
    the tiny reranker and embedding fixtures; an error arrives as itself."""
    from mullama.config import load_settings
    from mullama.engine.api import InvalidRequest, RerankRequest
    from mullama.engine.store import ModelStore
    from mullama.ipc import RemoteEngine
    from tests.gguf_fixtures import build_bert
    from tests.helpers import run_daemon, settings_env

    env = settings_env(tmp_path)
    store = ModelStore(load_settings(env=env))
    store.create("rerank", f"FROM {build_bert(tmp_path / 'r.gguf', reranker=True)}\n", None)
    store.create("embed", f"FROM {build_bert(tmp_path / 'e.gguf')}\n", None)
    with run_daemon(tmp_path, env=env) as daemon:
        remote = RemoteEngine(daemon.socket)
        try:
            result = await remote.rerank(
                RerankRequest("rerank", "the cat", ["a dog", "the cat"], 1)
            )
            assert result.model == "rerank:latest" and len(result.results) == 1
            assert result.results[0].index in (0, 1) and result.prompt_tokens > 0
            with pytest.raises(InvalidRequest, match="embed:latest is an embedding model"):
                await remote.rerank(RerankRequest("embed", "the cat", ["a dog"]))
        finally:
            await remote.close()
