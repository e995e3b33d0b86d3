"""Blob collection for the model store: after a delete, and (at daemon start) a prune.

A blob counts as referenced when any manifest mentions its digest (weights, projector, adapter
paths, sources: erring that way only ever keeps a file). ``collect`` removes
the blobs of one deleted manifest that nothing else references; ``prune`` removes every
unreferenced blob, such as GGUF files uploaded to ``/api/blobs`` that no ``/api/create`` used,
and leftovers of a crash. Both run under the store's gc lock, which pull, create and copy also
hold while they check their blobs and write a manifest, so a blob in use is never removed.

``prune`` also clears ``partial/`` of what a killed process left: an interrupted download
(``<tag>.part`` and its ``.json`` note) is what a later pull resumes from, so it is kept for a
day and never taken while a pull holds its download lock (in any process: the lock is an
flock, gone with its holder, even after kill -9); an upload or a packaged model being written
cannot be resumed, and goes after the grace period like a blob (a live writer keeps its
modification time fresh).
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

from .blobs import Blobs, Locks, download_lock
from .files import normalize_digest
from .manifest import Manifest

BLOB_NAME = re.compile(r"sha256-([0-9a-f]{64})")
DOWNLOAD_NAME = re.compile(r"([0-9a-f]{64})\.part(?:\.json)?")
RESUMABLE_SECONDS = 24 * 3600.0
DIGEST_MENTION = re.compile(r"sha256[-:]([0-9a-fA-F]{64})")


def referenced_digests(manifests_dir: Path) -> set[str]:
    """Every digest any manifest mentions, however: weights and projectors (stored or by path,
    e.g. a model created from an uploaded blob's file), adapter paths, sources. Erring towards
    'referenced' only ever keeps a file."""
    found: set[str] = set()
    for path in manifests_dir.glob("*.json"):
        try:
            found.update(
                d.lower() for d in DIGEST_MENTION.findall(path.read_text(encoding="utf-8"))
            )
        except OSError:
            continue
    return found


def collect(blobs: Blobs, manifests_dir: Path, removed: Manifest) -> None:
    """Delete the blobs of ``removed`` that no remaining manifest references (gc lock held):
    stored weights and projector, and files it used straight from the blob folder (a model
    created from an uploaded blob). The user's own files it was created from are never touched."""
    referenced = referenced_digests(manifests_dir)
    for item in removed.items():
        if not item.stored:
            path = blobs.item_path(item)
            match = BLOB_NAME.fullmatch(path.name)
            digest = (
                match.group(1) if match and path.parent.resolve() == blobs.dir.resolve() else ""
            )
        else:
            digest = normalize_digest(item.digest) if item.digest else ""
        if digest and digest not in referenced:
            _unlink(blobs.path(digest))
    weights = removed.weights
    if len(weights) > 1 and weights[0].stored:
        first = normalize_digest(weights[0].digest)
        if first not in referenced:
            shutil.rmtree(blobs.shard_folder(weights), ignore_errors=True)


def prune(
    blobs: Blobs,
    manifests_dir: Path,
    locks: Locks,
    grace_seconds: float = 3600.0,
    resumable_seconds: float = RESUMABLE_SECONDS,
) -> tuple[int, int]:
    """Remove unreferenced blobs (and shard link folders) older than ``grace_seconds``, and
    stale partial files (see the module's docstring).

    The grace period spares a blob uploaded moments ago for a create that is about to use it.
    Returns (files removed, bytes freed).
    """
    removed, freed = prune_partials(blobs, locks, grace_seconds, resumable_seconds)
    cutoff = time.time() - grace_seconds
    with locks.gc():
        referenced = referenced_digests(manifests_dir)
        for directory in (blobs.dir, blobs.shards_dir):
            for path in directory.iterdir():
                match = BLOB_NAME.fullmatch(path.name)
                if not match or match.group(1) in referenced:
                    continue
                try:
                    stat = path.lstat()
                except FileNotFoundError:
                    continue
                if stat.st_mtime > cutoff:
                    continue
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    freed += stat.st_size
                    _unlink(path)
                removed += 1
    return removed, freed


def prune_partials(
    blobs: Blobs, locks: Locks, grace_seconds: float, resumable_seconds: float
) -> tuple[int, int]:
    """Remove what no live pull or upload is writing in ``partial/``; (files, bytes)."""
    now = time.time()
    downloads: dict[str, list[tuple[Path, os.stat_result]]] = {}
    others: list[tuple[Path, os.stat_result]] = []
    for path in blobs.partial_dir.iterdir():
        try:
            stat = path.lstat()
        except FileNotFoundError:
            continue
        match = DOWNLOAD_NAME.fullmatch(path.name)
        if match:
            downloads.setdefault(match.group(1), []).append((path, stat))
        else:
            others.append((path, stat))
    removed = freed = 0
    for tag, files in downloads.items():
        if max(s.st_mtime for _, s in files) >= now - resumable_seconds:
            continue
        with locks.unless_held(download_lock(tag)) as free:
            if not free:  # a pull is writing it right now
                continue
            for path, stat in files:  # under the lock: a pull starting now waits for it
                _unlink(path)
                removed, freed = removed + 1, freed + stat.st_size
    for path, stat in others:
        if stat.st_mtime >= now - grace_seconds:
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            _unlink(path)
        removed, freed = removed + 1, freed + stat.st_size
    return removed, freed


def _unlink(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
