"""Auto-spawn, one daemon for concurrent cold starts, kill -9 recovery, daemon start/stop/logs."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.fakehub import fake_hub, make_gguf_bytes  # noqa: F401 (fixture)

from .conftest import daemon_processes, mullama, pid_of

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

SPAWNING = "Daemon not running, starting it automatically..."
SPAWNED = "Daemon started successfully, connecting..."


def socket_path(env: dict[str, str]) -> Path:
    return Path(env["MULLAMA_SOCKET"][len("ipc://") :])


def test_cold_start_spawns_then_stop_never_spawns(cold_env):
    result = mullama(cold_env, "list")
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [SPAWNING, SPAWNED]
    assert result.stdout.split() == ["NAME", "ID", "SIZE", "MODIFIED"]  # stdout stays clean
    pid = pid_of(cold_env)
    assert [p.pid for p in daemon_processes(cold_env["MULLAMA_SOCKET"])] == [pid]
    assert stat.S_IMODE(socket_path(cold_env).stat().st_mode) == 0o600
    assert Path(cold_env["MULLAMA_LOG_FILE"]).stat().st_size > 0

    again = mullama(cold_env, "ps")
    assert again.returncode == 0 and again.stderr == ""  # connects, no second spawn

    stopped = mullama(cold_env, "daemon", "stop")
    assert stopped.returncode == 0 and stopped.stdout == f"Daemon stopped (pid {pid}).\n"
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert not Path(cold_env["MULLAMA_PID_FILE"]).exists() and not socket_path(cold_env).exists()

    status = mullama(cold_env, "daemon", "status")
    assert status.returncode == 1 and "not running" in status.stdout
    assert json.loads(mullama(cold_env, "daemon", "status", "--json").stdout)["running"] is False
    second = mullama(cold_env, "daemon", "stop")
    assert second.returncode == 0 and "not running" in second.stderr
    assert daemon_processes(cold_env["MULLAMA_SOCKET"]) == []


def test_two_concurrent_cold_starts_start_one_daemon(cold_env):
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "mullama", "list", "--json"],
            env=cold_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [(p.wait(300), *p.communicate()) for p in procs]
    assert [code for code, _, _ in results] == [0, 0], results
    assert all(json.loads(out) == {"models": []} for _, out, _ in results)
    assert sum(err.count(SPAWNING) for _, _, err in results) == 1
    assert len(daemon_processes(cold_env["MULLAMA_SOCKET"])) == 1


def test_kill_9_then_the_next_command_recovers(cold_env):
    started = mullama(cold_env, "daemon", "start")
    assert started.returncode == 0 and started.stdout.startswith("Daemon started (pid ")
    old = pid_of(cold_env)
    os.kill(old, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while psutil.pid_exists(old) and psutil.Process(old).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert socket_path(cold_env).exists() and Path(cold_env["MULLAMA_PID_FILE"]).exists()  # stale
    result = mullama(cold_env, "ps", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"models": []}
    assert result.stderr.splitlines() == [SPAWNING, SPAWNED]
    assert pid_of(cold_env) != old
    assert len(daemon_processes(cold_env["MULLAMA_SOCKET"])) == 1


def test_daemon_start_restart_and_logs(cold_env):
    mullama(cold_env, "daemon", "start")
    first = pid_of(cold_env)
    already = mullama(cold_env, "daemon", "start")
    assert already.returncode == 0 and f"already running (pid {first}" in already.stdout
    restarted = mullama(cold_env, "daemon", "restart")
    assert restarted.returncode == 0 and f"Daemon stopped (pid {first})." in restarted.stdout
    assert (pid_of(cold_env) != first and not psutil.pid_exists(first)) or psutil.Process(
        first
    ).status() == psutil.STATUS_ZOMBIE

    logs = mullama(cold_env, "daemon", "logs", "-n", "2")
    assert logs.returncode == 0 and len(logs.stdout.splitlines()) == 2
    log_file = Path(cold_env["MULLAMA_LOG_FILE"])
    follow = subprocess.Popen(
        [sys.executable, "-m", "mullama", "daemon", "logs", "-f", "-n", "0"],
        env=cold_env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(2)
        with open(log_file, "a") as handle:
            handle.write("a line written while following\n")
        deadline = time.monotonic() + 10
        line = ""
        while "while following" not in line and time.monotonic() < deadline:
            line = follow.stdout.readline()
        assert line == "a line written while following\n"
    finally:
        follow.terminate()
        follow.wait(10)


def test_restart_with_a_model_that_does_not_exist_keeps_the_daemon(cold_env):
    mullama(cold_env, "daemon", "start")
    first = pid_of(cold_env)
    refused = mullama(cold_env, "daemon", "restart", "-m", "nosuchmodel")
    assert refused.returncode == 1 and "nosuchmodel" in refused.stderr
    assert "Daemon stopped" not in refused.stdout
    assert pid_of(cold_env) == first  # the working daemon was not stopped
    assert mullama(cold_env, "list").returncode == 0


def test_daemon_start_takes_the_options_of_serve(cold_env, test_model_path, tmp_path):
    from tests.helpers import free_port

    port, socket = free_port(), f"ipc://{tmp_path / 'other.sock'}"
    started = mullama(
        cold_env,
        "daemon",
        "start",
        "--model",
        str(test_model_path),
        "-p",
        str(port),
        "--socket",
        socket,
        "--context-size",
        "1024",
    )
    assert started.returncode == 0, started.stderr
    assert f"IPC {socket}, HTTP http://127.0.0.1:{port}" in started.stdout
    env = {**cold_env, "MULLAMA_SOCKET": socket}  # where status and stop look for it
    status = json.loads(mullama(env, "daemon", "status", "--json").stdout)
    assert status["endpoints"]["http"] == f"http://127.0.0.1:{port}"
    assert [(m["name"], m["context_length"]) for m in status["loaded"]] == [
        (str(test_model_path), 1024)
    ]
    assert mullama(env, "daemon", "stop").returncode == 0


def test_logs_without_a_log_file(cold_env):
    result = mullama(cold_env, "daemon", "logs")
    assert result.returncode == 1
    assert result.stderr.startswith(f"Error: no daemon log at {cold_env['MULLAMA_LOG_FILE']}")


def test_a_daemon_that_fails_to_start_is_reported_with_its_log(cold_env, tmp_path):
    broken = tmp_path / "broken-mullama"
    broken.write_text("#!/bin/sh\necho 'boom: cannot start' >&2\nexit 3\n")
    broken.chmod(0o755)
    env = {**cold_env, "MULLAMA_BIN": str(broken)}
    result = mullama(env, "list")
    assert result.returncode == 1 and result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0] == SPAWNING
    assert lines[1] == "Error: the daemon exited during start-up (code 3): boom: cannot start"
    assert env["MULLAMA_LOG_FILE"] in lines[2]
    missing = mullama({**cold_env, "MULLAMA_BIN": str(tmp_path / "nope")}, "list")
    assert missing.returncode == 1 and "MULLAMA_BIN" in missing.stderr


def test_pull_and_run_auto_pull_from_a_cold_start(cold_env, fake_hub):  # noqa: F811
    fake_hub.add_repo("test/tiny-GGUF", {"tiny.Q4_K_M.gguf": make_gguf_bytes(padding=300_000)})
    fake_hub.add_repo("test/other-GGUF", {"other.Q4_K_M.gguf": make_gguf_bytes(padding=1000)})
    env = {**cold_env, "HF_ENDPOINT": fake_hub.url}
    pulled = mullama(env, "pull", "hf:test/tiny-GGUF")
    assert pulled.returncode == 0, pulled.stderr
    assert pulled.stdout == "success\n"
    assert SPAWNED in pulled.stderr and "downloading tiny.Q4_K_M.gguf" in pulled.stderr
    names = [m["name"] for m in json.loads(mullama(env, "list", "--json").stdout)["models"]]
    assert any("tiny" in n for n in names)

    # run pulls a model that is not local yet (this one has no weights, so it cannot load)
    ran = mullama(env, "run", "hf:test/other-GGUF", "hi")
    assert "pulling hf:test/other-GGUF..." in ran.stderr, ran.stderr
    *_, reason, hint = ran.stderr.splitlines()
    assert ran.returncode == 1 and reason.startswith("Error: could not load hf:test/other-GGUF")
    assert hint == f"The daemon log may say more: {env['MULLAMA_LOG_FILE']}."
    names = [m["name"] for m in json.loads(mullama(env, "list", "--json").stdout)["models"]]
    assert any("other" in n for n in names)
    missing = mullama(env, "pull", "hf:test/absent-GGUF")
    assert missing.returncode == 1
    assert missing.stderr.splitlines()[-1].startswith("Error: cannot access test/absent-GGUF")


def write_pid_file(env: dict[str, str], pid: int) -> None:
    record = {"pid": pid, "socket": env["MULLAMA_SOCKET"], "http": "http://127.0.0.1:1"}
    Path(env["MULLAMA_PID_FILE"]).write_text(json.dumps(record))
    socket_path(env).write_text("")  # a leftover socket file


def test_a_reused_pid_is_not_mistaken_for_the_daemon(cold_env):
    other = subprocess.Popen(["sleep", "120"])
    try:
        write_pid_file(cold_env, other.pid)
        stopped = mullama(cold_env, "daemon", "stop")
        assert stopped.returncode == 0 and "not running" in stopped.stderr
        assert other.poll() is None  # left alone
        assert (
            not Path(cold_env["MULLAMA_PID_FILE"]).exists() and not socket_path(cold_env).exists()
        )
    finally:
        other.kill()
        other.wait()


def test_stop_signals_a_daemon_that_does_not_answer(cold_env):
    hung = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "serve"])
    try:
        write_pid_file(cold_env, hung.pid)
        stopped = mullama(cold_env, "daemon", "stop")
        assert stopped.returncode == 0 and stopped.stdout == f"Daemon stopped (pid {hung.pid}).\n"
        assert hung.wait(10) == -signal.SIGTERM
    finally:
        if hung.poll() is None:
            hung.kill()
