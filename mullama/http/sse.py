"""Streamed responses: server-sent events (OpenAI, Anthropic) and NDJSON (management API)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sanic import Request

STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def sse(data: Mapping[str, Any] | str, event: str | None = None) -> str:
    """One SSE event; dicts are sent as compact JSON."""
    payload = (
        data
        if isinstance(data, str)
        else json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    )
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n"


def ndjson(data: Mapping[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False) + "\n"


async def open_stream(request: Request, content_type: str = "text/event-stream"):
    """Send the headers of a streamed 200 response; the caller sends the body and ``eof()``."""
    return await request.respond(content_type=content_type, headers=STREAM_HEADERS)
