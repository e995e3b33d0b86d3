"""`mullama serve` start-up failures and choices, with real daemons on loopback."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import httpx
import pytest

from tests.helpers import run_daemon, settings_env

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def serve(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mullama", "serve", "--headless", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_a_second_serve_on_a_socket_in_use_fails_and_exits(tmp_path):
    with run_daemon(tmp_path / "first") as first:
        other = settings_env(tmp_path / "second")
        other["MULLAMA_SOCKET"] = first.socket  # the same socket, its own HTTP port and files
        second = serve(other)
        assert second.returncode == 1  # exits instead of hanging with HTTP up and no IPC
        assert "already listening on " + first.socket in second.stdout + second.stderr
        port = int(other["MULLAMA_HTTP_PORT"])
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)  # its HTTP is gone too
        assert httpx.get(f"http://127.0.0.1:{first.port}/health", timeout=10).status_code == 200


def test_port_0_serves_on_a_free_port(tmp_path):
    env = settings_env(tmp_path)
    env["MULLAMA_HTTP_PORT"] = "0"
    proc = subprocess.Popen(
        [sys.executable, "-m", "mullama", "serve", "--headless"],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if match := re.search(r"serving HTTP on http://127\.0\.0\.1:(\d+)", line):
                break
        else:
            pytest.fail("the daemon never said where it serves")
        port = int(match[1])
        assert port not in (0, 8000)  # Sanic reads 0 as its own default, 8000
        assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=10).status_code == 200
    finally:
        proc.terminate()
        assert proc.wait(60) == 0  # SIGTERM: a graceful stop
