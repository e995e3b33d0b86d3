"""``create`` (a model from a Modelfile) and ``copy`` (a manifest under a new name).

Neither copies weights: a created model points at its base's blobs, or at the file it was
created ``FROM``. The manifest is written under the name's lock and the gc lock, after checking
that every blob it needs is still there.
"""

from __future__ import annotations

import copy as _copy
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from mullama.engine.api import InvalidRequest, ModelInfo, ModelLoadError
from mullama.engine.confined import WHERE, AllowedDirs
from mullama.engine.gguf_info import GGUFError, check_gguf, is_gguf
from mullama.engine.hub import ProgressFn
from mullama.engine.refs import parse_ref, validate_name

from .files import abs_path, disk_errors, normalize_digest, now_iso
from .info import info_of, spec_of, summary_of
from .manifest import SCHEMA, Item, Manifest, RegistryInfo

if TYPE_CHECKING:
    from mullama.modelfile import ModelfileSpec

    from .model_store import ModelStore


def merge_specs(parent: ModelfileSpec | None, child: ModelfileSpec) -> ModelfileSpec:
    """``child`` over ``parent``: set fields win, parameters and flag tables merge."""
    if parent is None:
        return _copy.deepcopy(child)
    out = _copy.deepcopy(parent)
    c = child
    params = dict(out.parameters)
    params.update(_copy.deepcopy(c.parameters))
    out.parameters = params
    for attr in (
        "system",
        "template",
        "gpu_layers",
        "flash_attention",
        "rpc",
        "tensor_split",
        "vision_projector",
        "license",
        "author",
        "digest",
    ):
        value = getattr(c, attr)
        if value is not None:
            setattr(out, attr, _copy.deepcopy(value))
    if c.messages:
        out.messages = list(c.messages)
    if c.adapters:
        out.adapters = list(c.adapters)
    for attr in ("thinking", "toolformat", "capabilities"):
        merged = dict(getattr(out, attr))
        merged.update(getattr(c, attr))
        setattr(out, attr, merged)
    out.from_ref = c.from_ref
    return out


def local_file(given: str, base: Path | None, allowed: AllowedDirs | None, what: str) -> Path:
    """The file a Modelfile line names. ``allowed``: only inside those directories, relative
    paths only against ``base``, and one answer for a file missing and a file elsewhere."""
    if allowed is None:
        path = abs_path(given, base or Path.cwd())
        if not path.is_file():
            raise InvalidRequest(f"{what} {given}: no such file {path}", param="modelfile")
        return path
    found = allowed.find(given, base)
    if found is None:
        raise InvalidRequest(
            f"{what} {given}: no such file in the directories this client may use ({WHERE})",
            param="modelfile",
        )
    return found


def checked_gguf(path: Path, what: str, given: str, not_gguf_hint: str = "") -> None:
    """InvalidRequest unless ``path`` is a GGUF whose header and tensors fit the file
    (``not_gguf_hint`` is added when it is no GGUF at all)."""
    try:
        check_gguf(path)
    except GGUFError as exc:
        hint = "" if is_gguf(path) else not_gguf_hint
        raise InvalidRequest(f"{what} {given}: {exc}{hint}", param="modelfile") from None
    except OSError as exc:
        raise InvalidRequest(
            f"{what} {given}: cannot read it ({exc.strerror})", param="modelfile"
        ) from None


def _check_stored(store: ModelStore, items: list[Item], model: str) -> None:
    """ModelLoadError when a blob the manifest needs is gone (gc lock held)."""
    for item in items:
        if item.stored and not store.blob_path(item.digest).exists():
            raise ModelLoadError(f"weights of {model} are missing from the store; pull it again")


def _check_workers(named: list[str], trusted: str) -> None:
    """An HTTP client's Modelfile may name only the daemon's own RPC workers: loading a model
    sends its weights to them, and the protocol trusts whoever answers."""
    from mullama.modelfile.placement import parse_endpoints

    known = set(parse_endpoints(trusted))
    strangers = [w for w in named if w not in known]
    if strangers:
        raise InvalidRequest(
            f"RPC {', '.join(strangers)}: a Modelfile sent over HTTP may name only the "
            f"daemon's RPC workers (rpc_servers: {trusted or 'none'}); create it with the CLI "
            "to name others",
            param="modelfile",
        )


def create(
    store: ModelStore,
    name: str,
    modelfile_text: str,
    base_dir: str | Path | None = None,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    allowed: AllowedDirs | None = None,
) -> ModelInfo:
    """Create ``name`` from a Modelfile; FROM may be an alias/hf reference (pulled if
    needed), a path (relative to ``base_dir``) or another model in the store. ``allowed``
    confines the Modelfile's paths (see :meth:`Engine.create_model`)."""
    from mullama.modelfile import ModelfileError, Template, TemplateError, parse_modelfile

    key = validate_name(name)
    base = Path(base_dir) if base_dir else (None if allowed is not None else Path.cwd())
    try:
        spec = parse_modelfile(modelfile_text)
    except ModelfileError as exc:
        raise InvalidRequest(
            str(exc), param="modelfile", line=exc.line, column=exc.column
        ) from None
    if spec.template:
        try:  # now, not at the first run
            Template(spec.template)
        except TemplateError as exc:
            raise InvalidRequest(
                f"TEMPLATE does not parse: {exc}", param="modelfile", template_line=exc.line
            ) from None
    if allowed is not None and spec.rpc:
        _check_workers(spec.rpc, store.settings.rpc_servers)
    spec = _copy.deepcopy(spec)
    ref = parse_ref(spec.from_ref)
    base_manifest: Manifest | None = None
    projector: Item | None
    parent_spec: ModelfileSpec | None
    if ref.kind == "path":
        path = local_file(spec.from_ref, base, allowed, "FROM")
        checked_gguf(path, "FROM", spec.from_ref)
        digest = store.digests.digest(path, cancel)
        weights = [
            Item(
                path=str(path),
                digest=f"sha256:{digest}",
                size=path.stat().st_size,
                file=path.name,
            )
        ]
        projector = None
        parent_spec = None
        spec.from_ref = str(path)
        source = str(path)
    else:
        bkey, base_manifest, entry = store.lookup(ref)
        if base_manifest is None:
            if entry is not None or ref.is_hf:
                store.pull(spec.from_ref, progress, cancel)
                bkey, base_manifest, entry = store.lookup(ref)
            if base_manifest is None:
                raise store.not_found(spec.from_ref)
        if bkey == key:
            raise InvalidRequest(
                f"a model cannot be created FROM itself ({key})", param="modelfile"
            )
        weights = list(base_manifest.weights)
        projector = base_manifest.projector
        parent_spec = spec_of(base_manifest)
        source = bkey
    merged = merge_specs(parent_spec, spec)
    merged.from_ref = spec.from_ref
    # paths in the Modelfile are relative to the Modelfile's folder; inherited adapters were
    # checked when the parent was created
    adapters = [local_file(a, base, allowed, "ADAPTER") for a in spec.adapters]
    for given, adapter in zip(spec.adapters, adapters, strict=True):
        checked_gguf(
            adapter,
            "ADAPTER",
            given,
            "; llama.cpp loads LoRA adapters as GGUF (convert it with llama.cpp's "
            "convert_lora_to_gguf.py)",
        )
    merged.adapters = [str(a) for a in adapters] or (parent_spec.adapters if parent_spec else [])
    for inherited in merged.adapters:
        if not Path(inherited).is_file():
            raise InvalidRequest(f"ADAPTER {inherited}: no such file", param="modelfile")
    if spec.vision_projector:
        proj = local_file(spec.vision_projector, base, allowed, "VISION_PROJECTOR")
        checked_gguf(proj, "VISION_PROJECTOR", spec.vision_projector)
        if not summary_of(proj).get("is_projector"):
            raise InvalidRequest(
                f"VISION_PROJECTOR {spec.vision_projector}: not a vision projector (an mmproj "
                "GGUF, as llama.cpp's converter writes them)",
                param="modelfile",
            )
        merged.vision_projector = str(proj)
        projector = Item(
            path=str(proj),
            file=proj.name,
            size=proj.stat().st_size,
            digest=f"sha256:{store.digests.digest(proj, cancel)}",
        )
    if spec.capabilities.get("vision") and projector is None:
        raise InvalidRequest(
            "CAPABILITY vision needs a vision projector: add VISION_PROJECTOR ./mmproj.gguf "
            "(or create FROM a model that has one)",
            param="modelfile",
        )
    if merged.digest:
        want = normalize_digest(merged.digest)
        have = normalize_digest(weights[0].digest)
        if weights[0].stored and not store.blob_path(have).exists():
            raise ModelLoadError(f"weights of {source} are missing from the store; pull it again")
        if want != have:
            raise InvalidRequest(
                f"DIGEST mismatch for {spec.from_ref}: the Modelfile says sha256:{want}, "
                f"the weights are sha256:{have}",
                param="modelfile",
                expected=f"sha256:{want}",
                actual=f"sha256:{have}",
            )
        merged.digest = f"sha256:{want}"
    weights_path = store.blobs.weights_path(weights)
    with disk_errors(f"create {key}"), store.locks.model(key), store.locks.gc():
        _check_stored(store, weights + ([projector] if projector else []), source)
        manifest = Manifest(
            schema=SCHEMA,
            name=key,
            kind="created",
            source=source,
            weights=weights,
            projector=projector,
            modelfile=merged.to_dict(),
            modelfile_text=modelfile_text,
            registry=base_manifest.registry if base_manifest else RegistryInfo(),
            gguf=(base_manifest.gguf if base_manifest else {}) or summary_of(weights_path),
            digest=weights[0].digest,
            size=sum(w.size for w in weights) + (projector.size if projector else 0),
            modified_at=now_iso(),
        )
        store.manifests.write(manifest)
    return info_of(manifest)


def copy(store: ModelStore, source: str, destination: str, overwrite: bool = False) -> ModelInfo:
    """Copy a model's manifest under a new name (the weights are shared, never copied);
    a model already named ``destination`` is replaced only when ``overwrite``."""
    skey, _ = store.find(source)
    dkey = validate_name(destination)
    if dkey.lower() == skey.lower():
        raise InvalidRequest(
            f"source and destination are the same model ({skey})", param="destination"
        )
    with disk_errors(f"copy to {dkey}"), store.locks.model(dkey), store.locks.gc():
        # read the source again under the lock: it may have been deleted meanwhile
        manifest = store.manifests.read(skey)
        if manifest is None:
            raise store.not_found(source)
        if not overwrite and store.manifests.read(dkey) is not None:
            raise InvalidRequest(
                f"a model named {dkey} exists already; remove it first, or overwrite it "
                "(`mullama cp --force`)",
                param="destination",
            )
        new = msgspec.structs.replace(manifest, name=dkey, modified_at=now_iso(), copied_from=skey)
        _check_stored(store, new.items(), skey)
        store.manifests.write(new)
    return info_of(new)
