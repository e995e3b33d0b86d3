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
