"""`mullama worker`: its options, its errors, and a worker that starts and stops."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from mullama.cli.worker import is_loopback
from mullama.engine import rpc
from tests.helpers import free_port

needs_rpc = pytest.mark.skipif(
    rpc.missing() is not None,
    reason=f"needs llama-cpp-python with RPC (scripts/setup.sh builds it): {rpc.missing()}",
)


def worker(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mullama", "worker", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_bad_options_are_usage_errors():
    bad = worker("--listen", "nonsense")
    assert bad.returncode == 2
    assert "--listen expects HOST:PORT (for example 192.168.1.20:50052)" in bad.stderr
    bad = worker("--listen", "127.0.0.1:70000")
    assert bad.returncode == 2 and "port between 1 and 65535" in bad.stderr
    bad = worker("--threads", "0")
    assert bad.returncode == 2 and "--threads must be at least 1" in bad.stderr


def test_loopback_is_told_apart():
    assert is_loopback("127.0.0.1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.20")


@pytest.mark.skipif(rpc.missing() is None, reason="this llama-cpp-python has RPC")
def test_without_rpc_in_llama_cpp_it_says_how_to_get_it():
    done = worker()
    assert done.returncode == 1
    assert "built without llama.cpp's RPC backend" in done.stderr
    assert 'CMAKE_ARGS="-DGGML_RPC=ON"' in done.stderr


@needs_rpc
def test_a_port_in_use_is_a_clear_error():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = worker("--listen", f"127.0.0.1:{port}", "--device", "cpu")
    assert done.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr


@needs_rpc
@pytest.mark.slow
def test_it_serves_on_loopback_and_stops_on_sigterm():
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mullama", "worker", "--listen", f"127.0.0.1:{port}"]
        + ["--device", "cpu", "--threads", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        for _ in range(300):
            try:
                rpc.probe(f"127.0.0.1:{port}", timeout=5)
                break
            except rpc.RpcError:
                assert proc.poll() is None, proc.communicate()
                time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, err
    assert f"Mullama RPC worker on 127.0.0.1:{port} (cpu, 1 threads)" in err
    assert "Warning" not in err  # loopback: nothing to warn about
    assert "Starting RPC server" in out  # llama.cpp's own banner
