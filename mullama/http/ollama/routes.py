"""The Ollama-compatible API (``/api/*``), so every Ollama client works unchanged.

Requests and answers follow Ollama's docs/api.md field for field; each route is a thin
translator over the Engine API (see :mod:`.protocol`, :mod:`.convert`, :mod:`.wire`,
:mod:`.models` and :mod:`.create` beside it). Streams are NDJSON; an error after the stream
started is its last line, ``{"error": "..."}``, as Ollama sends it.

Compatibility decisions:

* ``/api/version`` reports the Ollama API version this module follows (clients such as
  Open WebUI compare it against the Ollama release that introduced a feature); Mullama's own
  version is beside it as ``mullama``.
* Load-time ``options`` (``num_ctx``, ``num_gpu``, ``num_thread``, ``num_batch``…) are checked
  and then ignored with a log line: Ollama reloads the model when they differ, which makes two
  clients with different settings evict each other's model on every turn. Mullama keeps the
  model as its Modelfile loaded it; a prompt too long for that context is a 400 that says so.
* ``hf:`` models are listed as Ollama names them (``hf.co/owner/repo:QUANT``); both spellings
  are accepted everywhere.
"""

from __future__ import annotations

from sanic import Blueprint, Request
from sanic.response import empty, json, text

from ... import __version__
from ..common.protocol import parse_body
from ..common.wire import answer
from ..errors import OLLAMA, stream_error_body
from ..events import primed
from ..sse import ndjson, open_stream
from . import convert, create, models, protocol
from .wire import ChatWriter, GenerateWriter, OllamaWriter, pull_status

blueprint = Blueprint("ollama")

# The Ollama release whose API this module (and the daemon around it) matches, the one place
# it is set. Everything in Ollama's API up to 0.13.5 is here, images included:
# ``logprobs``/``top_logprobs`` on /api/chat and /api/generate (0.12.11), tool-call ids from
# /api/chat (0.12.10), ``think`` (also as low/medium/high), ``dimensions`` on /api/embed, and the
# OpenAI Responses API at /v1/responses (0.13.3; Codex CLI's ``--oss`` requires 0.13.4 or
# newer, tests/http/test_protocol_ollama.py checks it). Not 0.14.0: its Modelfile ``REQUIRES``
# is not parsed here (its Anthropic /v1/messages is). Raise this only with the features of the
# release it names.
OLLAMA_API_VERSION = "0.13.5"
NDJSON = "application/x-ndjson"


@blueprint.route("/", methods=["GET", "HEAD"])
async def root(request: Request):
    return text("Mullama is running")


@blueprint.route("/api/version", methods=["GET", "HEAD"])
async def version(request: Request):
    return json(protocol.VersionResponse(version=OLLAMA_API_VERSION, mullama=__version__).wire())


# ---------------------------------------------------------------- inference


async def _load_or_unload(request: Request, model: str, keep_alive, writer: OllamaWriter):
    """An empty prompt loads the model; with ``keep_alive: 0`` it unloads it."""
    engine = request.app.ctx.engine
    if convert.unloads(keep_alive):
        await engine.unload_model(model)
        return json(writer.loaded("unload").wire())
    await engine.load_model(model, keep_alive)
    return json(writer.loaded("load").wire())


@blueprint.post("/api/chat")
async def chat(request: Request):
    body = await parse_body(protocol.ChatBody, request.body)
    req = convert.chat_request(body)
    writer = ChatWriter(req.model, req.options.logprobs)
    if not req.messages:
        return await _load_or_unload(request, req.model, req.keep_alive, writer)
    return await answer(request, [request.app.ctx.engine.chat(req)], writer, body.stream)


@blueprint.post("/api/generate")
async def generate(request: Request):
    body = await parse_body(protocol.GenerateBody, request.body)
    req = convert.generate_request(body)
    writer = GenerateWriter(req.model, req.options.logprobs, raw=req.raw)
    if not req.prompt and not req.system and not req.context:
        return await _load_or_unload(request, req.model, req.keep_alive, writer)
    return await answer(request, [request.app.ctx.engine.complete(req)], writer, body.stream)


@blueprint.post("/api/embed")
async def embed(request: Request):
    req = convert.embed_request(await parse_body(protocol.EmbedBody, request.body))
    engine = request.app.ctx.engine
    if not req.inputs:
        await engine.load_model(req.model, req.keep_alive)
        return json(protocol.EmbedResponse(model=req.model, embeddings=[]).wire())
    result = await engine.embed(req)
    reply = protocol.EmbedResponse(
        model=req.model,
        embeddings=result.embeddings,
        total_duration=result.timings.total_ns,
        load_duration=result.timings.load_ns,
        prompt_eval_count=result.prompt_tokens,
    )
    return json(reply.wire())


@blueprint.post("/api/embeddings")
async def embeddings(request: Request):
    """The legacy single-prompt endpoint, superseded by ``/api/embed``."""
    req = convert.embed_request(await parse_body(protocol.EmbeddingsBody, request.body))
    engine = request.app.ctx.engine
    if not req.inputs:
        await engine.load_model(req.model, req.keep_alive)
        return json(protocol.EmbeddingResponse(embedding=[]).wire())
    result = await engine.embed(req)
    return json(protocol.EmbeddingResponse(embedding=result.embeddings[0]).wire())


# ---------------------------------------------------------------- models


@blueprint.route("/api/tags", methods=["GET", "HEAD"])
async def tags(request: Request):
    infos = await request.app.ctx.engine.list_models()
    return json(protocol.TagsResponse(models=[models.tag(info) for info in infos]).wire())


@blueprint.route("/api/ps", methods=["GET", "HEAD"])
async def ps(request: Request):
    engine = request.app.ctx.engine
    infos = {info.name: info for info in await engine.list_models()}
    loaded = await engine.running_models()
    running = [models.running(m, infos.get(m.name)) for m in loaded]
    return json(protocol.PsResponse(models=running).wire())


@blueprint.post("/api/show")
async def show(request: Request):
    body = await parse_body(protocol.Named, request.body)
    details = await request.app.ctx.engine.show_model(body.model)
    return json(models.show(details).wire())


@blueprint.post("/api/pull")
async def pull(request: Request):
    body = await parse_body(protocol.PullBody, request.body)
    async with primed(request.app.ctx.engine.pull_model(body.model)) as progress:
        if not body.stream:
            async for _ in progress:
                pass
            return json({"status": "success"})
        response = await open_stream(request, NDJSON)
        try:
            async for item in progress:
                line = pull_status(item)
                if line is not None:
                    await response.send(ndjson(line))
        except Exception as exc:  # the status is sent: the last line says it failed
            await response.send(ndjson(stream_error_body(OLLAMA, exc)))
        await response.eof()


@blueprint.post("/api/create")
async def create_model(request: Request):
    body = await parse_body(protocol.CreateBody, request.body)
    info = await request.app.ctx.engine.create_model(
        body.model, await create.modelfile(request, body)
    )
    steps: list[protocol.Status] = [
        {"status": f"using existing layer {info.digest}"},
        {"status": "writing manifest"},
        {"status": "success"},
    ]
    if not body.stream:
        return json(steps[-1])
    response = await open_stream(request, NDJSON)
    for step in steps:
        await response.send(ndjson(step))
    await response.eof()


@blueprint.post("/api/copy")
async def copy(request: Request):
    body = await parse_body(protocol.CopyBody, request.body)
    # Ollama's /api/copy replaces an existing destination
    await request.app.ctx.engine.copy_model(body.source, body.destination, overwrite=True)
    return empty(status=200)


@blueprint.delete("/api/delete")
async def delete(request: Request):
    body = await parse_body(protocol.Named, request.body)
    await request.app.ctx.engine.delete_model(body.model)
    return empty(status=200)


@blueprint.route("/api/blobs/<digest>", methods=["HEAD"])
async def blob_exists(request: Request, digest: str):
    return empty(status=200 if await create.has_blob(request, digest) else 404)


@blueprint.post("/api/blobs/<digest>", stream=True, ctx_body="blob")
async def blob_upload(request: Request, digest: str):
    await create.receive_blob(request, digest)
    return empty(status=201)
