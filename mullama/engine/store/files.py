"""File helpers for the model store: digests, atomic writes, byte sources."""

from __future__ import annotations

import datetime as _dt
import errno
import hashlib
import os
import re
import tempfile
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, cast

from mullama.engine.api import Cancelled, InsufficientStorage, InvalidRequest

HEX64 = re.compile(r"^[0-9a-f]{64}$")

#: what :meth:`ModelStore.add_blob` accepts: a path, bytes, a binary file or byte chunks
ByteSource = str | Path | bytes | bytearray | memoryview | IO[bytes] | Iterable[bytes]


#: a write failed for want of room: the disk or a quota is full, a file size limit was reached
DISK_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def full_disk(what: str, exc: OSError) -> InsufficientStorage:
    return InsufficientStorage(
        f"{what} failed: not enough disk space for the model store "
        f"({exc.strerror or exc}); free some space and try again"
    )


@contextmanager
def disk_errors(what: str) -> Iterator[None]:
    """A write that finds the disk full raises InsufficientStorage (507), naming ``what``."""
    try:
        yield
    except OSError as exc:
        if exc.errno in DISK_FULL:
            raise full_disk(what, exc) from None
        raise


def now_iso() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def normalize_digest(digest: str) -> str:
    """``sha256:<hex>`` / ``sha256-<hex>`` / ``<hex>`` -> ``<hex>`` (lower case); else InvalidRequest."""
    d = (digest or "").strip().lower()
    for prefix in ("sha256:", "sha256-"):
        if d.startswith(prefix):
            d = d[len(prefix) :]
    if not HEX64.match(d):
        raise InvalidRequest(
            f"invalid digest {digest!r}: expected sha256:<64 hex digits>", param="digest"
        )
    return d


def sha256_file(path: Path, cancel: threading.Event | None = None) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(4 << 20), b""):
            if cancel is not None and cancel.is_set():
                raise Cancelled("cancelled while hashing")
            h.update(block)
    return h.hexdigest()


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to a temp file beside ``path``, fsync it, rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def abs_path(path: str, base: Path) -> Path:
    p = Path(path).expanduser()
    return (p if p.is_absolute() else base / p).resolve()


def iter_chunks(source: ByteSource) -> Iterator[bytes]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        yield bytes(source)
    elif isinstance(source, (str, Path)):
        with open(source, "rb") as f:
            yield from iter(lambda: f.read(1 << 20), b"")
    elif hasattr(source, "read"):
        reader = cast("IO[bytes]", source)
        yield from iter(lambda: reader.read(1 << 20), b"")
    else:
        for chunk in source:
            yield bytes(chunk)


def drain(source: ByteSource) -> None:
    """Consume a streamed source (the client's upload) without storing it."""
    if not isinstance(source, (bytes, bytearray, memoryview, str, Path)):
        for _ in iter_chunks(source):
            pass
