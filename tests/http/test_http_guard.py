"""What a web page can no longer do to a daemon without a key, against real daemons: a foreign
Host (DNS rebinding), changes from another origin or as text (``/api/create`` rewrote a model's
system prompt that way), a cross-site websocket to ``/ui/ws`` and more UI sessions than
``ui_max_sessions`` — while curl, the SDKs, CORS preflights and HEAD keep working. Also the
``/ui/`` login: a session token in the cookie, never the key, and a limit on wrong keys."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from pathlib import Path

import httpx
import pytest
import websockets

from tests.helpers import run_daemon, settings_env
from tests.http.conftest import CORS_ORIGIN, http_daemon_at
from tests.http.test_http_raw import assert_dialect

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

EVIL = "http://evil.example"
SYSTEM = '{"model": "victim", "from": "gemma", "system": "You are a pirate."}'


@pytest.fixture(scope="module")
def guarded(tmp_path_factory, test_model_path):
    with http_daemon_at(
        tmp_path_factory.mktemp("guarded"),
        test_model_path,
        MULLAMA_CORS_ORIGINS=CORS_ORIGIN,
        MULLAMA_ALLOWED_HOSTS="models.lan",
        MULLAMA_UI_MAX_SESSIONS="1",
    ) as daemon:
        yield daemon


def names(daemon) -> set[str]:
    return {m["name"] for m in httpx.get(f"{daemon.url}/api/tags").json()["models"]}


@pytest.mark.parametrize(
    "dialect, method, path",
    [
        ("openai", "GET", "/v1/models"),
        ("anthropic", "POST", "/v1/messages"),
        ("ollama", "GET", "/api/tags"),
        ("ollama", "GET", "/api/nothing"),
        ("openai", "GET", "/health"),
    ],
)
def test_a_foreign_host_is_403_in_dialect(guarded, dialect, method, path):
    r = httpx.request(method, guarded.url + path, headers={"Host": "evil.example"}, json={})
    assert "allowed_hosts" in assert_dialect(dialect, r, 403)


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "[::1]", "ui.localhost", "models.lan"])
def test_loopback_and_configured_hosts_are_served(guarded, host):
    port = guarded.port
    r = httpx.get(f"{guarded.url}/api/tags", headers={"Host": f"{host}:{port}"})
    assert r.status_code == 200


def test_a_text_post_from_another_site_changes_nothing(guarded):
    """The campaign's /api/create: text/plain, so no preflight; now refused by its Origin."""
    before = names(guarded)
    for headers in (
        {"Origin": EVIL, "Content-Type": "text/plain"},
        {"Origin": "null", "Content-Type": "text/plain"},
        {"Sec-Fetch-Site": "cross-site", "Content-Type": "text/plain"},
    ):
        r = httpx.post(f"{guarded.url}/api/create", content=SYSTEM, headers=headers)
        assert "cors_origins" in assert_dialect("ollama", r, 403)
    r = httpx.post(
        f"{guarded.url}/api/copy",
        json={"source": "gemma", "destination": "stolen"},
        headers={"Origin": EVIL},
    )
    assert_dialect("ollama", r, 403)
    r = httpx.request(
        "DELETE", f"{guarded.url}/api/delete", json={"model": "gemma"}, headers={"Origin": EVIL}
    )
    assert_dialect("ollama", r, 403)
    assert names(guarded) == before


@pytest.mark.parametrize(
    "dialect, path",
    [
        ("openai", "/v1/chat/completions"),
        ("anthropic", "/v1/messages"),
        ("ollama", "/api/create"),
    ],
)
def test_a_page_on_loopback_must_send_json(guarded, dialect, path):
    r = httpx.post(
        guarded.url + path,
        content=SYSTEM,
        headers={"Origin": "http://localhost:3000", "Content-Type": "text/plain"},
    )
    assert "Content-Type: application/json" in assert_dialect(dialect, r, 415)
    assert "victim" not in {n.partition(":")[0] for n in names(guarded)}


def test_allowed_origins_and_curl_still_change_things(guarded):
    r = httpx.post(
        f"{guarded.url}/api/copy",
        json={"source": "gemma", "destination": "copy-cors"},
        headers={"Origin": CORS_ORIGIN},
    )
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == CORS_ORIGIN
    same = f"http://127.0.0.1:{guarded.port}"
    r = httpx.post(
        f"{guarded.url}/api/copy",
        json={"source": "gemma", "destination": "copy-same"},
        headers={"Origin": same},
    )
    assert r.status_code == 200
    # curl -d sends its JSON as a form, as the README's (and Ollama's) examples do
    r = httpx.post(
        f"{guarded.url}/api/copy",
        content=b'{"source": "gemma", "destination": "copy-curl"}',
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 200
    assert {"copy-cors:latest", "copy-same:latest", "copy-curl:latest"} <= names(guarded)


def test_cors_preflight_for_an_allowed_origin(guarded):
    pre = httpx.options(
        f"{guarded.url}/api/create",
        headers={
            "Origin": CORS_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert pre.status_code == 204 and pre.headers["access-control-allow-origin"] == CORS_ORIGIN


def test_blob_uploads_from_an_allowed_page_are_octet_streams(guarded):
    blob = b"GGUF-not-really"
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    r = httpx.post(
        f"{guarded.url}/api/blobs/{digest}",
        content=blob,
        headers={"Origin": CORS_ORIGIN, "Content-Type": "application/octet-stream"},
    )
    assert r.status_code == 201
    assert httpx.head(f"{guarded.url}/api/blobs/{digest}").status_code == 200


@pytest.mark.parametrize(
    "path", ["/health", "/api/tags", "/api/version", "/v1/models", "/api/models", "/metrics", "/"]
)
def test_head_answers_get_routes(guarded, path):
    r = httpx.head(guarded.url + path)
    assert r.status_code == 200 and r.content == b""


# ---------------------------------------------------------------- /ui/


def ws_url(daemon) -> str:
    return f"ws://127.0.0.1:{daemon.port}/ui/ws"


async def test_the_ui_websocket_refuses_other_sites(guarded):
    for origin in (EVIL, "http://localhost:3000"):
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with websockets.connect(ws_url(guarded), origin=origin):
                pass
        assert refused.value.response.status_code == 403
        assert b"cors_origins" in refused.value.response.body


async def test_ui_sessions_are_capped(guarded):
    same = f"http://127.0.0.1:{guarded.port}"
    async with websockets.connect(ws_url(guarded), origin=same) as first:
        await first.recv()  # the TUI is running: its first bytes arrived
        assert httpx.get(f"{guarded.url}/ui/").status_code == 503
        async with websockets.connect(ws_url(guarded), origin=same) as second:
            with pytest.raises(websockets.ConnectionClosed):
                await second.recv()
        assert second.close_code == 1013 and "ui_max_sessions" in second.close_reason
    # the session's slot is free again once its handler is done
    async with httpx.AsyncClient() as client:
        for _ in range(600):
            if (await client.get(f"{guarded.url}/ui/")).status_code == 200:
                break
            await asyncio.sleep(0.1)
        else:
            pytest.fail("the closed UI session was never released")


# ---------------------------------------------------------------- login


@contextlib.contextmanager
def keyed_daemon(root: Path):
    with run_daemon(root, "--api-key", "s3cret", env=settings_env(root)) as daemon:
        yield daemon


def test_key_in_the_url_logs_in_once_and_leaves_it(tmp_path):
    with keyed_daemon(tmp_path) as d, httpx.Client(base_url=d.url) as client:
        r = client.get("/ui/", params={"key": "s3cret", "fontsize": "20"})
        assert r.status_code == 303 and r.headers["location"] == "/ui/?fontsize=20"
        cookie = r.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "s3cret" not in cookie
        assert client.get("/ui/").status_code == 200


def test_wrong_keys_back_off_with_429(tmp_path):
    with keyed_daemon(tmp_path) as d, httpx.Client(base_url=d.url) as client:
        for _ in range(5):
            assert client.post("/ui/login", data={"key": "guess"}).status_code == 401
        locked = client.post("/ui/login", data={"key": "s3cret"})  # even the right key waits
        assert locked.status_code == 429 and int(locked.headers["retry-after"]) > 0
        assert "try again" in locked.text and "mullama_ui_session" not in client.cookies
        assert client.get("/ui/", params={"key": "s3cret"}).status_code == 429
        # the API is not the login form: the key in a header still works
        assert (
            client.get("/api/tags", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        )


def test_a_network_bind_without_a_key_is_logged_and_still_checks_hosts(tmp_path):
    env = {**settings_env(tmp_path), "MULLAMA_HTTP_ADDR": "0.0.0.0"}
    with run_daemon(tmp_path, env=env) as d:
        assert "no API key" in d.log()
        assert httpx.get(f"{d.url}/health").status_code == 200
        evil = httpx.get(f"{d.url}/health", headers={"Host": "evil.example"})
        assert evil.status_code == 403


def test_error_messages_do_not_show_the_store(tmp_path, test_model_path):
    with http_daemon_at(tmp_path, test_model_path) as d:
        manifest = next((tmp_path / "cache" / "manifests").glob("gemma%3A*"))
        manifest.unlink()
        manifest.mkdir()  # unreadable: the OSError names the file
        r = httpx.post(f"{d.url}/api/show", json={"model": "gemma"})
        message = assert_dialect("ollama", r, r.status_code)
        assert "<store>/manifests/gemma" in message and str(tmp_path) not in message
