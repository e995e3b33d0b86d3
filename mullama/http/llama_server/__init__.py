"""llama-server's own routes that clients use beside the OpenAI API: ``/tokenize`` and
``/detokenize`` (:mod:`.protocol` declares the bodies, :mod:`.routes` serves them)."""

from .routes import blueprint

__all__ = ["blueprint"]
