"""The API key never on a command line, where every local user can read it: the daemon the
CLI starts gets it in its environment, ``--api-key-file`` reads it from a private file."""

from __future__ import annotations

import os
import stat

import pytest

from tests.cli.conftest import daemon_processes, mullama


def without_key(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in {**os.environ, **env}.items() if k != "MULLAMA_API_KEY"}


def _cmdlines(socket: str) -> list[str]:
    return [" ".join(p.cmdline()) for p in daemon_processes(socket)]


@pytest.mark.slow
def test_an_auto_started_daemon_gets_the_key_without_a_command_line(cold_env):
    env = {**cold_env, "MULLAMA_API_KEY": "spawned-key-42"}
    result = mullama(env, "list")
    assert result.returncode == 0, result.stderr
    lines = _cmdlines(env["MULLAMA_SOCKET"])
    assert len(lines) == 1 and "spawned-key-42" not in lines[0]
    # the daemon has the key: without it, it refuses
    result = mullama(without_key(env), "list")
    assert result.returncode == 1 and "requires an API key" in result.stderr


@pytest.mark.slow
def test_daemon_start_and_restart_keep_an_explicit_key_off_the_command_line(cold_env):
    env = without_key(cold_env)
    result = mullama(env, "daemon", "start", "--api-key", "first-key-1")
    assert result.returncode == 0, result.stderr
    assert all("first-key-1" not in line for line in _cmdlines(env["MULLAMA_SOCKET"]))
    assert mullama({**env, "MULLAMA_API_KEY": "first-key-1"}, "ps").returncode == 0
    result = mullama(
        {**env, "MULLAMA_API_KEY": "first-key-1"}, "daemon", "restart", "--api-key", "second-2"
    )
    assert result.returncode == 0, result.stderr
    lines = _cmdlines(env["MULLAMA_SOCKET"])
    assert len(lines) == 1 and "second-2" not in lines[0]
    assert mullama({**env, "MULLAMA_API_KEY": "second-2"}, "ps").returncode == 0
    assert mullama({**env, "MULLAMA_API_KEY": "first-key-1"}, "ps").returncode == 1


def test_serve_argv_never_carries_the_key():
    from mullama.cli.main import build_parser
    from mullama.daemon import serve_argv

    args = build_parser().parse_args(
        ["daemon", "start", "--api-key", "k-123", "--api-key-file", "/k", "--http-port", "1"]
    )
    argv = serve_argv(args)
    assert "k-123" not in argv and "--api-key" not in argv and "--api-key-file" not in argv
    assert argv[-2:] == ["--http-port", "1"]


def test_a_key_file_others_can_read_is_refused_by_serve(tmp_path):
    from tests.helpers import settings_env

    key_file = tmp_path / "key"
    key_file.write_text("k")
    key_file.chmod(0o640)
    env = {**os.environ, **settings_env(tmp_path)}
    result = mullama(env, "serve", "--headless", "--api-key-file", str(key_file))
    assert result.returncode == 2
    assert "readable by other users (mode 0640)" in result.stderr
    assert f"chmod 600 {key_file}" in result.stderr
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o640  # never "fixed" behind the user's back
