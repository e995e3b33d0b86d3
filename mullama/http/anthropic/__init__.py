"""The Anthropic-compatible API (``/v1/messages``, ``/v1/messages/count_tokens``):
:mod:`.protocol` declares the bodies, :mod:`.convert` turns them into engine requests,
:mod:`.wire` writes engine events as Anthropic messages and stream events, :mod:`.routes`
serves them."""

from .routes import blueprint

__all__ = ["blueprint"]
