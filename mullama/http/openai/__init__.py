"""The OpenAI-compatible API (``/v1/chat/completions``, ``/v1/completions``, ``/v1/embeddings``,
``/v1/models``): :mod:`.protocol` declares the bodies, :mod:`.convert` turns them into engine
requests, :mod:`.wire` writes engine events as OpenAI objects, :mod:`.routes` serves them."""

from .routes import blueprint

# llama-server also serves these routes without /v1: an SDK configured without it works
unprefixed = blueprint.copy("openai_unprefixed", url_prefix="")

__all__ = ["blueprint", "unprefixed"]
