"""Shared test helpers: temp settings, free ports, and a real daemon process."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

# The Gemma 3 270M test model has no chat template of its own: give it one.
GEMMA_TEMPLATE = (
    '{{- range .Messages }}<start_of_turn>{{ if eq .Role "assistant" }}model{{ else }}user{{ end }}\n'
    "{{ .Content }}<end_of_turn>\n{{ end }}<start_of_turn>model\n"
)
GEMMA_MODELFILE = '''FROM {path}
TEMPLATE """{template}"""
PARAMETER stop "<end_of_turn>"
PARAMETER temperature 0
PARAMETER num_ctx 2048
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def settings_env(root: Path) -> dict[str, str]:
    """Environment that points every Mullama path into ``root``."""
    env = {
        "MULLAMA_CACHE_DIR": str(root / "cache"),
        "MULLAMA_CONFIG_DIR": str(root / "config"),
        "MULLAMA_DATA_DIR": str(root / "data"),
        "MULLAMA_LOG_FILE": str(root / "mullamad.log"),
        "MULLAMA_PID_FILE": str(root / "mullamad.pid"),
        "MULLAMA_RUNTIME_DIR": str(root / "run"),
        "MULLAMA_SOCKET": f"ipc://{root / 'mullama.sock'}",
        "MULLAMA_HTTP_PORT": str(free_port()),
        "MULLAMA_BIN": str(Path(sys.executable).parent / "mullama"),
        "HF_HUB_OFFLINE": "0",
    }
    return env


@dataclass
class Daemon:
    proc: subprocess.Popen
    port: int
    socket: str
    env: dict[str, str]
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""


def serve_command() -> list[str]:
    """``python -m mullama serve``."""
    return [sys.executable, "-m", "mullama", "serve"]


@contextlib.contextmanager
def run_daemon(
    root: Path,
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float = 60,
    command: list[str] | None = None,
):
    """A real ``mullama serve --headless`` on a free loopback port, stopped afterwards.

    ``env`` (default: :func:`settings_env` of ``root``) is laid over this process's environment.
    ``command`` replaces ``[python, -m, mullama, serve]`` (see :func:`serve_command`).
    """
    root.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **(env or settings_env(root))}
    port = int(env["MULLAMA_HTTP_PORT"])
    log_path = root / "daemon-stdout.log"
    with open(log_path, "wb") as out:
        proc = subprocess.Popen(
            [
                *(command or [sys.executable, "-m", "mullama", "serve"]),
                "--headless",
                "--http-port",
                str(port),
                *args,
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    daemon = Daemon(proc, port, env["MULLAMA_SOCKET"], env, log_path)
    try:
        # ready: started, the --model models loaded (/health answers before that)
        wait_until_ready(proc, f"{daemon.url}/health/ready", "daemon", daemon.log, timeout)
        yield daemon
    finally:
        stop_process(proc)


def wait_until_ready(
    proc: subprocess.Popen,
    url: str,
    what: str,
    log: Callable[[], str],
    timeout: float,
    probe_timeout: float = 1,
) -> None:
    """Polls ``url`` until it answers 200; raises, with ``log()``, when ``proc`` exits first
    or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{log()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=probe_timeout).status_code == 200:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} not ready after {timeout}s:\n{log()}")
        time.sleep(0.1)


def stop_process(proc: subprocess.Popen, *, group: bool = False) -> None:
    """SIGTERM to ``proc`` (to its whole process group with ``group``) if it still runs, and
    SIGKILL to the group if it has not exited 20 s later."""
    if proc.poll() is not None:
        return
    if group:
        os.killpg(proc.pid, signal.SIGTERM)
    else:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


async def job_reply(job) -> tuple[str, object]:
    """The text of a submitted runner ``Job`` and its ``Done`` (an error event is raised)."""
    from mullama.engine.api import Done, TextDelta

    text = ""
    while True:
        event = await job.queue.get()
        if isinstance(event, TextDelta):
            text += event.text
        elif isinstance(event, Done):
            return text, event
        else:
            raise event
