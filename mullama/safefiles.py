"""Files other users must not be able to plant or read: the runtime dir and what it holds.

The daemon's socket, PID file, spawn lock and log live in a private runtime directory
(:func:`private_dir`: 0700, ours, not a symlink). They may also be configured into a shared
directory such as ``/tmp``; so every one is opened without following a symlink at its last
component, and trusted only when it is a regular file this user owns (:func:`open_private`).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
CLOEXEC = getattr(os, "O_CLOEXEC", 0)
POSIX = hasattr(os, "getuid")


class UnsafeFile(OSError):
    """A runtime file or directory another user could control: refused, with the reason."""


def my_uid() -> int | None:
    return os.getuid() if POSIX else None


def foreign_owner(st: os.stat_result) -> int | None:
    """The owner's uid when it is not this user, else None."""
    uid = my_uid()
    return st.st_uid if uid is not None and st.st_uid != uid else None


def private_dir(path: Path) -> Path:
    """``path`` as a directory only this user can enter: created 0700 when missing; refused
    when it is a symlink, not a directory, someone else's, or open to group or others."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise UnsafeFile(f"the runtime directory {path} is not a directory (a symlink?)")
    owner = foreign_owner(st)
    if owner is not None:
        raise UnsafeFile(
            f"the runtime directory {path} belongs to another user (uid {owner}); "
            "set MULLAMA_RUNTIME_DIR to a directory of your own"
        )
    if POSIX and st.st_mode & 0o077:
        raise UnsafeFile(
            f"the runtime directory {path} is open to other users "
            f"(mode {stat.S_IMODE(st.st_mode):04o}); run `chmod 700 {path}`"
        )
    return path


def prepare_parent(path: Path, runtime_dir: Path) -> None:
    """Create the folder ``path`` goes in (checked private when it is the runtime dir)."""
    if path.parent == runtime_dir:
        private_dir(runtime_dir)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)


def open_private(path: Path, flags: int, what: str = "file") -> int:
    """``os.open`` of a regular file of ours (created 0600), never through a symlink."""
    try:
        fd = os.open(path, flags | NOFOLLOW | CLOEXEC, 0o600)
    except OSError as exc:
        if _is_symlink(path):
            raise UnsafeFile(f"the {what} {path} is a symlink (not followed)") from None
        raise exc
    try:
        st = os.fstat(fd)
        owner = foreign_owner(st)
        if owner is not None:
            raise UnsafeFile(f"the {what} {path} belongs to another user (uid {owner})")
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeFile(f"the {what} {path} is not a regular file")
    except BaseException:
        os.close(fd)
        raise
    return fd


def append_private(path: Path, what: str = "log") -> int:
    """A descriptor appending to ``path`` (see :func:`open_private`)."""
    return open_private(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, what)


def read_private(path: Path, what: str = "file") -> bytes:
    """The bytes of ``path`` (see :func:`open_private`)."""
    fd = open_private(path, os.O_RDONLY, what)
    with os.fdopen(fd, "rb") as handle:
        return handle.read()


def write_replacing(path: Path, data: bytes) -> None:
    """Write ``data`` to a new private file beside ``path`` (O_EXCL, a random name, so nothing
    planted is followed or reused), then rename it over ``path``: never half a file."""
    tmp = path.with_name(f"{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | NOFOLLOW | CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def remove_if_mine(path: Path) -> bool:
    """Unlink ``path`` (a file, socket or symlink) when this user owns it; True if removed."""
    try:
        st = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return False
    if foreign_owner(st) is not None:
        return False
    try:
        os.unlink(path)
    except OSError:
        return False
    return True


def _is_symlink(path: Path) -> bool:
    try:
        return stat.S_ISLNK(os.lstat(path).st_mode)
    except OSError:
        return False
