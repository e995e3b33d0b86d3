"""``/api/create`` bodies as a Modelfile, and ``/api/blobs`` through the Engine API's blobs.

Ollama clients create models from another model (``from``), from uploaded GGUF blobs
(``files``/``adapters``: file name -> ``sha256:`` digest, uploaded first through
``POST /api/blobs/:digest``) or, in older clients, from Modelfile text (``modelfile``); the
other fields (``system``, ``template``, ``parameters``, ``messages``, ``license``) override.
"""

from __future__ import annotations

from typing import Any

from sanic import Request

from ...engine.api import InvalidRequest
from ...modelfile import (
    ModelfileError,
    ModelfileSpec,
    coerce_parameter,
    parse_modelfile,
    to_modelfile,
)
from ..fields import get

ROLES = ("system", "user", "assistant")


async def has_blob(request: Request, digest: str) -> bool:
    return await request.app.ctx.engine.blob_path(digest) is not None


async def blob_file(request: Request, digest: str, field: str) -> str:
    path = await request.app.ctx.engine.blob_path(digest)
    if path is None:
        raise InvalidRequest(
            f"{field}: blob {digest} does not exist; upload it first with POST /api/blobs/{digest}",
            param=field,
        )
    return path


async def _gguf_blobs(request: Request, body: dict, name: str) -> list[str]:
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
        paths.append(await blob_file(request, digest, f"{name}.{filename}"))
    return paths


async def _base_spec(request: Request, body: dict) -> ModelfileSpec:
    text = get(body, "modelfile", str)
    source = get(body, "from", str)
    weights = await _gguf_blobs(request, body, "files")
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


async def modelfile(request: Request, body: dict) -> str:
    """The Modelfile text an ``/api/create`` body describes."""
    if get(body, "quantize", str):
        raise InvalidRequest(
            "quantize is not supported: Mullama does not quantize models; "
            "pull a quantized GGUF instead (e.g. hf.co/owner/repo:Q4_K_M)",
            param="quantize",
        )
    spec = await _base_spec(request, body)
    adapters = await _gguf_blobs(request, body, "adapters")
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
    stream: Any = request.stream  # sanic's Http (the route is declared stream=True)
    if stream is None:
        raise InvalidRequest("the blob upload has no body")
    stream.request_max_size = float("inf")  # GGUF uploads are gigabytes

    async def chunks():
        while (chunk := await stream.read()) is not None:
            yield chunk

    return await request.app.ctx.engine.add_blob(digest, chunks())
