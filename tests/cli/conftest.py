"""CLI test helpers: run `mullama` as a subprocess; temp settings with no daemon yet."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from tests.helpers import settings_env


def mullama(
    env: dict[str, str], *args: str, input: str | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    """``python -m mullama ARGS`` with ``env``; stdin is ``input`` (or empty, never a terminal)."""
    return subprocess.run(
        [sys.executable, "-m", "mullama", *args],
        env=env,
        input=input or "",
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def daemon_processes(socket: str) -> list[psutil.Process]:
    """Live daemon processes serving ``socket`` (spawned with ``serve --socket SOCKET``)."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmd = proc.info["cmdline"] or []
        if "serve" in cmd and socket in cmd and proc.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(proc)
    return found


def pid_of(env: dict[str, str]) -> int:
    return json.loads(Path(env["MULLAMA_PID_FILE"]).read_text())["pid"]


@pytest.fixture
def cold_env(tmp_path):
    """Settings in a temp dir where no daemon runs yet; any daemon started is killed after."""
    env = {**os.environ, **settings_env(tmp_path)}
    env.pop("NO_COLOR", None)
    yield env
    for proc in daemon_processes(env["MULLAMA_SOCKET"]):
        try:
            proc.send_signal(signal.SIGTERM)
            proc.wait(20)
        except psutil.TimeoutExpired:
            proc.kill()
        except psutil.NoSuchProcess:
            pass


@pytest.fixture(scope="session")
def daemon_env(daemon) -> dict[str, str]:
    """The session daemon's environment, for commands that talk to it."""
    return dict(daemon.env)
