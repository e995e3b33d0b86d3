"""At start the daemon removes blobs no model uses (as Ollama does); MULLAMA_NOPRUNE=1 keeps them."""

from __future__ import annotations

import hashlib
import os
import time

import pytest

from tests.helpers import run_daemon, settings_env

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def _old_blob(root, payload: bytes):
    blobs = root / "cache" / "blobs"
    blobs.mkdir(parents=True, exist_ok=True)
    path = blobs / f"sha256-{hashlib.sha256(payload).hexdigest()}"
    path.write_bytes(payload)
    day_ago = time.time() - 86400
    os.utime(path, (day_ago, day_ago))
    return path


def test_daemon_start_prunes_unused_blobs(tmp_path):
    stale = _old_blob(tmp_path, b"an upload nobody created a model from")
    with run_daemon(tmp_path) as daemon:
        assert not stale.exists()
        assert "removed 1 unreferenced blob" in daemon.log(), daemon.log()


def test_noprune_keeps_them(tmp_path):
    stale = _old_blob(tmp_path, b"kept on request")
    with run_daemon(tmp_path, env={**settings_env(tmp_path), "MULLAMA_NOPRUNE": "1"}):
        assert stale.exists()


def test_daemon_start_clears_what_a_killed_pull_left(tmp_path):
    """A packaged model half written when its pull was killed (kill -9 leaves it in partial/)
    goes; an interrupted download less than a day old stays, for the next pull to resume."""
    partial = tmp_path / "cache" / "partial"
    partial.mkdir(parents=True)
    killed = partial / "package-5f1e.gguf"
    killed.write_bytes(b"GGUF" + b"\0" * 1000)
    resumable = partial / f"{'a' * 64}.part"
    resumable.write_bytes(b"the first half")
    hours_ago = time.time() - 2 * 3600
    for path in (killed, resumable):
        os.utime(path, (hours_ago, hours_ago))
    with run_daemon(tmp_path) as daemon:
        assert not killed.exists() and resumable.exists()
        assert "removed 1 unreferenced blob(s) or stale partial file(s)" in daemon.log()
