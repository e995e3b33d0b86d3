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
