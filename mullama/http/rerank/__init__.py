"""The rerank API: ``POST /v1/rerank`` (also ``/rerank``, ``/v1/reranking`` and Cohere's
``/v2/rerank``) in the shape llama-server, Jina and Cohere clients send, and Hugging Face TEI's
``texts`` variant."""

from .routes import blueprint

__all__ = ["blueprint"]
