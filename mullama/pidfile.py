"""The daemon's PID file: one JSON record ``{pid, http, socket, started, version}``.

The daemon claims it at start (refusing when a live daemon holds it), writes it once it serves
and removes it when it stops; the CLI reads it to find, stop or clean up after a daemon. A PID
whose process is gone, or that another program reused, does not count as a daemon.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from pathlib import Path

import msgspec


class PidRecord(msgspec.Struct, kw_only=True):
    pid: int
    http: str = ""
    socket: str = ""
    started: str = ""
    version: str = ""


def read(path: Path) -> PidRecord | None:
    """The record in ``path``, or None (no file, or not a record; a bare PID is read too)."""
    try:
        data = path.read_bytes().strip()
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return None
    try:
        value = msgspec.json.decode(data)
        if isinstance(value, int) and not isinstance(value, bool):
            return PidRecord(pid=value)
        return msgspec.convert(value, PidRecord)
    except (msgspec.DecodeError, TypeError):
        return None


def write(path: Path, *, http: str, socket: str, version: str) -> PidRecord:
    """Record this process in ``path`` (written beside it and renamed: never half a record)."""
    record = PidRecord(
        pid=os.getpid(),
        http=http,
        socket=socket,
        started=dt.datetime.now(dt.UTC).isoformat(),
        version=version,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(msgspec.json.encode(record))
    os.replace(tmp, path)
    return record


def remove(path: Path) -> None:
    """Remove ``path`` if this process wrote it."""
    record = read(path)
    if record is not None and record.pid == os.getpid():
        with contextlib.suppress(OSError):
            path.unlink()


def process_alive(pid: int) -> bool:
    """True when ``pid`` runs and is not a zombie."""
    import psutil

    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return False


def daemon_alive(pid: int) -> bool:
    """True when ``pid`` is a live Mullama daemon (not another program that reused the PID)."""
    import psutil

    if not process_alive(pid):
        return False
    try:
        cmdline = psutil.Process(pid).cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False
    return "serve" in cmdline or any("mullama" in part for part in cmdline)


def running_daemon(path: Path) -> PidRecord | None:
    """The record of another live daemon holding ``path``, or None."""
    record = read(path)
    if record is None or record.pid == os.getpid() or not daemon_alive(record.pid):
        return None
    return record
