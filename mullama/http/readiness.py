"""Readiness for routers and orchestrators: ``GET /health/ready`` and the gate in front of
every other route.

``/health`` is liveness: 200 whenever the process answers. ``/health/ready`` follows
llama-server's ``/health``: 503 while the daemon starts, while it loads the models given with
``serve --model``, and while it drains on SIGTERM; 200 once it can serve. While it is not
ready, every route but these two and ``/metrics`` answers 503 too, with ``Retry-After``, so a
router that sends a request anyway is told to go elsewhere. Neither health route needs the API
key, so neither says more than the state (no model names, no paths).
"""

from __future__ import annotations

from dataclasses import dataclass

from sanic import Blueprint, HTTPResponse, Request
from sanic.response import json

from .errors import RETRY_AFTER_SECONDS, dialect_for, error_response

blueprint = Blueprint("readiness")

STARTING, LOADING, READY, DRAINING = "starting", "loading", "ready", "draining"
# answered whatever the state: a probe, or a router's scrape, must see the state itself
UNGATED = frozenset({"/health", "/health/ready", "/metrics"})

_WHY = {
    STARTING: "the server is starting",
    LOADING: "the server is loading its models",
    DRAINING: "the server is shutting down",
}


@dataclass
class Readiness:
    """What the daemon is doing; an app made outside the daemon (tests) is ready at once."""

    state: str = READY


def state_of(request: Request) -> str:
    app = request.app
    return DRAINING if app.ctx.draining else app.ctx.readiness.state


def gate(request: Request) -> HTTPResponse | None:
    """503 with ``Retry-After`` for a request the server cannot serve yet (or any more)."""
    if request.path in UNGATED:
        return None
    state = state_of(request)
    if state == READY:
        return None
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
    if state == DRAINING:
        headers["Connection"] = "close"
    return error_response(dialect_for(request.path), 503, _WHY[state], headers=headers)


@blueprint.route("/health/ready", methods=["GET", "HEAD"])
async def ready(request: Request) -> HTTPResponse:
    state = state_of(request)
    if state == READY:
        return json({"status": "ok"})
    # llama-server's shape for its 503, plus the state
    error = {"code": 503, "message": _WHY[state], "type": "unavailable_error"}
    return json(
        {"status": state, "error": error},
        status=503,
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    )
