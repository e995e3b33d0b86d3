"""Content-addressed blobs, the shard links of split GGUFs, the digest cache and the locks.

Blobs are written to ``partial/`` and renamed into ``blobs/`` when complete and verified, so a
``blobs/sha256-<hex>`` file is always whole. Writers take a per-name file lock; blob collection
and the final "blobs exist -> write manifest" step of pull/create/copy share the ``gc`` lock.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import msgspec

from mullama.engine.api import InvalidRequest
from mullama.engine.refs import name_to_filename

from .files import (
    ByteSource,
    atomic_write,
    disk_errors,
    drain,
    iter_chunks,
    normalize_digest,
    sha256_file,
)
from .manifest import Item


def download_lock(tag: str) -> str:
    return f"download-{tag[:40]}"


class Locks:
    """File locks under ``locks/`` (filelock: they hold across processes)."""

    def __init__(self, folder: Path):
        self.dir = folder
        folder.mkdir(parents=True, exist_ok=True)

    @contextmanager
    def named(self, name: str) -> Iterator[None]:
        from filelock import FileLock

        with FileLock(str(self.dir / f"{name}.lock")):
            yield

    @contextmanager
    def unless_held(self, name: str) -> Iterator[bool]:
        """Take the lock ``name`` if nobody holds it (True, held until the block ends);
        False at once when a live process (this one included) holds it."""
        from filelock import FileLock, Timeout

        lock = FileLock(str(self.dir / f"{name}.lock"), timeout=0)
        try:
            lock.acquire()
        except Timeout:
            yield False
            return
        try:
            yield True
        finally:
            lock.release()

    def download(self, tag: str) -> AbstractContextManager[None]:
        """Held by whoever writes the partial download ``partial/<tag>.part``."""
        return self.named(download_lock(tag))

    def model(self, key: str) -> AbstractContextManager[None]:
        """Held by whoever writes or removes the manifest of ``key``."""
        return self.named("name-" + name_to_filename(key))

    def gc(self) -> AbstractContextManager[None]:
        """Held while blobs are collected, and while a writer checks its blobs and writes."""
        return self.named("gc")


class Blobs:
    """``blobs/``, ``partial/`` and ``shards/`` of the store."""

    def __init__(self, root: Path):
        self.dir = root / "blobs"
        self.partial_dir = root / "partial"
        self.shards_dir = root / "shards"
        for d in (self.dir, self.partial_dir, self.shards_dir):
            d.mkdir(parents=True, exist_ok=True)

    def path(self, digest: str) -> Path:
        return self.dir / f"sha256-{normalize_digest(digest)}"

    def has(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def item_path(self, item: Item) -> Path:
        """Where the file of a manifest item is: its own path, or its blob."""
        return Path(item.path) if item.path is not msgspec.UNSET else self.path(item.digest)

    def add(self, source: ByteSource, expected_digest: str | None = None) -> str:
        """Store content as a blob and return its digest (``sha256:<hex>``).

        ``source`` is a path, bytes, a binary file object or an iterable of byte chunks.
        With ``expected_digest`` the content must match it or nothing is stored.
        """
        expected = normalize_digest(expected_digest) if expected_digest else ""
        if expected and self.has(expected):
            drain(source)
            return f"sha256:{expected}"
        fd, tmp = tempfile.mkstemp(prefix="upload-", suffix=".part", dir=self.partial_dir)
        h = hashlib.sha256()
        try:
            with disk_errors("storing the blob"), os.fdopen(fd, "wb") as out:
                for chunk in iter_chunks(source):
                    h.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            actual = h.hexdigest()
            if expected and actual != expected:
                raise InvalidRequest(
                    f"digest mismatch: expected sha256:{expected}, content is sha256:{actual}",
                    param="digest",
                )
            self.place(Path(tmp), actual)
            return f"sha256:{actual}"
        finally:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass

    def place(self, tmp: Path, hexdigest: str) -> Path:
        """Rename a complete, verified file into ``blobs/`` (or drop it: the blob is there)."""
        target = self.path(hexdigest)
        if target.exists():
            os.unlink(tmp)
        else:
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        return target

    def shard_folder(self, weights: list[Item]) -> Path:
        return self.shards_dir / f"sha256-{normalize_digest(weights[0].digest)}"

    def weights_path(self, weights: list[Item]) -> Path:
        """The file llama.cpp opens: the first shard, beside the others under their names."""
        if len(weights) > 1 and weights[0].stored:
            folder = self.shard_folder(weights)
            first = folder / Path(weights[0].file).name
            if not all((folder / Path(w.file).name).exists() for w in weights):
                if all(self.path(w.digest).exists() for w in weights):
                    self.link_shards(weights)
            return first
        return self.item_path(weights[0])

    def link_shards(self, weights: list[Item]) -> Path:
        """Hard links (symlinks where those fail) giving split GGUFs their original names."""
        folder = self.shard_folder(weights)
        folder.mkdir(parents=True, exist_ok=True)
        for w in weights:
            link = folder / Path(w.file).name
            blob = self.path(w.digest)
            if link.exists():
                try:
                    if os.path.samefile(link, blob):
                        continue
                except OSError:
                    pass
                os.unlink(link)
            tmp = folder / f".{link.name}.{os.getpid()}.{threading.get_ident()}"
            try:
                os.link(blob, tmp)
            except OSError:
                os.symlink(blob, tmp)
            os.replace(tmp, link)
        return folder


class DigestCache:
    """Verified SHA-256s in ``digests.json``, keyed by (path, size, mtime): hashed once."""

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        self._cache: dict[str, str] | None = None

    def _load(self) -> dict[str, str]:
        if self._cache is None:
            try:
                self._cache = msgspec.json.decode(self.path.read_bytes(), type=dict[str, str])
            except (OSError, msgspec.DecodeError):
                self._cache = {}
        return self._cache

    def digest(self, path: Path, cancel: threading.Event | None = None) -> str:
        """SHA-256 (hex) of ``path``; remembered by (path, size, mtime) so it is hashed once."""
        st = os.stat(path)
        prefix = f"{os.path.abspath(path)}|"
        cache_key = f"{prefix}{st.st_size}|{st.st_mtime_ns}"
        with self._lock:
            cached = self._load().get(cache_key)
        if cached:
            return cached
        digest = sha256_file(Path(path), cancel)
        with self._lock:
            cache = self._load()
            for k in [k for k in cache if k.startswith(prefix)]:  # stale entries of the path
                del cache[k]
            cache[cache_key] = digest
            try:
                atomic_write(self.path, msgspec.json.encode(cache))
            except OSError:
                pass
        return digest
