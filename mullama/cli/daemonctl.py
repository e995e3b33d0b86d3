"""Daemon lifecycle for the CLI: ping, auto-spawn, stop, stale-file clean-up.

Auto-spawn takes an exclusive lock on ``<pid_file>.lock`` and pings again under
it, so two commands started at once spawn one daemon: the second finds the first's
daemon answering. A PID file whose process is gone, and the socket file it left,
are removed before a new daemon starts.

The lock and the log are opened without following symlinks and only when they are this
user's (see :mod:`mullama.safefiles`); a daemon started here gets the API key in its
environment, never on its command line, where every user could read it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from mullama import pidfile
from mullama.config import Settings
from mullama.engine.api import Liveness, Unavailable
from mullama.ipc.client import RemoteEngine
from mullama.pidfile import daemon_alive, process_alive
from mullama.safefiles import (
    UnsafeFile,
    append_private,
    open_private,
    prepare_parent,
    read_private,
    remove_if_mine,
)

from .output import CliError, info

POLL = 0.1


def _socket_path(settings: Settings) -> Path | None:
    return Path(settings.socket[len("ipc://") :]) if settings.socket.startswith("ipc://") else None


@contextlib.contextmanager
def runtime_files(settings: Settings):
    """An unsafe runtime file or folder (a symlink, another user's) as a CLI error."""
    try:
        yield
    except UnsafeFile as exc:
        raise CliError(
            str(exc),
            "Remove it if it is yours, or set MULLAMA_RUNTIME_DIR (or MULLAMA_PID_FILE, "
            "MULLAMA_LOG_FILE, MULLAMA_SOCKET) to a place of your own.",
        ) from None


def remote(settings: Settings, **kwargs) -> RemoteEngine:
    """A RemoteEngine on the daemon of ``settings``, sending its API key."""
    return RemoteEngine(settings.socket, api_key=settings.api_key, **kwargs)


def clean_stale(settings: Settings) -> list[str]:
    """Remove the PID and socket files of a daemon that is no longer running (only files of
    this user: another user's stay, and the daemon start then says so)."""
    removed: list[str] = []
    record = pidfile.read(settings.pid_file)
    if record is not None and daemon_alive(record.pid):
        return removed
    if remove_if_mine(settings.pid_file):
        removed.append(str(settings.pid_file))
    path = _socket_path(settings)
    if path is not None and not _listening(path) and remove_if_mine(path):
        removed.append(str(path))
    return removed


def _listening(path: Path) -> bool:
    """Something accepts connections on the socket file ``path`` (a daemon still starting)."""
    import socket

    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(str(path))
    except OSError:
        return False
    finally:
        probe.close()
    return True


async def ping(
    settings: Settings, timeout: float = 2.0, check_version: bool = True
) -> Liveness | None:
    """The daemon's ping answer, or None when nothing answers at the socket."""
    engine = remote(settings, ping_timeout=timeout)
    try:
        return await engine.ping(check_version=check_version)
    except Unavailable:
        return None
    finally:
        await engine.close()


def spawn_command(settings: Settings, options: Sequence[str] = ()) -> list[str]:
    if settings.bin:
        if not os.access(settings.bin, os.X_OK):
            raise CliError(
                f"MULLAMA_BIN={settings.bin} is not an executable file",
                "Point MULLAMA_BIN at the mullama executable, or unset it.",
            )
        program = [settings.bin]
    else:
        program = [sys.executable, "-m", "mullama"]
    return program + ["serve", "--headless", "--socket", settings.socket, *options]


def spawn_env(settings: Settings) -> dict[str, str]:
    """The daemon's environment: ours, with the API key (wherever it came from)."""
    env = dict(os.environ)
    if settings.api_key:
        env["MULLAMA_API_KEY"] = settings.api_key
    return env


def spawn(settings: Settings, options: Sequence[str] = ()) -> subprocess.Popen:
    """Start a daemon in the background, its output appended to the log file."""
    with runtime_files(settings):
        prepare_parent(settings.log_file, settings.runtime_dir)
        log = append_private(settings.log_file, "daemon log")
    try:
        return subprocess.Popen(
            spawn_command(settings, options),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=spawn_env(settings),
        )
    finally:
        os.close(log)


def _last_log_line(settings: Settings) -> str:
    try:
        text = read_private(settings.log_file, "daemon log").decode(errors="replace")
        lines = [ln for ln in text.splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1].strip()[:200] if lines else ""


async def wait_ready(settings: Settings, proc: subprocess.Popen | None, timeout: float) -> Liveness:
    deadline = time.monotonic() + timeout
    hint = f"See the daemon log: {settings.log_file} (or run `mullama daemon logs`)."
    while True:
        answer = await ping(settings, timeout=1.0)
        if answer is not None:
            return answer
        if proc is not None and proc.poll() is not None:
            last = _last_log_line(settings)
            raise CliError(
                f"the daemon exited during start-up (code {proc.returncode})"
                + (f": {last}" if last else ""),
                hint,
            )
        if time.monotonic() > deadline:
            raise CliError(
                f"the daemon did not answer at {settings.socket} within {timeout:.0f}s", hint
            )
        await asyncio.sleep(POLL)


@contextlib.contextmanager
def spawn_lock(settings: Settings):
    """An exclusive lock held while deciding whether to start a daemon."""
    try:
        import fcntl
    except ImportError:  # Windows: no flock; the ping under start-up still narrows the race
        yield
        return
    path = settings.pid_file.with_name(settings.pid_file.name + ".lock")
    with runtime_files(settings):
        prepare_parent(path, settings.runtime_dir)
        fd = open_private(path, os.O_RDWR | os.O_CREAT, "spawn lock")
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


async def start_daemon(
    settings: Settings, *, announce: bool = True, options: Sequence[str] = ()
) -> tuple[Liveness, bool]:
    """Ping, and start a daemon when none answers (with ``options`` of ``serve``).
    Returns (ping answer, whether we started it)."""
    answer = await ping(settings)
    if answer is not None:
        return answer, False
    with spawn_lock(settings):
        answer = await ping(settings)
        if answer is not None:
            return answer, False
        record = pidfile.read(settings.pid_file)
        if record is not None and daemon_alive(record.pid) and record.socket == settings.socket:
            # a daemon is starting (or hung): give it the start-up time before judging
            return await wait_ready(settings, None, settings.spawn_timeout), False
        clean_stale(settings)
        if announce:
            info("Daemon not running, starting it automatically...")
        proc = spawn(settings, options)
        answer = await wait_ready(settings, proc, settings.spawn_timeout)
        if announce:
            info("Daemon started successfully, connecting...")
        return answer, True


async def connect(settings: Settings, *, spawn_daemon: bool = True) -> RemoteEngine:
    """A RemoteEngine on a daemon that answers, started first if need be."""
    engine = remote(settings)
    try:
        await engine.ping()
        return engine
    except Unavailable:
        if not spawn_daemon:
            await engine.close()
            raise CliError(
                f"the Mullama daemon is not running (no answer at {settings.socket})",
                "Start it with `mullama daemon start` (or `mullama serve`).",
            ) from None
    await start_daemon(settings)
    try:
        await engine.ping()
    except Unavailable:
        await engine.close()
        raise
    return engine


async def stop_daemon(settings: Settings, timeout: float = 30.0) -> int | None:
    """Stop the daemon gracefully (SIGKILL after ``timeout``); its PID, or None if none ran."""
    answer = await ping(settings, check_version=False)
    record = pidfile.read(settings.pid_file)
    if answer is not None:
        pid = answer.pid
        engine = remote(settings)
        try:
            await engine.shutdown()
        except Unavailable:
            os.kill(pid, signal.SIGTERM)
        finally:
            await engine.close()
    elif record is not None and daemon_alive(record.pid):
        pid = record.pid  # running but not answering: signal it
        os.kill(pid, signal.SIGTERM)
    else:
        clean_stale(settings)
        return None
    deadline = time.monotonic() + timeout
    while process_alive(pid) and time.monotonic() < deadline:
        await asyncio.sleep(POLL)
    if process_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        while process_alive(pid) and time.monotonic() < deadline + 5:
            await asyncio.sleep(POLL)
    clean_stale(settings)
    return pid
