"""Settings: a typed msgspec Struct from defaults, settings.toml, MULLAMA_* and keywords."""

from __future__ import annotations

from pathlib import Path

import pytest

from mullama.config import Settings, load_settings


def test_environment_values_are_converted_to_the_field_types(tmp_path):
    env = {
        "MULLAMA_HTTP_PORT": "9090",
        "MULLAMA_SPAWN_TIMEOUT": "2.5",
        "MULLAMA_NOPRUNE": "yes",
        "MULLAMA_FLASH_ATTENTION": "off",
        "MULLAMA_CACHE_DIR": "~/models",
        "MULLAMA_CONFIG_DIR": str(tmp_path),
        "HF_TOKEN": "hf_x",
    }
    s = load_settings(env)
    assert isinstance(s, Settings)
    assert (s.http_port, s.spawn_timeout, s.noprune, s.flash_attention) == (9090, 2.5, True, False)
    assert s.cache_dir == Path.home() / "models" and s.hf_token == "hf_x"
    assert s.settings_file == tmp_path / "settings.toml"
    assert load_settings({**env, "MULLAMA_HF_TOKEN": "mine"}).hf_token == "mine"


def test_settings_toml_then_environment_then_keywords(tmp_path):
    (tmp_path / "settings.toml").write_text(
        'http_port = 7000\nkeep_alive = "10m"\nmax_loaded_models = 5\n\n[tui]\ntheme = "nord"\n'
    )
    env = {"MULLAMA_CONFIG_DIR": str(tmp_path), "MULLAMA_KEEP_ALIVE": "1h"}
    s = load_settings(env)
    assert (s.http_port, s.keep_alive, s.max_loaded_models) == (7000, "1h", 5)
    s = load_settings(env, http_port=1234, keep_alive=None, cache_dir=str(tmp_path / "c"))
    assert (s.http_port, s.keep_alive, s.cache_dir) == (1234, "1h", tmp_path / "c")


@pytest.mark.parametrize(
    ("name", "raw", "message"),
    [
        ("MULLAMA_HTTP_PORT", "eighty", "MULLAMA_HTTP_PORT must be an integer, got 'eighty'"),
        ("MULLAMA_SPAWN_TIMEOUT", "soon", "MULLAMA_SPAWN_TIMEOUT must be a number, got 'soon'"),
        ("MULLAMA_NOPRUNE", "maybe", "MULLAMA_NOPRUNE must be true or false, got 'maybe'"),
        (
            "MULLAMA_METRICS_ALIASES",
            "vllm",
            "MULLAMA_METRICS_ALIASES must be one of '', 'inference-extension', got 'vllm'",
        ),
    ],
)
def test_a_wrong_environment_value_names_the_variable(tmp_path, name, raw, message):
    with pytest.raises(ValueError) as err:
        load_settings({"MULLAMA_CONFIG_DIR": str(tmp_path), name: raw})
    assert str(err.value) == message


def test_a_wrong_settings_toml_value_names_the_key_and_file(tmp_path):
    (tmp_path / "settings.toml").write_text('max_queue = "lots"\n')
    with pytest.raises(ValueError) as err:
        load_settings({"MULLAMA_CONFIG_DIR": str(tmp_path)})
    assert str(err.value) == (
        f"max_queue in {tmp_path / 'settings.toml'} must be an integer, got 'lots'"
    )
    (tmp_path / "settings.toml").write_text("http_prot = 1\n")
    with pytest.raises(ValueError, match="unknown setting.*http_prot"):
        load_settings({"MULLAMA_CONFIG_DIR": str(tmp_path)})
    (tmp_path / "settings.toml").write_text("http_port = \n")
    with pytest.raises(ValueError, match="cannot parse"):
        load_settings({"MULLAMA_CONFIG_DIR": str(tmp_path)})


def test_settings_stay_mutable_like_before(tmp_path):
    s = load_settings({"MULLAMA_CONFIG_DIR": str(tmp_path)})
    s.http_port = 0  # the daemon writes the port it bound
    assert s.http_endpoint == "http://127.0.0.1:0"


def test_the_socket_may_be_a_bare_path_and_must_be_an_nng_address(tmp_path):
    from mullama.config import load_settings

    assert load_settings(env={"MULLAMA_SOCKET": "/run/m.sock"}).socket == "ipc:///run/m.sock"
    assert load_settings(env={"MULLAMA_SOCKET": "tcp://127.0.0.1:5555"}).socket.startswith("tcp")
    with pytest.raises(ValueError, match="ipc://PATH, a path or tcp://HOST:PORT"):
        load_settings(env={"MULLAMA_SOCKET": "http://127.0.0.1:1"})


def test_the_api_key_comes_from_mullama_api_key(tmp_path):
    env = {"MULLAMA_CONFIG_DIR": str(tmp_path), "MULLAMA_API_KEY": "from-env"}
    assert load_settings(env).api_key == "from-env"
    assert load_settings(env, api_key="flag").api_key == "flag"


def key_file(tmp_path: Path, text: str = "s3cret\n", mode: int = 0o600) -> Path:
    path = tmp_path / "api.key"
    path.write_text(text)
    path.chmod(mode)
    return path


def test_the_api_key_comes_from_a_private_key_file(tmp_path):
    path = key_file(tmp_path)
    env = {"MULLAMA_CONFIG_DIR": str(tmp_path)}
    assert load_settings({**env, "MULLAMA_API_KEY_FILE": str(path)}).api_key == "s3cret"
    assert load_settings(env, api_key_file=str(path)).api_key == "s3cret"
    (tmp_path / "settings.toml").write_text(f'api_key_file = "{path}"\n')
    assert load_settings(env).api_key == "s3cret"
    # the same key from both places is fine; different ones are a mistake to point out
    assert load_settings({**env, "MULLAMA_API_KEY": "s3cret"}).api_key == "s3cret"
    with pytest.raises(ValueError) as err:
        load_settings({**env, "MULLAMA_API_KEY": "other"})
    assert str(err.value) == (
        f"MULLAMA_API_KEY and api_key_file in {tmp_path / 'settings.toml'} give different "
        "API keys: set one of them"
    )


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_a_key_file_other_users_can_read_is_refused(tmp_path, mode):
    path = key_file(tmp_path, mode=mode)
    with pytest.raises(ValueError) as err:
        load_settings({"MULLAMA_CONFIG_DIR": str(tmp_path), "MULLAMA_API_KEY_FILE": str(path)})
    assert str(err.value) == (
        f"MULLAMA_API_KEY_FILE: the API key file {path} is readable by other users "
        f"(mode {mode:04o}); run `chmod 600 {path}`"
    )


def test_an_empty_or_missing_key_file_is_refused(tmp_path):
    env = {"MULLAMA_CONFIG_DIR": str(tmp_path)}
    with pytest.raises(ValueError, match="is empty"):
        load_settings(env, api_key_file=str(key_file(tmp_path, text=" \n")))
    with pytest.raises(ValueError, match="api_key_file: cannot read the API key file"):
        load_settings(env, api_key_file=str(tmp_path / "nowhere"))
