"""The management API (``/api/models``, ``/api/system/status``), ``/health`` and ``/metrics``.

Its bodies (``/api/models/*``) name a model by ``name`` or ``model``: :class:`ModelAction`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from pydantic import model_validator
from sanic import Blueprint, Request
from sanic.response import json, raw

from .. import __version__
from .common.protocol import Body, fail, parse_body
from .errors import OLLAMA, stream_error_body
from .events import primed
from .sse import ndjson, open_stream

blueprint = Blueprint("manage")

PROMETHEUS_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class ModelAction(Body):
    name: str | None = None
    model: str | None = None
    stream: bool = True
    keep_alive: Any = None

    @model_validator(mode="after")
    def _named(self) -> ModelAction:
        self.name = self.name or self.model
        if not self.name:
            raise fail(("model",), "is required")
        return self

    @property
    def target(self) -> str:
        return self.name or ""


@blueprint.route("/health", methods=["GET", "HEAD"])
async def health(request: Request):
    """Liveness: 200 whenever the process answers (readiness is /health/ready)."""
    return json({"status": "ok", "version": __version__})


@blueprint.route("/metrics", methods=["GET", "HEAD"])
async def metrics(request: Request):
    snapshot = await request.app.ctx.engine.metrics_snapshot()
    return raw(snapshot["exposition"].encode(), content_type=PROMETHEUS_TYPE)


@blueprint.route("/api/system/status", methods=["GET", "HEAD"])
async def system_status(request: Request):
    status = await request.app.ctx.engine.status()
    return json(
        {
            "version": status.version,
            "uptime_secs": int(status.uptime_secs),
            "models_loaded": len(status.loaded),
            "http_endpoint": request.app.ctx.settings.http_endpoint,
            "mode": status.mode,
            "default_model": status.default_model,
            "requests_total": status.requests_total,
            "requests_active": status.requests_active,
            "tokens_generated": status.tokens_generated,
            "prompt_tokens": status.prompt_tokens,
            "endpoints": status.endpoints,
            "models": [dataclasses.asdict(m) for m in status.loaded],
        }
    )


@blueprint.route("/api/models", methods=["GET", "HEAD"])
async def list_models(request: Request):
    models = await request.app.ctx.engine.list_models()
    return json({"models": [dataclasses.asdict(m) for m in models]})


@blueprint.route("/api/models/<name:path>", methods=["GET", "HEAD"])
async def show_model(request: Request, name: str):
    details = await request.app.ctx.engine.show_model(name)
    return json(dataclasses.asdict(details))


@blueprint.delete("/api/models/<name:path>")
async def delete_model(request: Request, name: str):
    await request.app.ctx.engine.delete_model(name)
    return json({"status": "deleted", "name": name})


@blueprint.post("/api/models/pull")
async def pull_model(request: Request):
    """Streams NDJSON progress lines, then ``{"status": "success"}``; ``"stream": false`` waits."""
    body = await parse_body(ModelAction, request.body)
    name, stream = body.target, body.stream
    async with primed(request.app.ctx.engine.pull_model(name)) as progress:
        if not stream:
            async for _ in progress:
                pass
            return json({"status": "success", "name": name})
        response = await open_stream(request, "application/x-ndjson")
        try:
            async for item in progress:
                await response.send(ndjson(dataclasses.asdict(item)))
            await response.send(ndjson({"status": "success", "name": name}))
        except Exception as exc:  # the status is sent: the last line says it failed
            await response.send(ndjson(stream_error_body(OLLAMA, exc)))
        await response.eof()


@blueprint.post("/api/models/load")
async def load_model(request: Request):
    body = await parse_body(ModelAction, request.body)
    loaded = await request.app.ctx.engine.load_model(body.target, body.keep_alive)
    return json(dataclasses.asdict(loaded))


@blueprint.post("/api/models/unload")
async def unload_model(request: Request):
    name = (await parse_body(ModelAction, request.body)).target
    await request.app.ctx.engine.unload_model(name)
    return json({"status": "unloaded", "name": name})
