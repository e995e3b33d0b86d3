"""Error responses in the three HTTP dialects: OpenAI, Anthropic and Ollama.

The dialect follows the route: ``/v1/messages…`` speaks Anthropic, ``/api/…`` speaks Ollama
(``{"error": "…"}``, also used by the management API), everything else speaks OpenAI.

Messages never show where the daemon keeps its files: the store, data and config folders read
``<store>``, ``<data>`` and ``<config>``, the home folder ``~`` (the log keeps the full text).
"""

from __future__ import annotations

import errno
import logging
import os
import re
from pathlib import Path

from sanic import HTTPResponse, Request
from sanic.exceptions import SanicException
from sanic.response import json

from ..config import Settings
from ..engine.api import Cancelled, EngineError

log = logging.getLogger("mullama.http")

OPENAI, ANTHROPIC, OLLAMA = "openai", "anthropic", "ollama"
# every 503 says when to try again (a router then cools this server down instead of failing it)
RETRY_AFTER_SECONDS = 5

_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    415: "invalid_request_error",
    429: "rate_limit_error",
    503: "overloaded_error",
}


# absolute folder -> what messages say instead (see hide_paths)
_HIDDEN: dict[str, str] = {}
_hidden_pattern: re.Pattern[str] | None = None


def hide_paths(settings: Settings) -> None:
    """Say ``<store>``, ``<data>``, ``<config>`` and ``~`` for these folders in every message.
    Kept per process, for the folders of every app created (tests create several)."""
    global _hidden_pattern
    folders = {
        settings.cache_dir: "<store>",
        settings.data_dir: "<data>",
        settings.config_dir: "<config>",
        Path.home(): "~",
    }
    for folder, label in folders.items():
        for form in (str(folder), os.path.realpath(folder)):
            form = form.rstrip("/")
            if form and form not in _HIDDEN:
                _HIDDEN[form] = label
    longest_first = sorted(_HIDDEN, key=len, reverse=True)
    _hidden_pattern = re.compile(
        "(?:" + "|".join(re.escape(folder) for folder in longest_first) + r")(?![\w.-])"
    )


def scrub(message: str) -> str:
    """``message`` without the daemon's folders (see :func:`hide_paths`)."""
    if _hidden_pattern is None or "/" not in message:
        return message
    return _hidden_pattern.sub(lambda m: _HIDDEN[m.group(0)], message)


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
    if status == 503 and not any(k.lower() == "retry-after" for k in headers or {}):
        headers = {**(headers or {}), "Retry-After": str(RETRY_AFTER_SECONDS)}
    return json(
        error_body(dialect, status, message, param=param, code=code), status=status, headers=headers
    )


def error_body(
    dialect: str, status: int, message: str, *, param: str | None = None, code: str | None = None
) -> dict:
    message = scrub(message)
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
            message = too_large(request.app.ctx.settings.max_body_mb, "max_body_mb")
        return error_response(dialect, status, message, headers=getattr(exc, "headers", None))
    if isinstance(exc, RecursionError):  # json and every walk over a body: input nested too deep
        log.warning("%s %s: %s", request.method, request.path, NESTED_TOO_DEEP, exc_info=exc)
        return error_response(dialect, 400, NESTED_TOO_DEEP)
    if isinstance(exc, OSError) and exc.errno == errno.ENAMETOOLONG:  # a static file's name
        return error_response(dialect, 404, f"no such file: {request.path[:100]}…")
    log.exception("unhandled error on %s %s", request.method, request.path)
    return error_response(dialect, 500, f"internal error: {type(exc).__name__}: {exc}")


NESTED_TOO_DEEP = "the request body nests arrays or objects too deeply"


def too_large(limit_mb: int, setting: str) -> str:
    return (
        f"the request body is larger than the limit of {limit_mb} MB "
        f"(the {setting} setting, MULLAMA_{setting.upper()})"
    )
