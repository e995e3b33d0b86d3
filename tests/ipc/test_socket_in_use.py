"""A second daemon on an IPC address in use fails at once, with a clear message, before it
loads a model or serves HTTP (it used to serve HTTP first, or hang on a listener that never
accepts, deaf to the first SIGTERM)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from mullama.engine.api import EngineError
from tests.helpers import free_port

pytestmark = [pytest.mark.slow]


def second_daemon(env: dict[str, str], tmp_path, socket_address: str, *args: str):
    """``mullama serve`` with the session daemon's store, its own PID file and port."""
    env = {
        **os.environ,
        **env,
        "MULLAMA_PID_FILE": str(tmp_path / "second.pid"),
        "MULLAMA_LOG_FILE": str(tmp_path / "second.log"),
        "MULLAMA_HTTP_PORT": str(free_port()),
        "MULLAMA_SOCKET": socket_address,
        "MULLAMA_NOPRUNE": "1",  # the store is the session daemon's
    }
    return subprocess.run(
        [sys.executable, "-m", "mullama", "serve", "--headless", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,  # before the fix, a listener that never accepts hung it for ever
    )


def assert_refused_before_anything(result, words: str) -> None:
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert words in output
    assert "loading gemma" not in output and "serving HTTP" not in output


def test_a_second_daemon_on_a_live_ipc_socket_stops_before_loading_or_http(daemon, tmp_path):
    result = second_daemon(daemon.env, tmp_path, daemon.socket, "--model", "gemma")
    assert_refused_before_anything(
        result, f"another Mullama daemon is already listening on {daemon.socket}"
    )
    assert os.path.exists(daemon.socket[len("ipc://") :])  # the first daemon's socket stays
    assert daemon.proc.poll() is None


def test_a_second_daemon_on_a_busy_tcp_port_stops_before_loading_or_http(daemon, tmp_path):
    holder = socket.create_server(("127.0.0.1", 0))
    address = f"tcp://127.0.0.1:{holder.getsockname()[1]}"
    try:
        result = second_daemon(daemon.env, tmp_path, address, "--model", "gemma")
    finally:
        holder.close()
    assert_refused_before_anything(
        result, f"another program (a Mullama daemon?) already listens on {address}"
    )


def test_a_listener_that_never_accepts_does_not_hang_the_start(daemon, tmp_path):
    path = tmp_path / "stuck.sock"
    stuck = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stuck.bind(str(path))
    stuck.listen(0)
    queued = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    queued.connect(str(path))  # fills its backlog: the next connect would wait for ever
    try:
        result = second_daemon(daemon.env, tmp_path, f"ipc://{path}", "--model", "gemma")
    finally:
        queued.close()
        stuck.close()
    assert_refused_before_anything(result, "but does not accept connections")


async def test_two_ipc_servers_on_one_tcp_address(settings):
    from mullama.engine.local import LocalEngine
    from mullama.ipc.server import IpcServer

    engine = LocalEngine(settings)
    address = f"tcp://127.0.0.1:{free_port()}"
    first, second = IpcServer(engine, address), IpcServer(engine, address)
    try:
        first.bind()
        with pytest.raises(EngineError, match="already listens on tcp://127.0.0.1"):
            second.bind()
    finally:
        await first.stop()
        await second.stop()
        await engine.close()
