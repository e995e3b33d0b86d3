"""Error responses in the three HTTP dialects: OpenAI, Anthropic and Ollama.

The dialect follows the route: ``/v1/messages…`` speaks Anthropic, ``/api/…`` speaks Ollama
(``{"error": "…"}``, also used by the management API), everything else speaks OpenAI.
"""

from __future__ import annotations

import logging

from sanic import HTTPResponse, Request
from sanic.exceptions import SanicException
from sanic.response import json

from ..engine.api import Cancelled, EngineError

log = logging.getLogger("mullama.http")

OPENAI, ANTHROPIC, OLLAMA = "openai", "anthropic", "ollama"

_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
}


def dialect_for(path: str) -> str:
    if path == "/v1/messages" or path.startswith("/v1/messages/"):
        return ANTHROPIC
    if path.startswith("/api/"):
        return OLLAMA
    return OPENAI


def error_response(
    dialect: str,
    status: int,
    message: str,
    *,
    param: str | None = None,
    code: str | None = None,
    headers: dict | None = None,
) -> HTTPResponse:
    return json(
        error_body(dialect, status, message, param=param, code=code), status=status, headers=headers
    )


def error_body(
    dialect: str, status: int, message: str, *, param: str | None = None, code: str | None = None
) -> dict:
    if dialect == ANTHROPIC:
        kind = _ANTHROPIC_TYPES.get(
            status, "api_error" if status >= 500 else "invalid_request_error"
        )
        return {"type": "error", "error": {"type": kind, "message": message}}
    if dialect == OLLAMA:
        return {"error": message}
    if status == 401:
        kind = "authentication_error"
    elif status >= 500:
        kind = "server_error"
    else:
        kind = "invalid_request_error"
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def engine_status(exc: EngineError) -> int:
    """The HTTP status of an engine error (a request cancelled by an unload: 503)."""
    return 503 if isinstance(exc, Cancelled) else exc.status


def engine_error_body(dialect: str, exc: EngineError) -> dict:
    return error_body(dialect, engine_status(exc), exc.message, param=exc.param, code=exc.code)


def engine_error_response(dialect: str, exc: EngineError) -> HTTPResponse:
    headers = {}
    if exc.details.get("retry_after") is not None:
        headers["Retry-After"] = str(exc.details["retry_after"])
    return error_response(
        dialect, engine_status(exc), exc.message, param=exc.param, code=exc.code, headers=headers
    )


def stream_error_body(dialect: str, exc: Exception) -> dict:
    """The error line that ends a stream whose reply has begun (its status already sent)."""
    if isinstance(exc, EngineError):
        return engine_error_body(dialect, exc)
    log.error("unhandled error in a stream", exc_info=exc)
    return error_body(dialect, 500, f"internal error: {type(exc).__name__}: {exc}")


async def handle_exception(request: Request, exc: Exception) -> HTTPResponse:
    """The app-wide exception handler: every failure in the dialect of its route."""
    dialect = dialect_for(request.path)
    if isinstance(exc, EngineError):
        if engine_status(exc) >= 500:
            log.warning("%s %s: %s", request.method, request.path, exc.message)
        return engine_error_response(dialect, exc)
    if isinstance(exc, SanicException):
        status = exc.status_code
        message = str(exc) or "request failed"
        if status == 404:
            message = f"no such route: {request.method} {request.path}"
        elif status == 405:
            message = f"{request.method} is not allowed on {request.path}"
        elif status == 413:
            limit = request.app.config.REQUEST_MAX_SIZE // 2**20
            message = f"the request body is larger than the limit of {limit} MB"
        return error_response(dialect, status, message, headers=getattr(exc, "headers", None))
    log.exception("unhandled error on %s %s", request.method, request.path)
    return error_response(dialect, 500, f"internal error: {type(exc).__name__}: {exc}")
