"""Small file helpers for the model store: digests, atomic writes, spec merging, capabilities."""

from __future__ import annotations

import copy
import datetime as _dt
import hashlib
import os
import re
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

from mullama.engine.api import Cancelled, InvalidRequest
from mullama.engine.gguf_info import GGUFHeader

HEX64 = re.compile(r"^[0-9a-f]{64}$")


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


def gguf_summary(header: GGUFHeader) -> dict:
    s = header.summary()
    tmpl = header.chat_template
    s["template_tools"] = "tools" in tmpl
    s["template_thinking"] = "<think>" in tmpl or "enable_thinking" in tmpl or "reasoning" in tmpl
    return s


# Image input is refused (chat_plan); until it is not, no model advertises vision.
VISION_SUPPORTED = False


def capabilities_of(
    summary: dict, spec_caps: dict | None, registry_caps: dict, has_projector: bool
) -> dict[str, bool]:
    embedding = bool(summary.get("is_embedding"))
    caps = {
        "completion": not embedding,
        "embedding": embedding,
        "vision": has_projector,
        "tools": bool(summary.get("template_tools")),
        "thinking": bool(summary.get("template_thinking")),
        "json": not embedding,
    }
    caps.update({k: bool(v) for k, v in registry_caps.items()})
    caps.update({k: bool(v) for k, v in (spec_caps or {}).items()})
    caps["vision"] = caps["vision"] and VISION_SUPPORTED
    return caps


def merge_specs(parent, child):
    """``child`` over ``parent``: set fields win, parameters and flag tables merge."""
    if parent is None:
        return copy.deepcopy(child)
    out = copy.deepcopy(parent)
    c = child
    params = dict(out.parameters)
    params.update(copy.deepcopy(c.parameters))
    out.parameters = params
    for attr in (
        "system",
        "template",
        "gpu_layers",
        "flash_attention",
        "vision_projector",
        "license",
        "author",
        "digest",
    ):
        value = getattr(c, attr)
        if value is not None:
            setattr(out, attr, copy.deepcopy(value))
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


def iter_chunks(source) -> Iterator[bytes]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        yield bytes(source)
    elif isinstance(source, (str, Path)):
        with open(source, "rb") as f:
            yield from iter(lambda: f.read(1 << 20), b"")
    elif hasattr(source, "read"):
        yield from iter(lambda: source.read(1 << 20), b"")
    else:
        for chunk in source:
            yield bytes(chunk)


def drain(source) -> None:
    if not isinstance(source, (bytes, bytearray, memoryview, str, Path)):
        for _ in iter_chunks(source):
            pass
