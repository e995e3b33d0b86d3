"""The local model store: content-addressed blobs plus small JSON manifests.

Layout under ``settings.cache_dir``::

    blobs/sha256-<hex>            weights, projectors, uploaded blobs (immutable)
    manifests/<name>.json         one per model; the name percent-encoded into one file name
    shards/sha256-<hex>/<file>    hard links giving split GGUFs their original names
                                  (llama.cpp finds shard 2..N beside shard 1 by name)
    partial/                      downloads in progress (+ a .json note for resuming)
    locks/                        lock files (one per model name, one for blob collection)
    digests.json                  cache of verified SHA-256s keyed by (path, size, mtime)

A model exists exactly when its manifest exists. Blobs are written to ``partial/`` and
renamed into ``blobs/`` when complete and verified; manifests are written to a temp file
and renamed. Writers take a per-name file lock; blob collection (``delete``) and the final
"blobs exist -> write manifest" step of pull/create/copy share one lock so a blob is never
collected while a manifest that needs it is being written.

Modules, by responsibility:

    model_store.py   ModelStore: find / pull / create / copy / delete / list / show / resolve
    blobs.py         blobs, shard links, the digest cache, file locks
    manifest.py      the manifest schema (msgspec Structs) and the manifests/ folder
    pull.py          Hugging Face pulls;  package.py: models shipped in a Python package
    create.py        create from a Modelfile, copy
    gc.py            blob collection after a delete, prune at daemon start
    info.py          ModelInfo and capabilities from a manifest
    files.py         digests, atomic writes, byte sources
"""

from __future__ import annotations

from .manifest import Manifest as Manifest
from .model_store import ModelStore as ModelStore
from .model_store import ResolvedModel as ResolvedModel

__all__ = ["Manifest", "ModelStore", "ResolvedModel"]
