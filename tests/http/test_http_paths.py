"""Files an HTTP client may name: only inside the store and ``allowed_model_dirs``, symlinks
resolved; the answer for a file elsewhere is the answer for a file that is not there. The
local user's CLI (over IPC) still creates models from any file of theirs.

A real daemon whose ``allowed_model_dirs`` is one shared folder; beside it a private folder
with a GGUF and a secret, which HTTP clients must not be able to probe, hash or load."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest

from tests.fakehub import make_gguf
from tests.helpers import run_daemon, settings_env

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


@pytest.fixture(scope="module")
def served(tmp_path_factory, test_model_path):
    """(daemon, shared folder, private folder)."""
    root = tmp_path_factory.mktemp("paths")
    shared, private = root / "shared", root / "private"
    shared.mkdir()
    private.mkdir()
    try:
        os.link(test_model_path, shared / "gemma.gguf")
    except OSError:
        import shutil

        shutil.copy(test_model_path, shared / "gemma.gguf")
    os.link(shared / "gemma.gguf", private / "gemma.gguf")
    make_gguf(private / "private.gguf", name="private")
    (private / "secret.txt").write_text("the secret\n" * 100)
    (shared / "escape.gguf").symlink_to(private / "private.gguf")
    env = {**settings_env(root / "daemon"), "MULLAMA_ALLOWED_MODEL_DIRS": f"/nonexistent:{shared}"}
    with run_daemon(root / "daemon", env=env) as daemon:
        yield daemon, shared, private


def create(daemon, modelfile: str) -> httpx.Response:
    body = {"model": "probe", "modelfile": modelfile, "stream": False}
    return httpx.post(f"{daemon.url}/api/create", json=body, timeout=120)


def elsewhere(private) -> list[str]:
    """Paths outside the allowed folder: there, not there, secret, relative, via a symlink."""
    return [
        str(private / "private.gguf"),
        str(private / "missing.gguf"),
        str(private / "secret.txt"),
        "/etc/shadow",
        "./gemma.gguf",
        str(private.parent / "shared" / ".." / "private" / "private.gguf"),
        str(private.parent / "shared" / "escape.gguf"),
    ]


@pytest.mark.parametrize("line", ["FROM", "VISION_PROJECTOR", "ADAPTER"])
def test_create_cannot_probe_files_elsewhere(served, line):
    daemon, shared, private = served
    answers = set()
    for given in elsewhere(private):
        if line == "FROM":
            text = f"FROM {given}\n"
        else:
            text = f"FROM {shared / 'gemma.gguf'}\n{line} {given}\n"
        r = create(daemon, text)
        assert r.status_code == 400, (given, r.text)
        message = r.json()["error"]
        assert "secret" not in message.replace(given, "") and "bytes" not in message
        answers.add((r.status_code, message.replace(given, "<path>")))
    assert len(answers) == 1, answers  # the same for each: nothing learnt about any file
    assert "probe:latest" not in [
        m["name"] for m in httpx.get(f"{daemon.url}/api/tags").json()["models"]
    ]


def test_create_from_the_allowed_folder(served):
    daemon, shared, _ = served
    r = create(daemon, f"FROM {shared / 'gemma.gguf'}\nPARAMETER num_predict 2\n")
    assert r.status_code == 200, r.text
    gone = httpx.request("DELETE", f"{daemon.url}/api/delete", json={"model": "probe"})
    assert gone.status_code == 200


def test_a_model_path_outside_is_not_loaded(served):
    daemon, shared, private = served
    chat = [{"role": "user", "content": "Hi"}]
    answers: dict[str, set[tuple[int, str]]] = {}
    for given in [str(private / "gemma.gguf"), str(private / "missing.gguf"), "gemma.gguf"]:
        for route, body in [
            ("/api/generate", {"model": given, "prompt": "Hi", "stream": False}),
            ("/v1/chat/completions", {"model": given, "messages": chat}),
            ("/api/show", {"model": given}),
            ("/api/models/load", {"name": given}),
        ]:
            r = httpx.post(f"{daemon.url}{route}", json=body, timeout=120)
            answers.setdefault(route, set()).add((r.status_code, r.text.replace(given, "<path>")))
    for route, seen in answers.items():
        assert len(seen) == 1 and next(iter(seen))[0] == 404, (route, seen)
    assert httpx.get(f"{daemon.url}/api/ps").json()["models"] == []
    options = {"num_predict": 1}
    inside = {"model": str(shared / "gemma.gguf"), "prompt": "Hi", "options": options}
    r = httpx.post(
        f"{daemon.url}/api/generate", json={**inside, "stream": False, "keep_alive": 0}, timeout=120
    )
    assert r.status_code == 200, r.text


def test_the_cli_creates_from_any_file_of_its_user(served, tmp_path):
    """``mullama create -f Modelfile`` reaches the daemon over IPC: the user's own process."""
    daemon, _, private = served
    modelfile = private / "Modelfile"
    modelfile.write_text("FROM ./private.gguf\n")
    result = subprocess.run(
        [sys.executable, "-m", "mullama", "create", "mine", "-f", str(modelfile)],
        env={**os.environ, **daemon.env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "mine:latest" in [
        m["name"] for m in httpx.get(f"{daemon.url}/api/tags").json()["models"]
    ]
