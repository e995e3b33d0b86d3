"""The HTTP guard's rules on their own: which Host names and origins pass, the login limiter's
backoff (on a clock the test moves), session tokens, the folders error messages hide, and HEAD
on every GET route."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from mullama.config import load_settings
from mullama.http import errors
from mullama.http.guard import Guard, host_name, is_loopback_addr
from mullama.http.ui_auth import FIRST_WAIT, FREE_TRIES, MAX_WAIT, LoginLimiter, SessionTokens


def settings(tmp_path, **values):
    return load_settings(
        env={},
        cache_dir=tmp_path / "c",
        config_dir=tmp_path / "cf",
        data_dir=tmp_path / "d",
        **values,
    )


def request(method="POST", **headers):
    """What the guard reads of a request: headers (lower-case keys), method, path, body."""
    return SimpleNamespace(
        method=method,
        path="/api/create",
        body=b"{}",
        headers={k.replace("_", "-").lower(): v for k, v in headers.items()},
    )


@pytest.mark.parametrize(
    "authority, name",
    [
        ("localhost:8080", "localhost"),
        ("[::1]:80", "::1"),
        ("::1", "::1"),
        ("A.Example.", "a.example"),
    ],
)
def test_host_name(authority, name):
    assert host_name(authority) == name


@pytest.mark.parametrize(
    "host, allowed",
    [
        ("localhost:8080", True),
        ("LOCALHOST", True),
        ("app.localhost", True),
        ("127.0.0.1:8080", True),
        ("[::1]:8080", True),
        ("192.168.1.20:8080", True),  # an address cannot be re-bound
        ("evil.example", False),
        ("localhost.evil.example", False),
        ("models.lan", True),  # configured
        ("gpu.corp.example", True),  # *.corp.example
        ("corp.example.evil", False),
        (None, True),  # HTTP/1.0
    ],
)
def test_hosts(tmp_path, host, allowed):
    guard = Guard(settings(tmp_path, allowed_hosts="models.lan, *.corp.example"))
    assert guard.host_allowed(host) is allowed


def test_any_host_and_the_bound_name(tmp_path):
    assert Guard(settings(tmp_path, allowed_hosts="*")).host_allowed("evil.example")
    assert Guard(settings(tmp_path, http_addr="box.lan")).host_allowed("box.lan:8080")
    assert not Guard(settings(tmp_path, http_addr="0.0.0.0")).host_allowed("evil.example")


@pytest.mark.parametrize(
    "addr, loopback",
    [
        ("127.0.0.1", True),
        ("localhost", True),
        ("::1", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.2", False),
    ],
)
def test_loopback_binds(addr, loopback):
    assert is_loopback_addr(addr) is loopback


@pytest.mark.parametrize(
    "headers, refused",
    [
        ({}, False),  # curl, SDKs
        ({"origin": "http://evil.example"}, True),
        ({"origin": "null"}, True),
        ({"origin": "http://allowed.example"}, False),  # cors_origins
        ({"origin": "http://localhost:3000"}, False),  # loopback
        ({"origin": "http://127.0.0.1:8080", "host": "127.0.0.1:8080"}, False),
        ({"origin": "http://box.lan:8080", "host": "box.lan:8080"}, False),  # same origin
        ({"sec-fetch-site": "cross-site"}, True),
        ({"sec-fetch-site": "same-origin"}, False),
    ],
)
def test_origins_of_changes(tmp_path, headers, refused):
    guard = Guard(settings(tmp_path, cors_origins="http://allowed.example"))
    assert (guard.origin_refusal(request(**headers)) is not None) is refused


def test_websocket_origins(tmp_path):
    guard = Guard(settings(tmp_path, cors_origins="http://allowed.example"))
    same = request("GET", origin="http://127.0.0.1:8080", host="127.0.0.1:8080")
    assert guard.websocket_allowed(same)
    assert guard.websocket_allowed(request("GET", origin="http://allowed.example"))
    assert guard.websocket_allowed(request("GET"))  # not a browser
    # another page on loopback gets no TUI: a websocket has no CORS to stop it
    assert not guard.websocket_allowed(request("GET", origin="http://localhost:3000"))
    assert not guard.websocket_allowed(request("GET", origin="http://evil.example"))


@pytest.mark.parametrize(
    "headers, refused",
    [
        ({"origin": "http://localhost:3000", "content-type": "text/plain"}, True),
        ({"origin": "http://localhost:3000", "content-type": "multipart/form-data; b=x"}, True),
        (
            {"sec-fetch-site": "same-origin", "content-type": "application/x-www-form-urlencoded"},
            True,
        ),
        ({"origin": "http://localhost:3000"}, True),  # an untyped Blob body
        ({"origin": "http://localhost:3000", "content-type": "application/json"}, False),
        (
            {"origin": "http://localhost:3000", "content-type": "application/json; charset=utf-8"},
            False,
        ),
        ({"content-type": "application/x-www-form-urlencoded"}, False),  # curl -d
        ({"content-type": "text/plain"}, False),  # not from a web page
    ],
)
def test_content_types(headers, refused):
    assert (Guard.content_type_refusal(request(**headers)) is not None) is refused


def test_limiter_backs_off_and_forgives():
    now = [1000.0]
    limiter = LoginLimiter(clock=lambda: now[0])
    for _ in range(FREE_TRIES - 1):
        limiter.failed("a")
        assert limiter.wait("a") == 0
    limiter.failed("a")
    assert limiter.wait("a") == FIRST_WAIT and limiter.wait("b") == 0
    now[0] += FIRST_WAIT
    assert limiter.wait("a") == 0
    limiter.failed("a")
    assert limiter.wait("a") == 2 * FIRST_WAIT
    for _ in range(40):
        limiter.failed("a")
    assert limiter.wait("a") == MAX_WAIT
    limiter.succeeded("a")
    assert limiter.wait("a") == 0


def test_session_tokens():
    tokens = SessionTokens(limit=2)
    first, second, third = tokens.issue(), tokens.issue(), tokens.issue()
    assert len({first, second, third}) == 3 and len(first) >= 40
    assert not tokens.valid(first)  # the oldest was logged out
    assert tokens.valid(second) and tokens.valid(third)
    assert not tokens.valid("") and not tokens.valid(None)


def test_messages_hide_the_daemons_folders(tmp_path, monkeypatch):
    monkeypatch.setattr(errors, "_HIDDEN", {})
    monkeypatch.setattr(errors, "_hidden_pattern", None)
    errors.hide_paths(settings(tmp_path))
    store = tmp_path / "c"
    message = f"the weights of x are missing ({store}/blobs/sha256-1); see {tmp_path / 'd'}/r"
    assert (
        errors.scrub(message)
        == "the weights of x are missing (<store>/blobs/sha256-1); see <data>/r"
    )
    assert errors.scrub(f"{store}2/file") == f"{store}2/file"  # a sibling folder is not the store
    body = errors.error_body(errors.OLLAMA, 404, f"no such model file: {store}/m.gguf")
    assert body == {"error": "no such model file: <store>/m.gguf"}


def test_every_get_route_answers_head(tmp_path):
    from mullama.http.app import create_app

    app = create_app(object(), settings(tmp_path))  # type: ignore[arg-type]
    app.router.finalize()
    gets = [r for r in app.router.routes if "GET" in r.methods and not r.extra.websocket]
    assert gets and all("HEAD" in r.methods for r in gets), [
        r.path for r in gets if "HEAD" not in r.methods
    ]


def test_the_access_log_hides_a_key_in_the_url():
    from mullama.http.access import access_line

    request = SimpleNamespace(
        method="GET",
        path="/ui/",
        query_string="fontsize=20&key=s3cret",
        client_ip="127.0.0.1",
        port=5000,
        ctx=SimpleNamespace(),
    )
    line = access_line(request, SimpleNamespace(status=303, body=b""))
    assert "s3cret" not in line and "GET /ui/?fontsize=20&key=*** 303" in line
