"""An HTTP client's Modelfile may put a model only on the daemon's own RPC workers."""

import pytest

from mullama.config import load_settings
from mullama.engine.api import InvalidRequest
from mullama.engine.confined import AllowedDirs
from mullama.engine.store import ModelStore
from tests.fakehub import make_gguf


def store(tmp_path, rpc_servers: str) -> ModelStore:
    return ModelStore(
        load_settings(
            env={},
            cache_dir=tmp_path / "cache",
            config_dir=tmp_path / "config",
            data_dir=tmp_path / "data",
            rpc_servers=rpc_servers,
        )
    )


def test_confined_create_names_only_the_daemons_workers(tmp_path):
    gguf = make_gguf(tmp_path / "m.gguf")
    allowed = AllowedDirs([tmp_path])
    models = store(tmp_path, "10.0.0.2:50052")
    with pytest.raises(InvalidRequest) as caught:
        models.create("far", f"FROM {gguf}\nRPC 10.0.0.9:50052\n", None, allowed=allowed)
    assert "RPC 10.0.0.9:50052: a Modelfile sent over HTTP may name only" in caught.value.message
    assert "rpc_servers: 10.0.0.2:50052" in caught.value.message
    assert caught.value.param == "modelfile"
    models.create("near", f"FROM {gguf}\nRPC 10.0.0.2:50052\n", None, allowed=allowed)
    models.create("home", f"FROM {gguf}\nRPC none\n", None, allowed=allowed)
    # the local user (CLI, TUI: no confinement) may name any worker
    models.create("mine", f"FROM {gguf}\nRPC 10.0.0.9:50052\n", None)
    assert models.resolve("mine").spec.rpc == ["10.0.0.9:50052"]
