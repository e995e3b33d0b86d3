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
