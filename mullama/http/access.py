"""The access log of ``mullama serve --verbose``: one line a request, on ``mullama.access``.

    GET /api/tags 200 1532B 2.1ms 127.0.0.1:50412
    POST /v1/chat/completions 200 4096B 812.4ms 127.0.0.1:50414

method, path (with its query), status, body bytes sent, duration, client. Sanic's own access
log is not used: its record carries these as ``extra`` fields under an empty message (nothing
shows with a plain ``%(message)s`` format), and it is written when the headers go out, so a
stream's line would have neither its size nor its duration. Here the line is written when the
handler is done — a stream's chunks all sent — from three Sanic signals, registered only with
``--verbose`` so that a daemon without it pays nothing."""

from __future__ import annotations

import logging
import re
import time

from sanic import Request, Sanic
from sanic.response import BaseHTTPResponse

log = logging.getLogger("mullama.access")
_KEY = re.compile(r"(?<![^&])(key)=[^&]*")


def install(app: Sanic) -> None:
    """Log every request ``app`` answers (call before the server starts)."""

    @app.signal("http.lifecycle.request")
    async def started(request: Request) -> None:
        request.ctx.access_t0 = time.perf_counter()
        request.ctx.access_sent = None  # body bytes streamed so far, once headers went out

    @app.signal("http.lifecycle.send")
    async def sent(data: bytes) -> None:
        try:
            request = Request.get_current()
        except Exception:  # a send outside a request (none expected)
            return
        count_sent(request.ctx, data)

    @app.signal("http.lifecycle.response")
    async def responded(request: Request, response: BaseHTTPResponse) -> None:
        log.info("%s", access_line(request, response))


def count_sent(ctx, data: bytes) -> None:
    """Add the body bytes in ``data`` (one write of the response: the headers first, then
    whole chunks when the response is chunked) to ``ctx.access_sent``."""
    if getattr(ctx, "access_sent", 0) is None:  # the first write: headers and maybe a chunk
        head, _, data = data.partition(b"\r\n\r\n")
        ctx.access_chunked = b"transfer-encoding: chunked" in head.lower()
        ctx.access_sent = 0
    if not hasattr(ctx, "access_sent"):
        return
    ctx.access_sent += chunked_body_bytes(data) if ctx.access_chunked else len(data)


def chunked_body_bytes(data: bytes) -> int:
    """The payload bytes in ``data``, whole chunks of HTTP/1.1 chunked encoding."""
    total, at = 0, 0
    while at < len(data):
        end = data.find(b"\r\n", at)
        if end < 0:
            break
        try:
            size = int(data[at:end].split(b";")[0], 16)
        except ValueError:
            break
        total += size
        if size == 0:
            break
        at = end + 2 + size + 2
    return total


def access_line(request: Request, response: BaseHTTPResponse) -> str:
    streamed = getattr(request.ctx, "access_sent", None)
    size = streamed if streamed is not None else len(response.body or b"")
    t0 = getattr(request.ctx, "access_t0", None)
    duration = 1000 * (time.perf_counter() - t0) if t0 is not None else 0.0
    query = _KEY.sub(r"\1=***", request.query_string)  # /ui/?key= is a login
    path = request.path + (f"?{query}" if query else "")
    client = f"{request.client_ip}:{request.port}" if request.client_ip else "-"
    return f"{request.method} {path} {response.status} {size}B {duration:.1f}ms {client}"
