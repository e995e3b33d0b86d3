"""The daemon's PID file: one JSON record ``{pid, http, socket, started, version}``.

The daemon claims it at start (refusing when a live daemon holds it), writes it once it serves
and removes it when it stops; the CLI reads it to find, stop or clean up after a daemon. A PID
whose process is gone, or that another program or user reused, does not count as a daemon.
A PID file that is a symlink or belongs to another user is ignored (with a warning), never
followed: in a shared directory such as ``/tmp`` anyone could have planted it.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from pathlib import Path

import msgspec

from .safefiles import UnsafeFile, my_uid, read_private, remove_if_mine, write_replacing

log = logging.getLogger("mullama.pidfile")


class PidRecord(msgspec.Struct, kw_only=True):
    pid: int
    http: str = ""
    socket: str = ""
    started: str = ""
    version: str = ""


def read(path: Path) -> PidRecord | None:
    """The record in ``path``, or None (no file, or not a record; a bare PID is read too)."""
    try:
        data = read_private(path, "PID file").strip()
    except UnsafeFile as exc:
        log.warning("%s: ignoring it", exc)
        return None
    except (FileNotFoundError, NotADirectoryError, PermissionError, IsADirectoryError):
        return None
    try:
        value = msgspec.json.decode(data)
        if isinstance(value, int) and not isinstance(value, bool):
            return PidRecord(pid=value)
        return msgspec.convert(value, PidRecord)
    except (msgspec.DecodeError, TypeError):
        return None


def write(path: Path, *, http: str, socket: str, version: str) -> PidRecord:
    """Record this process in ``path`` (written beside it and renamed: never half a record,
    never through a file someone planted)."""
    record = PidRecord(
        pid=os.getpid(),
        http=http,
        socket=socket,
        started=dt.datetime.now(dt.UTC).isoformat(),
        version=version,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    write_replacing(path, msgspec.json.encode(record))
    return record


def remove(path: Path) -> None:
    """Remove ``path`` if this process wrote it."""
    record = read(path)
    if record is not None and record.pid == os.getpid():
        remove_if_mine(path)


def process_alive(pid: int) -> bool:
    """True when ``pid`` runs and is not a zombie."""
    import psutil

    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return False


def daemon_alive(pid: int) -> bool:
    """True when ``pid`` is a live Mullama daemon of this user (not another program, or
    another user's process, that reused the PID)."""
    import psutil

    if not process_alive(pid):
        return False
    try:
        process = psutil.Process(pid)
        if my_uid() is not None and process.uids().real != my_uid():
            return False
        cmdline = process.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False
    return "serve" in cmdline or any("mullama" in part for part in cmdline)


def running_daemon(path: Path) -> PidRecord | None:
    """The record of another live daemon holding ``path``, or None."""
    record = read(path)
    if record is None or record.pid == os.getpid() or not daemon_alive(record.pid):
        return None
    return record
