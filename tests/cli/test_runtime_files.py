"""The daemon's runtime files (socket, PID file, spawn lock, log): in a private runtime dir by
default, never opened through a planted symlink, and trusted only when they are this user's.

Files of another user are made for real when the tests run as root (chown, a fake daemon
that drops to ``nobody``); otherwise through the one seam the checks share, ``os.getuid``
answering another uid, so that our own files look like someone else's.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mullama import pidfile
from mullama.cli.daemonctl import clean_stale, spawn, spawn_lock
from mullama.cli.output import CliError
from mullama.config import default_runtime_dir, load_settings
from mullama.engine.api import EngineError
from mullama.ipc.client import RemoteEngine, UntrustedSocket
from mullama.safefiles import UnsafeFile, private_dir
from tests.cli.conftest import mullama, pid_of
from tests.helpers import settings_env

NOBODY = 65534
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="making another user's files needs root")


@pytest.fixture
def someone_else(monkeypatch):
    """From here on, the files this test made belong to "another user"."""
    real = os.getuid()
    monkeypatch.setattr(os, "getuid", lambda: real + 1)


def runtime_settings(tmp_path: Path):
    return load_settings(env=settings_env(tmp_path))


# ------------------------------------------------------------ where they live


def test_defaults_live_in_the_users_runtime_dir(tmp_path, monkeypatch):
    xdg = tmp_path / "xdg"
    xdg.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(xdg))
    s = load_settings(env={"MULLAMA_CONFIG_DIR": str(tmp_path)})
    assert s.runtime_dir == xdg / "mullama" == default_runtime_dir()
    assert s.socket == f"ipc://{xdg}/mullama/mullama.sock"
    assert (s.pid_file, s.log_file) == (xdg / "mullama/mullamad.pid", xdg / "mullama/mullamad.log")

    monkeypatch.delenv("XDG_RUNTIME_DIR")
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    s = load_settings(env={"MULLAMA_CONFIG_DIR": str(tmp_path)})
    assert s.runtime_dir == tmp_path / f"mullama-{os.getuid()}"
    assert s.socket == f"ipc://{tmp_path}/mullama-{os.getuid()}/mullama.sock"


def test_a_runtime_dir_setting_moves_them_and_explicit_paths_stay(tmp_path):
    env = {"MULLAMA_CONFIG_DIR": str(tmp_path), "MULLAMA_RUNTIME_DIR": str(tmp_path / "run")}
    s = load_settings(env=env)
    assert s.socket == f"ipc://{tmp_path}/run/mullama.sock"
    assert load_settings(env={**env, "MULLAMA_RUNTIME_DIR": ""}).runtime_dir == (
        default_runtime_dir()
    )
    assert s.pid_file == tmp_path / "run" / "mullamad.pid"
    # the guide's /tmp paths remain available as explicit settings
    s = load_settings(
        env={
            **env,
            "MULLAMA_SOCKET": "ipc:///tmp/mullama.sock",
            "MULLAMA_LOG_FILE": "/tmp/mullamad.log",
            "MULLAMA_PID_FILE": "/tmp/mullamad.pid",
        }
    )
    assert (s.socket, s.log_file, s.pid_file) == (
        "ipc:///tmp/mullama.sock",
        Path("/tmp/mullamad.log"),
        Path("/tmp/mullamad.pid"),
    )


def test_an_xdg_runtime_dir_of_another_user_is_not_used(tmp_path, monkeypatch, someone_else):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    assert default_runtime_dir() == tmp_path / "tmp" / f"mullama-{os.getuid()}"


# ------------------------------------------------------------ the runtime dir


def test_the_runtime_dir_is_created_private(tmp_path):
    path = private_dir(tmp_path / "a" / "run")
    assert stat.S_IMODE(path.stat().st_mode) == 0o700
    assert private_dir(path) == path  # again: fine


def test_a_runtime_dir_open_to_others_is_refused(tmp_path):
    path = tmp_path / "run"
    path.mkdir(mode=0o755)
    path.chmod(0o755)
    with pytest.raises(UnsafeFile, match=f"mode 0755.*chmod 700 {path}"):
        private_dir(path)


def test_a_runtime_dir_that_is_a_symlink_is_refused(tmp_path):
    (tmp_path / "elsewhere").mkdir(mode=0o700)
    (tmp_path / "run").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(UnsafeFile, match="not a directory"):
        private_dir(tmp_path / "run")


def test_a_runtime_dir_of_another_user_is_refused(tmp_path, someone_else):
    (tmp_path / "run").mkdir(mode=0o700)
    with pytest.raises(UnsafeFile, match="belongs to another user.*MULLAMA_RUNTIME_DIR"):
        private_dir(tmp_path / "run")


@as_root
def test_a_runtime_dir_someone_else_created_first_is_refused(tmp_path):
    (tmp_path / "run").mkdir(mode=0o700)
    os.chown(tmp_path / "run", NOBODY, NOBODY)
    with pytest.raises(UnsafeFile, match=f"uid {NOBODY}"):
        private_dir(tmp_path / "run")


def test_the_cli_says_clearly_when_the_runtime_dir_is_not_private(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    run.chmod(0o777)
    env = {**os.environ, **settings_env(tmp_path)}
    for name in ("MULLAMA_SOCKET", "MULLAMA_LOG_FILE", "MULLAMA_PID_FILE"):
        env.pop(name)
    result = mullama(env, "list")
    assert result.returncode == 1
    assert f"runtime directory {run} is open to other users" in result.stderr
    assert "Traceback" not in result.stderr


# ------------------------------------------------------------ planted symlinks


def test_a_symlink_at_the_log_is_not_followed(tmp_path):
    target = tmp_path / "victim"
    s = runtime_settings(tmp_path)
    s.log_file.symlink_to(target)
    with pytest.raises(CliError, match="is a symlink"):
        spawn(s)
    assert not target.exists()  # open(..., "ab") created it, as root anywhere
    target.write_text("precious\n")
    with pytest.raises(CliError, match="is a symlink"):
        spawn(s)
    assert target.read_text() == "precious\n"


def test_a_symlink_at_the_spawn_lock_is_not_followed(tmp_path):
    s = runtime_settings(tmp_path)
    target = tmp_path / "victim"
    lock = s.pid_file.with_name(s.pid_file.name + ".lock")
    lock.symlink_to(target)
    with pytest.raises(CliError, match="spawn lock .* is a symlink"), spawn_lock(s):
        pass
    assert not target.exists()


def test_the_spawn_lock_is_private(tmp_path):
    s = runtime_settings(tmp_path)
    with spawn_lock(s):
        lock = s.pid_file.with_name(s.pid_file.name + ".lock")
        assert stat.S_IMODE(lock.stat().st_mode) == 0o600


def test_a_symlink_at_the_pid_files_temp_name_is_not_followed(tmp_path):
    target = tmp_path / "victim"
    target.write_text("precious\n")
    path = tmp_path / "mullamad.pid"
    path.with_name(path.name + ".tmp").symlink_to(target)  # the name it used to write through
    pidfile.write(path, http="h", socket="s", version="1")
    assert target.read_text() == "precious\n"
    assert pidfile.read(path).pid == os.getpid()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_symlink_at_the_pid_file_is_ignored_and_replaced_not_followed(tmp_path, caplog):
    target = tmp_path / "victim"
    target.write_text(json.dumps({"pid": os.getpid()}))
    path = tmp_path / "mullamad.pid"
    path.symlink_to(target)
    with caplog.at_level(logging.WARNING, logger="mullama.pidfile"):
        assert pidfile.read(path) is None
    assert "is a symlink" in caplog.text
    pidfile.write(path, http="h", socket="s", version="1")
    assert not path.is_symlink() and target.read_text() == json.dumps({"pid": os.getpid()})


# ------------------------------------------------------------ another user's PID file


def daemonish() -> subprocess.Popen:
    """A process whose command line looks like a daemon's, once it has one: until the child
    has exec'd, /proc shows the parent's command line (a race a busy machine lost)."""
    import psutil

    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "serve"])
    deadline = time.monotonic() + 30
    while "serve" not in psutil.Process(proc.pid).cmdline():
        assert time.monotonic() < deadline, "the child never showed its command line"
        time.sleep(0.01)
    return proc


def test_a_pid_file_of_another_user_is_ignored_with_a_message(tmp_path, caplog, monkeypatch):
    path = tmp_path / "mullamad.pid"
    proc = daemonish()
    try:
        path.write_text(json.dumps({"pid": proc.pid, "http": "http://h"}))
        assert pidfile.running_daemon(path) is not None  # ours: it blocks a second daemon
        real = os.getuid()
        monkeypatch.setattr(os, "getuid", lambda: real + 1)
        with caplog.at_level(logging.WARNING, logger="mullama.pidfile"):
            assert pidfile.running_daemon(path) is None  # someone else's: it blocks nothing
        assert f"the PID file {path} belongs to another user (uid {real}): ignoring it" in (
            caplog.text
        )
    finally:
        proc.kill()
        proc.wait()


@as_root
@pytest.mark.slow
def test_a_foreign_pid_file_does_not_block_serve(tmp_path):
    env = {**os.environ, **settings_env(tmp_path)}
    proc = daemonish()
    try:
        path = Path(env["MULLAMA_PID_FILE"])
        path.write_text(json.dumps({"pid": proc.pid}))
        os.chown(path, NOBODY, NOBODY)
        with contextlib.ExitStack() as stack:
            from tests.helpers import run_daemon

            daemon = stack.enter_context(run_daemon(tmp_path, env=env))
            assert "already running" not in daemon.log()
            assert f"{path} belongs to another user (uid {NOBODY}): ignoring it" in daemon.log()
            assert pid_of(env) == daemon.proc.pid
    finally:
        proc.kill()
        proc.wait()


def test_a_pid_file_naming_another_users_process_is_no_daemon(tmp_path, monkeypatch):
    proc = daemonish()
    try:
        assert pidfile.daemon_alive(proc.pid)
        real = os.getuid()
        monkeypatch.setattr(os, "getuid", lambda: real + 1)
        assert not pidfile.daemon_alive(proc.pid)  # not ours to trust, nor to signal
    finally:
        proc.kill()
        proc.wait()


def test_clean_stale_removes_only_this_users_files(tmp_path, someone_else):
    s = runtime_settings(tmp_path)
    s.pid_file.write_text(json.dumps({"pid": 1}))
    assert clean_stale(s) == []  # "another user's": left alone, and no crash
    assert s.pid_file.exists()


def test_clean_stale_keeps_a_socket_something_listens_on(tmp_path):
    s = runtime_settings(tmp_path)
    path = s.socket[len("ipc://") :]
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    try:
        assert clean_stale(s) == [path]  # bound, nobody listening: a dead daemon's leftover
        server.close()
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(path)
        server.listen(1)  # a daemon that is still loading its models
        assert clean_stale(s) == [] and os.path.exists(path)
    finally:
        server.close()


# ------------------------------------------------------------ another user's socket


def listener(tmp_path: Path):
    """A real nng Rep0 listening on an ipc socket in ``tmp_path``, and its address."""
    import pynng

    address = f"ipc://{tmp_path / 'mullama.sock'}"
    return pynng.Rep0(listen=address, recv_timeout=300), address


async def test_the_client_refuses_a_socket_file_of_another_user(tmp_path, someone_else):
    import pynng

    rep, address = listener(tmp_path)
    engine = RemoteEngine(address, api_key="secret")
    try:
        with pytest.raises(UntrustedSocket, match="belongs to another user .*MULLAMA_SOCKET"):
            await engine.ping()
        with pytest.raises(pynng.Timeout):
            rep.recv()  # nothing was sent
    finally:
        await engine.close()
        rep.close()


async def test_the_client_refuses_a_peer_process_of_another_user(tmp_path, monkeypatch):
    import pynng

    import mullama.ipc.client as client

    rep, address = listener(tmp_path)
    real = os.getuid()
    monkeypatch.setattr(client, "foreign_owner", lambda st: None)  # the file looks fine
    monkeypatch.setattr(os, "getuid", lambda: real + 1)  # but the listener is "someone else"
    engine = RemoteEngine(address, api_key="secret")
    try:
        with pytest.raises(UntrustedSocket, match=f"runs as another user \\(uid {real}\\)"):
            await engine.ping()
        with pytest.raises(pynng.Timeout):
            rep.recv()  # the key never reached it
    finally:
        await engine.close()
        rep.close()


def fake_daemon_as(uid: int, path: Path) -> tuple[int, int]:
    """A process of ``uid`` listening at ``path`` that speaks nng's ipc handshake (as a Rep0)
    and reports on a pipe whether any request reached it. Returns (pid, read end)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover (the child)
        try:
            server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            server.bind(str(path))
            os.chown(path, uid, uid)
            os.setgid(uid)
            os.setuid(uid)
            server.listen(8)  # after setuid: the peer credentials a client sees are uid's
            os.write(write, b"L")
            while True:
                conn, _ = server.accept()
                conn.sendall(b"\x00SP\x00\x00\x31\x00\x00")  # SP header, protocol Rep0
                conn.settimeout(2)
                received = b""
                with contextlib.suppress(OSError):
                    while chunk := conn.recv(65536):
                        received += chunk
                if len(received) > 8:  # more than the client's own header: a request
                    os.write(write, b"M")
                conn.close()
        finally:
            os._exit(0)
    os.close(write)
    assert os.read(read, 1) == b"L"
    return pid, read


@as_root
@pytest.mark.parametrize("disguised", [False, True])
async def test_a_fake_daemon_of_another_user_gets_nothing(tmp_path, monkeypatch, disguised):
    import mullama.ipc.client as client

    path = tmp_path / "mullama.sock"
    pid, report = fake_daemon_as(NOBODY, path)
    if disguised:  # a file that looks like ours: the peer's credentials still tell
        monkeypatch.setattr(client, "foreign_owner", lambda st: None)
    engine = RemoteEngine(f"ipc://{path}", api_key="secret")
    try:
        with pytest.raises(UntrustedSocket, match=f"uid {NOBODY}"):
            await engine.ping()
    finally:
        await engine.close()
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    os.set_blocking(report, False)
    with contextlib.suppress(BlockingIOError):
        assert b"M" not in os.read(report, 100)
    os.close(report)


@as_root
def test_the_cli_refuses_another_users_socket(tmp_path):
    env = {**os.environ, **settings_env(tmp_path)}
    path = Path(env["MULLAMA_SOCKET"][len("ipc://") :])
    pid, report = fake_daemon_as(NOBODY, path)
    try:
        result = mullama(env, "list")
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(report)
    assert result.returncode == 1
    assert f"the IPC socket {path} belongs to another user (uid {NOBODY})" in result.stderr
    assert "starting it automatically" not in result.stderr


def test_the_daemon_will_not_replace_another_users_socket(tmp_path, someone_else):
    from mullama.ipc.server import _claim_socket_path

    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(tmp_path / "stale.sock"))  # not listening: stale, but not ours
    try:
        with pytest.raises(EngineError, match="belongs to another user"):
            _claim_socket_path(str(tmp_path / "stale.sock"))
        assert (tmp_path / "stale.sock").exists()
    finally:
        server.close()


# ------------------------------------------------------------ a daemon in the runtime dir


@pytest.mark.slow
def test_an_auto_started_daemon_keeps_its_files_private(tmp_path):
    env = {**os.environ, **settings_env(tmp_path)}
    for name in ("MULLAMA_SOCKET", "MULLAMA_LOG_FILE", "MULLAMA_PID_FILE"):
        env.pop(name)
    run = tmp_path / "run"
    try:
        result = mullama(env, "ps")
        assert result.returncode == 0, result.stderr
        assert stat.S_IMODE(run.stat().st_mode) == 0o700
        sock = run / "mullama.sock"
        assert stat.S_ISSOCK(sock.stat().st_mode) and stat.S_IMODE(sock.stat().st_mode) == 0o600
        for name in ("mullamad.pid", "mullamad.pid.lock", "mullamad.log"):
            assert stat.S_IMODE((run / name).stat().st_mode) == 0o600, name
        assert "IPC listening on ipc://" in (run / "mullamad.log").read_text()
        assert sorted(p.name for p in run.iterdir()) == [
            "mullama.sock",
            "mullamad.log",
            "mullamad.pid",
            "mullamad.pid.lock",
        ]
    finally:
        mullama(env, "daemon", "stop")
