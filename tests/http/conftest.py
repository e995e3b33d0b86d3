"""A real daemon for the HTTP API tests, and SDK clients pointed at it."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from tests.conftest import gemma_modelfile
from tests.helpers import run_daemon, serve_command, settings_env

MAX_BODY_MB = 1
CORS_ORIGIN = "http://allowed.example"


@contextlib.contextmanager
def http_daemon_at(root: Path, model_path: Path, **env_extra: str):
    """A daemon in ``root`` with the test model as ``gemma`` and ``gemma-line`` (which also
    stops at a newline, so its answers end with finish reason ``stop``); HTTP clients may
    create models from the test model's file (``allowed_model_dirs``)."""
    from mullama.config import load_settings
    from mullama.engine.store import ModelStore

    allowed = {"MULLAMA_ALLOWED_MODEL_DIRS": str(model_path.parent)}
    env = {**settings_env(root), **allowed, **env_extra}
    store = ModelStore(load_settings(env=env))
    store.create("gemma", gemma_modelfile(model_path), None)
    store.create("gemma-line", gemma_modelfile(model_path, 'PARAMETER stop "\\n"\n'), None)
    with run_daemon(root, env=env, command=serve_command()) as daemon:
        yield daemon


@pytest.fixture(scope="session")
def api(tmp_path_factory, test_model_path):
    """The daemon most HTTP tests share: 1 MB body limit, CORS for one origin."""
    root = tmp_path_factory.mktemp("http")
    with http_daemon_at(
        root,
        test_model_path,
        MULLAMA_MAX_BODY_MB=str(MAX_BODY_MB),
        MULLAMA_CORS_ORIGINS=CORS_ORIGIN,
    ) as daemon:
        yield daemon


@pytest.fixture
def oai(api):
    import openai

    with openai.OpenAI(base_url=f"{api.url}/v1", api_key="unused", max_retries=0) as client:
        yield client


@pytest.fixture
async def aoai(api):
    import openai

    async with openai.AsyncOpenAI(
        base_url=f"{api.url}/v1", api_key="unused", max_retries=0
    ) as client:
        yield client


@pytest.fixture
def claude(api):
    import anthropic

    with anthropic.Anthropic(base_url=api.url, api_key="unused", max_retries=0) as client:
        yield client


@pytest.fixture
async def aclaude(api):
    import anthropic

    async with anthropic.AsyncAnthropic(
        base_url=api.url, api_key="unused", max_retries=0
    ) as client:
        yield client


@contextlib.asynccontextmanager
async def served(app):
    """``app`` on a free loopback port in this event loop (no daemon process); yields its URL."""
    app.config.TOUCHUP = False  # Sanic rewrites its classes once per process, not per app
    server = await app.create_server(
        host="127.0.0.1",
        port=0,
        return_asyncio_server=True,
        asyncio_server_kwargs={"start_serving": False},
    )
    assert server is not None
    await server.startup()
    await server.before_start()
    await server.start_serving()
    await server.after_start()
    try:
        yield f"http://127.0.0.1:{server.server.sockets[0].getsockname()[1]}"
    finally:
        await server.before_stop()
        await server.close()
        await server.after_stop()
