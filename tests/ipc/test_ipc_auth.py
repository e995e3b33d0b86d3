"""The API key covers the IPC socket: a real daemon with a key refuses every request without
it (Ping included), RemoteEngine, the CLI and the TUI send it, and a network address without
a key is refused at start."""

from __future__ import annotations

import os

import httpx
import pytest

from mullama.engine.api import EngineError, Unauthorized
from mullama.ipc import RemoteEngine
from mullama.ipc.protocol import IpcUnauthorized
from tests.cli.conftest import daemon_processes, mullama

from .conftest import raw_request

KEY = "ipc-test-key-0123456789"

# What anyone on the socket must not be able to do without the key (data of each request).
FORBIDDEN = {
    "Ping": {},
    "ListModels": {},
    "DeleteModel": {"name": "gemma"},
    "CopyModel": {"source": "gemma", "destination": "stolen"},
    "Status": {},
    "Shutdown": {},
    "NoSuchKind": {},  # not even which kinds exist is told
}


@pytest.fixture(scope="module")
def keyed_daemon(tmp_path_factory, test_model_path):
    from mullama.config import load_settings
    from mullama.engine.store import ModelStore
    from tests.conftest import gemma_modelfile
    from tests.helpers import run_daemon, settings_env

    root = tmp_path_factory.mktemp("keyed")
    env = {**settings_env(root), "MULLAMA_API_KEY": KEY}
    ModelStore(load_settings(env=env)).create("gemma", gemma_modelfile(test_model_path), None)
    with run_daemon(root, env=env) as d:
        yield d


def without_key(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in {**os.environ, **env}.items() if k != "MULLAMA_API_KEY"}


@pytest.mark.slow
@pytest.mark.parametrize("auth", [None, "", "wrong-key", 12345])
def test_every_request_without_the_key_is_refused(keyed_daemon, auth):
    for kind, data in FORBIDDEN.items():
        envelope = {"type": kind, "data": data, "id": 1, "v": 1}
        if auth is not None:
            envelope["auth"] = auth
        reply = raw_request(keyed_daemon.socket, envelope)
        assert reply["type"] == "Error" and reply["id"] == 1, (kind, reply)
        assert reply["data"]["code"] == "unauthorized", (kind, reply)
        assert reply["data"]["details"] == {"scope": "ipc"}
        assert "requires its API key" in reply["data"]["message"]
        assert "ListModels" not in reply["data"]["message"]
    # nothing happened: the daemon runs, the model is there, no copy was made
    assert keyed_daemon.proc.poll() is None
    answer = raw_request(keyed_daemon.socket, {"type": "ListModels", "v": 1, "auth": KEY})
    assert [m["name"] for m in answer["data"]["models"]] == ["gemma:latest"]


@pytest.mark.slow
async def test_remote_engine_sends_the_key_and_says_clearly_when_it_has_none(keyed_daemon):
    engine = RemoteEngine(keyed_daemon.socket, api_key=KEY)
    try:
        assert (await engine.ping()).pid == keyed_daemon.proc.pid
        assert [m.name for m in await engine.list_models()] == ["gemma:latest"]
    finally:
        await engine.close()
    for key, words in (("", "requires an API key"), ("nope", "refused the API key")):
        engine = RemoteEngine(keyed_daemon.socket, api_key=key)
        try:
            for call in (engine.ping, engine.list_models, engine.shutdown):
                with pytest.raises(IpcUnauthorized) as info:
                    await call()
                error = info.value
                assert isinstance(error, Unauthorized) and isinstance(error, EngineError)
                assert error.status == 401 and words in error.message
                assert "MULLAMA_API_KEY" in error.message and "api_key_file" in error.message
        finally:
            await engine.close()
    assert keyed_daemon.proc.poll() is None


@pytest.mark.slow
def test_the_cli_needs_the_key_and_says_where_to_set_it(keyed_daemon):
    env = without_key(keyed_daemon.env)
    for args in (["list"], ["rm", "gemma"], ["cp", "gemma", "stolen"], ["daemon", "stop"]):
        result = mullama(env, *args)
        assert result.returncode == 1, (args, result)
        assert "requires an API key" in result.stderr and "MULLAMA_API_KEY" in result.stderr
        assert "starting it automatically" not in result.stderr  # it is up: no second daemon
    assert keyed_daemon.proc.poll() is None
    assert daemon_processes(keyed_daemon.socket) == []  # no daemon was auto-started beside it
    result = mullama({**env, "MULLAMA_API_KEY": "wrong"}, "list")
    assert result.returncode == 1 and "refused the API key" in result.stderr
    result = mullama({**env, "MULLAMA_API_KEY": KEY}, "list")
    assert result.returncode == 0 and "gemma:latest" in result.stdout


@pytest.mark.slow
def test_the_cli_reads_the_key_from_api_key_file(keyed_daemon, tmp_path):
    key_file = tmp_path / "key"
    key_file.write_text(KEY + "\n")
    key_file.chmod(0o600)
    env = {**without_key(keyed_daemon.env), "MULLAMA_API_KEY_FILE": str(key_file)}
    result = mullama(env, "list")
    assert result.returncode == 0 and "gemma:latest" in result.stdout, result.stderr
    key_file.chmod(0o644)
    result = mullama(env, "list")
    assert result.returncode == 2 and f"chmod 600 {key_file}" in result.stderr


@pytest.mark.slow
def test_http_and_ipc_share_the_key(keyed_daemon):
    assert httpx.get(f"{keyed_daemon.url}/api/tags").status_code == 401
    headers = {"Authorization": f"Bearer {KEY}"}
    assert httpx.get(f"{keyed_daemon.url}/api/tags", headers=headers).status_code == 200


@pytest.mark.slow
async def test_the_tui_attaches_with_the_key_and_shows_the_refusal_without(keyed_daemon):
    from mullama.config import load_settings
    from mullama.tui.connection import connect

    settings = load_settings(env={**keyed_daemon.env, "MULLAMA_API_KEY": KEY})
    engine = await connect(settings, settings.socket, attach_only=True)
    try:
        assert engine.mode == "remote" and (await engine.ping()).pid == keyed_daemon.proc.pid
    finally:
        await engine.close()
    settings = load_settings(env=without_key(keyed_daemon.env))
    # not "no daemon" (which would start an engine in the TUI's own process): the refusal
    with pytest.raises(IpcUnauthorized, match="MULLAMA_API_KEY"):
        await connect(settings, settings.socket)


def test_the_web_tui_gets_the_key_in_its_environment_not_its_command_line(tmp_path):
    from mullama.config import load_settings
    from mullama.http.ui import tui_service

    settings = load_settings(env={"MULLAMA_CONFIG_DIR": str(tmp_path), "MULLAMA_API_KEY": KEY})

    def nothing(*_args):
        return None

    service = tui_service(
        settings, write_bytes=nothing, write_str=nothing, close=nothing, download_manager=None
    )
    assert service._build_environment()["MULLAMA_API_KEY"] == KEY
    assert KEY not in service.command


# ------------------------------------------------------------ network addresses need a key


@pytest.mark.parametrize(
    "host", ["0.0.0.0", "*", "", "192.168.1.20", "[::]", "example.org", "[2001:db8::1]"]
)
def test_a_network_ipc_address_without_a_key_is_refused(host):
    from mullama.ipc.server import check_exposure

    address = f"tcp://{host}:5555"
    with pytest.raises(EngineError) as info:
        check_exposure(address, has_key=False)
    assert address in info.value.message and "API key" in info.value.message
    assert "MULLAMA_API_KEY" in info.value.message and "--api-key-file" in info.value.message
    check_exposure(address, has_key=True)
    with pytest.raises(EngineError):
        check_exposure(f"ws://{host}:5555/ipc", has_key=False)


@pytest.mark.parametrize(
    "address",
    ["tcp://127.0.0.1:5555", "tcp://127.1.2.3:5555", "tcp://localhost:5555", "tcp://[::1]:5555"],
)
def test_a_loopback_or_ipc_address_needs_no_key(address):
    from mullama.ipc.server import check_exposure

    check_exposure(address, has_key=False)
    check_exposure(address.replace("tcp", "ws") + "/ipc", has_key=False)
    check_exposure("ipc:///run/user/1000/mullama/mullama.sock", has_key=False)


@pytest.mark.slow
def test_the_daemon_refuses_to_start_on_a_network_socket_without_a_key(tmp_path):
    from tests.helpers import free_port, settings_env

    env = {**os.environ, **settings_env(tmp_path)}
    env.pop("MULLAMA_API_KEY", None)
    port = free_port()
    result = mullama(env, "serve", "--headless", "--socket", f"tcp://0.0.0.0:{port}")
    assert result.returncode == 1
    output = result.stdout + result.stderr
    assert f"tcp://0.0.0.0:{port} is reachable from other machines" in output
    assert "serving HTTP" not in output
