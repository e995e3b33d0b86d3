"""The Sanic application: dialect blueprints over one engine, plus auth, CORS, the Host and
Origin guard (:mod:`mullama.http.guard`) and body limits.

Blueprints reach the engine as ``request.app.ctx.engine`` and the settings as
``request.app.ctx.settings``; they raise :class:`~mullama.engine.api.EngineError` and the
app-wide handler answers in the dialect of the route (see :mod:`mullama.http.errors`).
Each dialect is a package (:mod:`mullama.http.openai`, :mod:`~mullama.http.responses`,
:mod:`~mullama.http.anthropic`, :mod:`~mullama.http.ollama`) exporting its ``blueprint``; the management API and ``/ui/`` are
modules beside them. Adding a dialect means adding its package and one line below.
"""

from __future__ import annotations

import hmac
import itertools

from sanic import Request, Sanic
from sanic.exceptions import Forbidden, MethodNotAllowed, NotFound
from sanic.response import empty

from ..config import Settings
from ..engine.api import Engine
from ..engine.confined import AllowedDirs, ConfinedEngine, split_dirs
from . import anthropic, llama_server, manage, ollama, openai, readiness, rerank, responses, ui
from .errors import dialect_for, error_response, handle_exception, hide_paths, too_large
from .guard import CHANGING, Guard, warn_if_exposed

# /ui checks the key itself (login form, cookie)
AUTH_EXEMPT = ("/health", "/health/ready", "/ui")
# Generation can legitimately take a long time: Sanic's 60 s default would cut streams.
RESPONSE_TIMEOUT = 24 * 3600
_names = itertools.count()


def create_app(engine: Engine, settings: Settings, name: str | None = None) -> Sanic:
    """A Sanic app serving ``engine``; ``name`` must be unique within the process."""
    app = Sanic(name or _unique_name(), configure_logging=False)
    app.config.update(
        REQUEST_MAX_SIZE=settings.max_body_mb * 2**20,
        RESPONSE_TIMEOUT=RESPONSE_TIMEOUT,
        REQUEST_TIMEOUT=60,
        KEEP_ALIVE_TIMEOUT=30,
        GRACEFUL_SHUTDOWN_TIMEOUT=10,
        FALLBACK_ERROR_FORMAT="json",
        MOTD=False,
        ACCESS_LOG=False,
        NOISY_EXCEPTIONS=False,
    )
    # HTTP clients name files only inside the store and allowed_model_dirs (engine/confined.py)
    allowed = AllowedDirs([settings.cache_dir, *split_dirs(settings.allowed_model_dirs)])
    app.ctx.engine = ConfinedEngine(engine, allowed)
    app.ctx.settings = settings
    app.ctx.draining = False
    app.ctx.readiness = readiness.Readiness()  # the daemon marks it starting, then ready
    app.ctx.guard = guard = Guard(settings)
    app.ctx.cors = guard.cors
    app.ctx.json_limit = settings.max_json_mb
    hide_paths(settings)
    warn_if_exposed(settings)
    for bp in (
        openai.blueprint,
        openai.unprefixed,
        llama_server.blueprint,
        rerank.blueprint,
        responses.blueprint,
        anthropic.blueprint,
        manage.blueprint,
        ollama.blueprint,
        ui.blueprint,
        readiness.blueprint,
    ):
        app.blueprint(bp)
    app.error_handler.add(Exception, _on_error)
    app.on_request(_check_request, priority=100)
    app.signal("http.routing.before")(_check_host)
    app.on_response(_add_cors)
    return app


def _unique_name() -> str:
    while True:
        name = f"mullama{next(_names) or ''}"
        if name not in Sanic._app_registry:
            return name


def _api_key(request: Request) -> str:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return request.headers.get("x-api-key", "").strip()


async def _check_request(request: Request):
    app = request.app
    unready = readiness.gate(request)  # 503 while starting, loading or draining
    if unready is not None:
        return unready
    if "%00" in request.path or "\x00" in request.path:  # no file or name holds a NUL
        return error_response(dialect_for(request.path), 400, "the request path holds a NUL byte")
    refusal = _guard_refusal(request)
    if refusal is not None:
        return error_response(dialect_for(request.path), *refusal)
    if request.method == "OPTIONS" and app.ctx.cors:
        return empty(status=204)
    key = app.ctx.settings.api_key
    exempt = request.path in AUTH_EXEMPT or request.path.startswith("/ui/")
    if key and not exempt and not hmac.compare_digest(_api_key(request).encode(), key.encode()):
        return error_response(
            dialect_for(request.path),
            401,
            "invalid or missing API key (send Authorization: Bearer <key> or x-api-key)",
            code="invalid_api_key",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return None


async def _check_host(request: Request, **_) -> None:
    """Before routing, so that every request is checked (unknown routes, oversized bodies)."""
    if (why := request.app.ctx.guard.host_refusal(request)) is not None:
        raise Forbidden(why)


def _guard_refusal(request: Request) -> tuple[int, str] | None:
    guard: Guard = request.app.ctx.guard
    if request.method not in CHANGING:
        return None
    if (why := guard.origin_refusal(request)) is not None:
        return 403, why
    if request.route is not None and getattr(request.route.ctx, "body", "json") != "json":
        return None
    if (why := guard.content_type_refusal(request)) is not None:
        return 415, why
    # after reading it (up to max_body_mb), so that the client reads the answer: a body cut
    # off mid-upload is a connection reset to most clients
    limit = request.app.ctx.json_limit
    if request.body is not None and len(request.body) > limit * 2**20:
        return 413, too_large(limit, "max_json_mb")
    return None


async def _on_error(request: Request, exc: Exception):
    # A CORS preflight to a route without an OPTIONS handler: answer it rather than 404/405.
    if (
        isinstance(exc, (NotFound, MethodNotAllowed))
        and request.method == "OPTIONS"
        and request.app.ctx.cors
    ):
        return _add_cors_headers(request, empty(status=204))
    return _add_cors_headers(request, await handle_exception(request, exc))


async def _add_cors(request: Request, response) -> None:
    _add_cors_headers(request, response)


def _add_cors_headers(request: Request, response):
    allowed = request.app.ctx.cors
    origin = request.headers.get("origin")
    if not allowed or not origin or ("*" not in allowed and origin not in allowed):
        return response
    response.headers["Access-Control-Allow-Origin"] = "*" if "*" in allowed else origin
    response.headers["Vary"] = "Origin"
    if request.method == "OPTIONS":
        response.headers["Access-Control-Allow-Methods"] = "GET, POST, DELETE, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = request.headers.get(
            "access-control-request-headers",
            "Authorization, Content-Type, x-api-key, anthropic-version",
        )
        response.headers["Access-Control-Max-Age"] = "600"
    return response
