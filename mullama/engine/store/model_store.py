"""``ModelStore``: the one object the engine uses to find, pull, create and remove models.

It composes the parts of the store (see the package docstring for the layout): blobs and
locks (:mod:`.blobs`), manifests (:mod:`.manifest`), pulls (:mod:`.pull`, :mod:`.package`),
create and copy (:mod:`.create`), collection (:mod:`.gc`), ModelInfo (:mod:`.info`). All methods
are synchronous; the engine runs them in worker threads.
"""

from __future__ import annotations

import copy as _copy
import datetime as _dt
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mullama.config import Settings
from mullama.engine.api import (
    InvalidRequest,
    ModelDetails,
    ModelInfo,
    ModelLoadError,
    ModelNotFound,
)
from mullama.engine.confined import AllowedDirs
from mullama.engine.gguf_info import GGUFError, GGUFHeader, check_gguf, read_header
from mullama.engine.hub import Hub, ProgressFn
from mullama.engine.refs import ModelRef, parse_ref, validate_name
from mullama.engine.registry import Registry, RegistryEntry

from . import create as _create
from . import gc
from .blobs import Blobs, DigestCache, Locks
from .files import ByteSource, normalize_digest
from .info import capabilities_of, gguf_summary, info_of, spec_of
from .manifest import Manifest, Manifests
from .package import package_available, pull_package
from .pull import pull_hf

if TYPE_CHECKING:
    from mullama.modelfile import ModelfileSpec


@dataclass
class ResolvedModel:
    """Everything the engine needs to load a model."""

    name: str
    weights: Path  # the first shard for split models
    projector: Path | None
    spec: ModelfileSpec | None  # with inherited settings and registry defaults applied
    digest: str  # "sha256:<hex>" of the weights ("" for a bare path)
    info: ModelInfo
    adapters: list[Path] = field(default_factory=list)
    kind: str = "pulled"


class ModelStore:
    def __init__(
        self,
        settings: Settings,
        *,
        registry: Registry | None = None,
        hub: Hub | None = None,
    ):
        self.settings = settings
        self.root = Path(settings.cache_dir)
        self.registry = registry or Registry(settings)
        self.hub = hub or Hub(settings)
        self.blobs = Blobs(self.root)
        self.manifests = Manifests(self.root / "manifests")
        self.locks = Locks(self.root / "locks")
        self.digests = DigestCache(self.root / "digests.json")

    # folders, by their names in the layout
    @property
    def blobs_dir(self) -> Path:
        return self.blobs.dir

    @property
    def partial_dir(self) -> Path:
        return self.blobs.partial_dir

    @property
    def shards_dir(self) -> Path:
        return self.blobs.shards_dir

    @property
    def manifests_dir(self) -> Path:
        return self.manifests.dir

    @property
    def locks_dir(self) -> Path:
        return self.locks.dir

    # ================================================================ blobs

    def blob_path(self, digest: str) -> Path:
        return self.blobs.path(digest)

    def has_blob(self, digest: str) -> bool:
        return self.blobs.has(digest)

    def add_blob(self, source: ByteSource, expected_digest: str | None = None) -> str:
        """Store content as a blob and return its digest (``sha256:<hex>``); see Blobs.add."""
        return self.blobs.add(source, expected_digest)

    def prune(self, grace_seconds: float = 3600.0) -> tuple[int, int]:
        """Remove blobs no model references; (files removed, bytes freed). See store.gc."""
        return gc.prune(self.blobs, self.manifests.dir, self.locks, grace_seconds)

    # ================================================================ finding models

    def names(self) -> list[str]:
        return [m.name for m in self.manifests.all()]

    def lookup(self, ref: ModelRef) -> tuple[str, Manifest | None, RegistryEntry | None]:
        """(key, manifest or None, registry entry or None) for a name or hf reference."""
        if ref.kind == "name":
            manifest = self.manifests.read(ref.key)
            if manifest is not None:
                return ref.key, manifest, None
            entry = self.registry.find(ref.key) or self.registry.find(ref.raw)
            if entry is not None:
                key = validate_name(entry.name)
                return key, self.manifests.read(key), entry
            return ref.key, None, None
        return ref.key, self.manifests.read(ref.key), None

    def not_found(self, name: str) -> ModelNotFound:
        return self.registry.not_found(name, extra=self.names())

    def not_local(self, name: str) -> ModelNotFound:
        """``name`` is not in the store: suggest only models that are (for rm), never ``name``."""
        local = self.names()
        same = {name.strip().lower(), f"{name.strip().lower()}:latest"}
        suggestions = [
            s for s in self.registry.suggest(name, local) if s in local and s.lower() not in same
        ]
        message = f"model {name!r} not found in the store"
        if suggestions:
            message += "; did you mean " + ", ".join(repr(s) for s in suggestions) + "?"
        return ModelNotFound(message, param="model", suggestions=suggestions)

    def find(self, name: str, *, materialise: bool = True) -> tuple[str, Manifest]:
        """(key, manifest) of a model in the store; a packaged model is written on first use."""
        ref = parse_ref(name)
        if ref.kind == "path":
            raise InvalidRequest(
                f"{name!r} is a file path, not a model in the store", param="model"
            )
        key, manifest, entry = self.lookup(ref)
        if manifest is None and materialise and entry is not None and package_available(entry):
            pull_package(self, key, entry, None, None)
            manifest = self.manifests.read(key)
        if manifest is None:
            if entry is not None or ref.is_hf:
                raise ModelNotFound(
                    f"model {name!r} is not pulled yet; run `mullama pull {name}`",
                    param="model",
                    pullable=True,
                )
            raise self.not_found(name)
        return key, manifest

    # ================================================================ pull / create / copy / delete

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
            existing = self.manifests.read(parsed.key)
            entry = self.registry.find(parsed.key) or self.registry.find(parsed.raw)
            if entry is None:
                if existing is not None and existing.kind == "created":
                    raise InvalidRequest(
                        f"{existing.name} is a created model; there is nothing to pull",
                        param="model",
                    )
                if existing is not None:
                    # a local copy of a pulled model: nothing to fetch under this name
                    return info_of(existing)
                raise self.not_found(ref)
            key = validate_name(entry.name)
            if package_available(entry):
                return pull_package(self, key, entry, progress, cancel)
            return pull_hf(self, key, entry.hf_ref(), entry, progress, cancel)
        return pull_hf(self, parsed.key, parsed, None, progress, cancel)

    def create(
        self,
        name: str,
        modelfile_text: str,
        base_dir: str | Path | None = None,
        progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
        *,
        allowed: AllowedDirs | None = None,
    ) -> ModelInfo:
        """Create ``name`` from a Modelfile; FROM may be an alias/hf reference (pulled if
        needed), a path (relative to ``base_dir``) or another model in the store. ``allowed``
        confines the Modelfile's paths to those directories (None: any file)."""
        return _create.create(self, name, modelfile_text, base_dir, progress, cancel, allowed)

    def copy(self, source: str, destination: str, overwrite: bool = False) -> ModelInfo:
        """Copy a model's manifest under a new name (the weights are shared, never copied)."""
        return _create.copy(self, source, destination, overwrite)

    def delete(self, name: str) -> None:
        """Remove a model. Its blobs go only when no other manifest references them."""
        ref = parse_ref(name)
        if ref.kind == "path":
            raise InvalidRequest(
                f"{name!r} is a file path; Mullama never deletes your files", param="model"
            )
        key, manifest, _entry = self.lookup(ref)
        if manifest is None:
            raise self.not_local(name)
        key = manifest.name or key
        with self.locks.model(key), self.locks.gc():
            current = self.manifests.read(key)  # what is there now, under the lock
            if current is None:
                raise self.not_local(name)
            self.manifests.remove(key)
            gc.collect(self.blobs, self.manifests.dir, current)

    # ================================================================ list / show / resolve

    def list(self) -> list[ModelInfo]:
        infos = [info_of(m) for m in self.manifests.all()]
        return sorted(infos, key=lambda i: i.modified_at, reverse=True)

    def show(self, name: str) -> ModelDetails:
        from mullama.modelfile import ModelfileSpec, to_modelfile

        resolved = self.resolve(name, verify=False)
        spec = resolved.spec
        if spec is None:
            spec = ModelfileSpec(from_ref=resolved.info.source or resolved.name)
        if spec.from_ref.startswith("package:"):  # create cannot read that: name the model itself
            spec = _copy.copy(spec)
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
        key, manifest = self.find(ref)
        weights = self.blobs.weights_path(manifest.weights)
        if not weights.exists():
            raise ModelLoadError(
                f"the weights of {key} are missing ({weights}); pull or create it again",
                param="model",
            )
        projector = None
        if manifest.projector is not None:
            projector = self.blobs.item_path(manifest.projector)
            if not projector.exists():
                raise ModelLoadError(
                    f"the projector of {key} is missing ({projector})", param="model"
                )
        spec = spec_of(manifest)
        if verify:  # before llama.cpp sees them
            _loadable(weights, f"the weights of {key}")
            if projector is not None:
                _loadable(projector, f"the projector of {key}")
        if verify and manifest.kind == "created":
            recorded = normalize_digest(manifest.weights[0].digest)
            wanted = normalize_digest(spec.digest) if spec is not None and spec.digest else recorded
            actual = self.digests.digest(weights)
            if actual != wanted:
                raise ModelLoadError(
                    f"DIGEST mismatch for {key}: expected sha256:{wanted}, the weights at {weights} "
                    f"are sha256:{actual}",
                    param="model",
                    expected=f"sha256:{wanted}",
                    actual=f"sha256:{actual}",
                )
        adapters = [Path(a) for a in (spec.adapters if spec is not None else [])]
        if verify:
            for adapter in adapters:
                _loadable(adapter, f"the adapter {adapter.name} of {key}")
        return ResolvedModel(
            name=manifest.name,
            weights=weights,
            projector=projector,
            spec=spec,
            digest=manifest.digest,
            info=info_of(manifest),
            adapters=adapters,
            kind=manifest.kind,
        )

    def _resolve_path(self, ref: ModelRef) -> ResolvedModel:
        assert ref.path is not None
        path = ref.path.expanduser().resolve()
        if not path.is_file():
            raise ModelNotFound(f"no such model file: {path}", param="model")
        header = _loadable(path, str(path), hint="")
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


def _loadable(path: Path, what: str, hint: str = "; pull or create the model again") -> GGUFHeader:
    """The header of a GGUF file whose tensors fit in it; otherwise InvalidRequest: a damaged
    file is refused here, before llama.cpp is handed it."""
    try:
        return check_gguf(path)
    except GGUFError as exc:
        raise InvalidRequest(f"{what}: {exc}{hint}", param="model") from None
    except OSError as exc:
        raise ModelLoadError(f"cannot read {what}: {exc.strerror}", param="model") from None
