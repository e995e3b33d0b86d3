"""Image URLs in requests: fetched when ``vision_fetch_urls`` is on, refused otherwise.

The dialects put what a client sent into ``Message.images``: base64 (a data URL's payload) or
an ``http(s)://`` URL. Before the engine sees a request, every URL is replaced by the base64
of what it points to, read with a time limit and at most ``vision_max_image_bytes``; or, with
the setting off (the default: the daemon would reach any address a client names), the request
is refused.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterable

import httpx
from sanic import Request

from ...engine.api import ChatRequest, InvalidRequest

SCHEMES = ("http://", "https://")


def is_url(value: str) -> bool:
    return value[:8].lower().startswith(SCHEMES)


async def fetch_image_urls(request: Request, chats: Iterable[ChatRequest]) -> None:
    """Replace the image URLs of ``chats``' messages by the images' base64, in place."""
    messages = [m for chat in chats for m in chat.messages if any(map(is_url, m.images))]
    if not messages:
        return
    settings = request.app.ctx.settings
    if not settings.vision_fetch_urls:
        raise InvalidRequest(
            "image URLs are not fetched by this server (its vision_fetch_urls setting is off): "
            "send the image itself, as a base64 data URL (data:image/png;base64,...)",
            param="images",
        )
    fetched: dict[str, str] = {}
    async with httpx.AsyncClient(
        timeout=settings.vision_fetch_timeout, follow_redirects=True, max_redirects=3
    ) as client:
        for message in messages:
            for i, value in enumerate(message.images):
                if is_url(value):
                    if value not in fetched:
                        data = await _fetch(
                            client,
                            value,
                            settings.vision_max_image_bytes,
                            settings.vision_fetch_timeout,
                        )
                        fetched[value] = base64.b64encode(data).decode("ascii")
                    message.images[i] = fetched[value]


async def _fetch(client: httpx.AsyncClient, url: str, limit: int, seconds: float) -> bytes:
    shown = url if len(url) <= 200 else url[:200] + "..."
    try:
        async with asyncio.timeout(seconds), client.stream("GET", url) as response:
            if response.status_code != 200:
                raise InvalidRequest(
                    f"the image at {shown} could not be fetched: HTTP {response.status_code}",
                    param="images",
                )
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit:
                raise _too_big(shown, limit)
            data = bytearray()
            async for chunk in response.aiter_bytes():
                data += chunk
                if len(data) > limit:
                    raise _too_big(shown, limit)
            return bytes(data)
    except (httpx.TimeoutException, TimeoutError):
        raise InvalidRequest(
            f"the image at {shown} could not be fetched in time", param="images"
        ) from None
    except httpx.HTTPError as exc:
        raise InvalidRequest(
            f"the image at {shown} could not be fetched: {exc}", param="images"
        ) from None


def _too_big(url: str, limit: int) -> InvalidRequest:
    return InvalidRequest(
        f"the image at {url} is over the limit of {limit:,} bytes", param="images", limit=limit
    )
