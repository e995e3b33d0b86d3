"""The HTTP front end: the Sanic app and the OpenAI, Anthropic and Ollama dialects.

Each dialect is a package — ``protocol.py`` (pydantic request models and the reply shapes:
pydantic for whole replies, TypedDicts for streamed chunks), ``convert.py`` (request model →
Engine request), ``wire.py`` (engine events → that dialect's objects, a
:class:`~.common.wire.Writer`) and ``routes.py`` (the blueprint its ``__init__`` exports).
What they share is in ``common/`` (the model bases, the one event → reply path), ``errors.py``
(errors in each dialect's shape), ``events.py`` and ``sse.py``; ``app.py`` registers the
blueprints, with the management API (``manage.py``) and ``/ui/`` (``ui.py``). A new dialect is
a new package and one line in ``app.py``.
"""
