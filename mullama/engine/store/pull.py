"""Pulls from a Hugging Face hub into the store.

Each selected file is downloaded to ``partial/`` (resumable), verified and renamed into
``blobs/``; then, under the gc lock, the manifest is written only if every blob is still there
(a delete may have collected one meanwhile: then it is fetched again).
"""

from __future__ import annotations

import hashlib
import os
import threading
from typing import TYPE_CHECKING, Any

import msgspec

from mullama.engine.api import Cancelled, EngineError, InvalidRequest, ModelInfo, PullProgress
from mullama.engine.gguf_info import GGUFError, check_gguf
from mullama.engine.hub import IF_ANY, ProgressFn, Selection, hf_endpoint
from mullama.engine.refs import ModelRef
from mullama.engine.registry import RegistryEntry

from .files import disk_errors, now_iso
from .info import info_of, summary_of
from .manifest import SCHEMA, Defaults, HubSource, Item, Manifest, RegistryInfo

if TYPE_CHECKING:
    from .model_store import ModelStore


def emit(progress: ProgressFn | None, status: str, **kw: Any) -> None:
    if progress is not None:
        progress(PullProgress(status=status, **kw))


def registry_info(entry: RegistryEntry | None) -> RegistryInfo:
    if entry is None:
        return RegistryInfo()
    return RegistryInfo(
        family=entry.family,
        description=entry.description,
        tags=entry.tags,
        capabilities=entry.derived_capabilities(),
    )


def defaults_of(entry: RegistryEntry | None) -> Defaults:
    return msgspec.convert(entry.defaults() if entry else {}, Defaults)


def pull_hf(
    store: ModelStore,
    key: str,
    ref: ModelRef,
    entry: RegistryEntry | None,
    progress: ProgressFn | None,
    cancel: threading.Event | None,
) -> ModelInfo:
    with disk_errors(f"pull of {key}"), store.locks.model(key):
        emit(progress, "resolving", file=ref.key)
        # an alias names its projector; a repository's own is taken along (as llama-server's -hf)
        selection = store.hub.select(ref, projector=entry.projector if entry else IF_ANY)
        for _round in range(3):
            digests = download_selection(store, selection, progress, cancel)
            if cancel is not None and cancel.is_set():
                raise Cancelled(f"pull of {key} cancelled")
            with store.locks.gc():
                if not all(store.has_blob(d) for d in digests.values()):
                    continue  # collected meanwhile by a delete: fetch again
                manifest = pulled_manifest(store, key, ref, entry, selection, digests)
                emit(progress, "writing", file=key)
                store.manifests.write(manifest)
            break
        else:
            raise EngineError(f"pull of {key} could not complete: blobs kept disappearing")
        emit(
            progress,
            "success",
            file=key,
            digest=manifest.digest,
            completed=manifest.size,
            total=manifest.size,
        )
        return info_of(manifest)


def download_selection(
    store: ModelStore, sel: Selection, progress: ProgressFn | None, cancel: threading.Event | None
) -> dict[str, str]:
    """Make sure every selected file is a blob; returns {repo path: hex digest}."""
    out: dict[str, str] = {}
    for remote in sel.files:
        if cancel is not None and cancel.is_set():
            raise Cancelled(f"pull of {sel.repo} cancelled")
        if remote.sha256 and store.has_blob(remote.sha256):
            out[remote.path] = remote.sha256
            emit(
                progress,
                "downloading",
                file=remote.path,
                digest=f"sha256:{remote.sha256}",
                completed=remote.size,
                total=remote.size,
            )
            continue
        tag = (
            remote.sha256
            or hashlib.sha256(
                f"{hf_endpoint()}|{sel.repo}|{sel.commit}|{remote.path}".encode()
            ).hexdigest()
        )
        with store.locks.download(tag):
            if remote.sha256 and store.has_blob(remote.sha256):
                out[remote.path] = remote.sha256
                continue
            partial = store.partial_dir / f"{tag}.part"
            digest = store.hub.download(
                sel.repo, sel.commit, remote, partial, progress=progress, cancel=cancel
            )
            emit(
                progress,
                "verifying",
                file=remote.path,
                digest=f"sha256:{digest}",
                completed=remote.size,
                total=remote.size,
            )
            if remote.path.lower().endswith(".gguf"):
                try:
                    check_gguf(partial)
                except GGUFError as exc:
                    os.unlink(partial)
                    raise InvalidRequest(
                        f"{remote.path} from {sel.repo} is {exc}; nothing was kept", param="model"
                    ) from None
            store.blobs.place(partial, digest)
            out[remote.path] = digest
    return out


def pulled_manifest(
    store: ModelStore,
    key: str,
    ref: ModelRef,
    entry: RegistryEntry | None,
    sel: Selection,
    digests: dict[str, str],
) -> Manifest:
    def item(path: str) -> Item:
        d = digests[path]
        return Item(file=path, digest=f"sha256:{d}", size=store.blob_path(d).stat().st_size)

    weights = [item(f.path) for f in sel.weights]
    projector = item(sel.projector.path) if sel.projector else None
    if len(weights) > 1:
        store.blobs.link_shards(weights)
    return Manifest(
        schema=SCHEMA,
        name=key,
        kind="pulled",
        source=entry.name if entry else ref.key,
        hub=HubSource(
            endpoint=hf_endpoint(),
            repo=sel.repo,
            revision=sel.revision,
            commit=sel.commit,
            quant=sel.quant,
        ),
        weights=weights,
        projector=projector,
        defaults=defaults_of(entry),
        registry=registry_info(entry),
        gguf=summary_of(store.blobs.weights_path(weights)),
        digest=weights[0].digest,
        size=sum(w.size for w in weights) + (projector.size if projector else 0),
        modified_at=now_iso(),
    )
