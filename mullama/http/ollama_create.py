"""``/api/create`` bodies as a Modelfile, and ``/api/blobs`` on the daemon's model store.

Ollama clients create models from another model (``from``), from uploaded GGUF blobs
(``files``/``adapters``: file name -> ``sha256:`` digest, uploaded first through
``POST /api/blobs/:digest``) or, in older clients, from Modelfile text (``modelfile``); the
other fields (``system``, ``template``, ``parameters``, ``messages``, ``license``) override.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from sanic import Request

from ..engine.api import EngineError, InvalidRequest
from ..modelfile import (
    ModelfileError,
    ModelfileSpec,
    coerce_parameter,
    parse_modelfile,
    to_modelfile,
)
from .fields import get

ROLES = ("system", "user", "assistant")


def store(request: Request):
    """The daemon's model store (blobs are files in it, so only a local engine has them)."""
    found = getattr(request.app.ctx.engine, "store", None)
    if found is None:
        raise EngineError("blob uploads need the daemon's local model store")
    return found


def blob_file(request: Request, digest: str, field: str) -> Path:
    path = store(request).blob_path(digest)
    if not path.is_file():
        raise InvalidRequest(
            f"{field}: blob {digest} does not exist; upload it first with POST /api/blobs/{digest}",
            param=field,
        )
    return path


def _gguf_blobs(request: Request, body: dict, name: str) -> list[str]:
    files = get(body, name, dict) or {}
    paths = []
    for filename, digest in files.items():
        if not isinstance(digest, str):
            raise InvalidRequest(
                f"{name}[{filename!r}] must be a sha256 digest string", param=f"{name}.{filename}"
            )
        if not filename.lower().endswith(".gguf"):
            raise InvalidRequest(
                f"{name}: {filename} is not a GGUF file; Mullama runs GGUF "
                "models only (convert safetensors with llama.cpp first)",
                param=name,
            )
        paths.append(str(blob_file(request, digest, f"{name}.{filename}")))
    return paths


def _base_spec(request: Request, body: dict) -> ModelfileSpec:
    text = get(body, "modelfile", str)
    source = get(body, "from", str)
    weights = _gguf_blobs(request, body, "files")
    if len(weights) > 1:
        raise InvalidRequest(
            "files: give one GGUF file (split GGUFs are pulled, not uploaded)", param="files"
        )
    if sum(bool(x) for x in (text, source, weights)) > 1:
        raise InvalidRequest("give only one of from, files or modelfile", param="from")
    if text:
        try:
            return parse_modelfile(text)
        except ModelfileError as exc:
            raise InvalidRequest(f"modelfile: {exc}", param="modelfile") from None
    if source or weights:
        return ModelfileSpec(from_ref=source or weights[0])
    if get(body, "path", str):
        raise InvalidRequest(
            "path is not supported: send the Modelfile text as modelfile, or use from/files",
            param="path",
        )
    raise InvalidRequest("neither 'from' nor 'files' was specified", param="from")


def modelfile(request: Request, body: dict) -> str:
    """The Modelfile text an ``/api/create`` body describes."""
    if get(body, "quantize", str):
        raise InvalidRequest(
            "quantize is not supported: Mullama does not quantize models; "
            "pull a quantized GGUF instead (e.g. hf.co/owner/repo:Q4_K_M)",
            param="quantize",
        )
    spec = _base_spec(request, body)
    adapters = _gguf_blobs(request, body, "adapters")
    if adapters:
        spec.adapters = adapters
    for name in ("system", "template"):
        value = get(body, name, str)
        if value is not None:
            setattr(spec, name, value)
    license_ = get(body, "license", str, list)
    if license_ is not None:
        spec.license = license_ if isinstance(license_, str) else "\n\n".join(map(str, license_))
    for name, value in (get(body, "parameters", dict) or {}).items():
        try:
            spec.parameters[name] = coerce_parameter(name, value)
        except ValueError as exc:
            raise InvalidRequest(f"parameters: {exc}", param=f"parameters.{name}") from None
    messages = get(body, "messages", list)
    if messages is not None:
        spec.messages = [_message(m, i) for i, m in enumerate(messages)]
    return to_modelfile(spec)


def _message(raw, index: int) -> tuple[str, str]:
    where = f"messages[{index}]."
    if not isinstance(raw, dict):
        raise InvalidRequest(f"messages[{index}] must be an object", param=f"messages[{index}]")
    role = get(raw, "role", str, required=True, where=where)
    if role not in ROLES:
        raise InvalidRequest(f"{where}role must be system, user or assistant", param=f"{where}role")
    return role, get(raw, "content", str, default="", where=where)


async def receive_blob(request: Request, digest: str) -> str:
    """Store a streamed request body as a blob, checking it against ``digest``."""
    request.stream.request_max_size = float("inf")  # GGUF uploads are gigabytes
    loop = asyncio.get_running_loop()

    def chunks():
        while True:
            chunk = asyncio.run_coroutine_threadsafe(request.stream.read(), loop).result()
            if chunk is None:
                return
            yield chunk

    return await asyncio.to_thread(store(request).add_blob, chunks(), digest)
