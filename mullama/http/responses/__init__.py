"""OpenAI's Responses API (``/v1/responses``): :mod:`.protocol` declares the bodies and events,
:mod:`.convert` turns them into engine requests, :mod:`.wire` writes engine events as a response
or its event stream, :mod:`.store` keeps stored responses, :mod:`.routes` serves them."""

from .routes import blueprint

__all__ = ["blueprint"]
