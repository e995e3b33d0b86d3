"""`mullama stop MODEL`: unloads a loaded model now; a model that is not loaded is an error
whose suggestions are only loaded models."""

from __future__ import annotations

import json

import pytest

from mullama.cli.ps import not_loaded
from tests.helpers import GEMMA_MODELFILE, GEMMA_TEMPLATE

from .conftest import daemon_processes, mullama


def test_not_loaded_suggests_only_loaded_models_and_never_the_name_itself():
    loaded = ["gemma:latest", "qwen3:0.6b"]
    assert not_loaded("gema", loaded).message == (
        "model 'gema' is not loaded; did you mean 'gemma:latest'?"
    )
    assert not_loaded("qwen3", loaded).message.endswith("did you mean 'qwen3:0.6b'?")
    unknown = not_loaded("llama3.2", loaded)  # a known alias, but not loaded: no suggestion
    assert unknown.message == "model 'llama3.2' is not loaded" and "mullama ps" in unknown.hint
    alone = not_loaded("gemma", [])
    assert alone.message == "model 'gemma' is not loaded (no model is loaded)"
    assert "did you mean" not in not_loaded("gemma:latest", ["gemma:latest"]).message


def loaded(env: dict[str, str]) -> list[str]:
    return [m["name"] for m in json.loads(mullama(env, "ps", "--json").stdout)["models"]]


@pytest.mark.slow
@pytest.mark.e2e
def test_stop_unloads_through_the_auto_started_daemon(cold_env, test_model_path):
    from mullama.config import load_settings
    from mullama.engine.store import ModelStore

    modelfile = GEMMA_MODELFILE.format(path=test_model_path, template=GEMMA_TEMPLATE)
    ModelStore(load_settings(env=cold_env)).create("gemma", modelfile, None)
    assert mullama(cold_env, "run", "gemma", "Hi", "-n", "2").returncode == 0  # starts the daemon
    assert loaded(cold_env) == ["gemma:latest"]

    typo = mullama(cold_env, "stop", "gema")
    assert typo.returncode == 1 and typo.stdout == ""
    assert typo.stderr == "Error: model 'gema' is not loaded; did you mean 'gemma:latest'?\n"
    assert loaded(cold_env) == ["gemma:latest"]

    stopped = mullama(cold_env, "stop", "gemma")
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout == "stopped 'gemma:latest'\n"
    assert loaded(cold_env) == []

    again = mullama(cold_env, "stop", "gemma")
    assert again.returncode == 1
    assert again.stderr.startswith("Error: model 'gemma' is not loaded (no model is loaded)\n")

    assert mullama(cold_env, "daemon", "stop").returncode == 0
    idle = mullama(cold_env, "stop", "gemma")  # no daemon: an error, and none is started for it
    assert idle.returncode == 1
    assert idle.stderr.startswith(
        "Error: model 'gemma' is not loaded (the Mullama daemon is not running)"
    )
    assert daemon_processes(cold_env["MULLAMA_SOCKET"]) == []


def test_stop_is_listed_in_the_help(cold_env):
    listing = mullama(cold_env, "--help").stdout
    assert "stop" in listing and "unload a running model now" in listing
