"""``/api/create`` bodies as a Modelfile, and ``/api/blobs`` through the Engine API's blobs.

Ollama clients create models from another model (``from``), from uploaded GGUF blobs
(``files``/``adapters``: file name -> ``sha256:`` digest, uploaded first through
``POST /api/blobs/:digest``) or, in older clients, from Modelfile text (``modelfile``); the
other fields (``system``, ``template``, ``parameters``, ``messages``, ``license``) override.
:class:`~.protocol.CreateBody` checks the body; what needs the engine (do the blobs exist?)
is checked here.
"""

from __future__ import annotations

from typing import Any

from sanic import Request

from ...engine.api import InvalidRequest
from ...modelfile import ModelfileError, ModelfileSpec, parse_modelfile, to_modelfile
from .protocol import CreateBody, is_projector_name


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


async def _blob_files(request: Request, files: dict | None, name: str) -> list[str]:
    """The stored paths of ``files``' blobs (the model checked the names and digests)."""
    return [
        await blob_file(request, digest, f"{name}.{filename}")
        for filename, digest in (files or {}).items()
    ]


async def _base_spec(request: Request, body: CreateBody) -> ModelfileSpec:
    if body.modelfile:
        try:
            return parse_modelfile(body.modelfile)
        except ModelfileError as exc:
            raise InvalidRequest(f"modelfile: {exc}", param="modelfile") from None
    files = dict(body.files or {})
    # a vision model's projector comes as one more file (the Ollama client uploads every
    # FROM of a Modelfile): its name tells it (mmproj-*.gguf, as the converters name them)
    projectors = {name: d for name, d in files.items() if is_projector_name(name)}
    weights = await _blob_files(
        request, {n: d for n, d in files.items() if n not in projectors}, "files"
    )
    if not weights and not body.from_:
        raise InvalidRequest("files: no model weights besides the projector", param="files")
    spec = ModelfileSpec(from_ref=body.from_ or weights[0])
    projector = await _blob_files(request, projectors, "files")
    if len(projector) > 1:
        raise InvalidRequest("files: more than one vision projector", param="files")
    if projector:
        spec.vision_projector = projector[0]
    return spec


async def modelfile(request: Request, body: CreateBody) -> str:
    """The Modelfile text an ``/api/create`` body describes."""
    spec = await _base_spec(request, body)
    adapters = await _blob_files(request, body.adapters, "adapters")
    if adapters:
        spec.adapters = adapters
    if body.system is not None:
        spec.system = body.system
    if body.template is not None:
        spec.template = body.template
    if body.license is not None:
        spec.license = body.license_text
    spec.parameters.update(body.parameters)
    if body.messages is not None:
        spec.messages = [(m.role, m.content) for m in body.messages]
    return to_modelfile(spec)


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
