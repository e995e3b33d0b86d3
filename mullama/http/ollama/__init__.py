"""The Ollama-compatible API (``/api/*``): :mod:`.protocol` declares the bodies, :mod:`.convert`
turns them into engine requests, :mod:`.wire` writes engine events as Ollama objects,
:mod:`.models` describes models (tags, ps, show), :mod:`.create` turns ``/api/create`` into a
Modelfile and moves blobs, :mod:`.routes` serves them all."""

from .routes import blueprint

__all__ = ["blueprint"]
