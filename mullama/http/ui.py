"""``/ui/``: the Textual TUI in a browser, served the way textual-serve serves apps.

``GET /ui/`` is a page that loads textual-serve's ``textual.js`` (an xterm.js front end);
it opens the websocket ``/ui/ws``, and each websocket runs one ``python -m mullama.tui --attach``
subprocess under Textual's web driver, attached to this daemon over its IPC socket.
textual-serve's :class:`AppService` speaks the driver's packet protocol on the subprocess pipes.
At most ``ui_max_sessions`` run at once; the websocket is refused from pages of other origins
(same origin or ``cors_origins`` only, see :mod:`mullama.http.guard`).

When the daemon has an API key, the page and the websocket need it: an ``Authorization: Bearer``
or ``x-api-key`` header, or the session cookie the login form (``POST /ui/login``) sets — a
random token, never the key (see :mod:`mullama.http.ui_auth`). ``GET /ui/?key=`` still logs in,
then redirects to the same page without the key in its address.
"""

from __future__ import annotations

import hmac
import html
import json
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

from sanic import Blueprint, Request, Sanic
from sanic.response import HTTPResponse, redirect, text
from sanic.response import html as html_response

from .ui_auth import LoginLimiter, SessionTokens

COOKIE = "mullama_ui_session"
OLD_COOKIE = "mullama_ui_key"  # older versions kept the raw key in it: removed at login
TRY_AGAIN_LATER = 1013  # websocket close code

blueprint = Blueprint("ui", url_prefix="/ui")


def _static_dir() -> Path:
    import textual_serve

    return Path(textual_serve.__file__).parent / "static"


blueprint.static("/static", _static_dir(), name="static")


@dataclass
class _UiState:
    tokens: SessionTokens = field(default_factory=SessionTokens)
    limiter: LoginLimiter = field(default_factory=LoginLimiter)
    sessions: int = 0  # websockets running a TUI


def _state(app: Sanic) -> _UiState:
    state = getattr(app.ctx, "ui", None)
    if state is None:
        state = app.ctx.ui = _UiState()
    return state


def _header_key(request: Request) -> str:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return request.headers.get("x-api-key", "").strip()


def _is_key(request: Request, given: str) -> bool:
    key = request.app.ctx.settings.api_key
    return bool(given) and hmac.compare_digest(given.encode(), key.encode())


def _logged_in(request: Request) -> bool:
    if not request.app.ctx.settings.api_key:
        return True
    return _is_key(request, _header_key(request)) or _state(request.app).tokens.valid(
        request.cookies.get(COOKIE)
    )


def _login_page(error: str = "", status: int = 401, headers: dict | None = None) -> HTTPResponse:
    shown = f"<p class=error>{html.escape(error)}</p>" if error else ""
    return html_response(LOGIN_PAGE.format(error=shown), status=status, headers=headers)


def _log_in(request: Request, given: str, then: str) -> HTTPResponse:
    """Check a key typed into the form (or given as ``?key=``): a session cookie and a redirect
    to ``then``; a wrong key counts against the client's address."""
    limiter = _state(request.app).limiter
    client = request.ip or "unknown"
    wait = limiter.wait(client)
    if wait:
        return _login_page(
            f"Too many wrong keys: try again in {wait} s.",
            status=429,
            headers={"Retry-After": str(wait)},
        )
    if not _is_key(request, given.strip()):
        limiter.failed(client)
        return _login_page("That key is not right.")
    limiter.succeeded(client)
    return _with_session(request, redirect(then, status=303))


def _with_session(request: Request, response: HTTPResponse) -> HTTPResponse:
    """A new session token in an HttpOnly cookie, for the websocket and reloads."""
    response.add_cookie(
        COOKIE,
        _state(request.app).tokens.issue(),
        path="/ui",
        httponly=True,
        samesite="Strict",
        secure=request.scheme == "https",
    )
    if OLD_COOKIE in request.cookies:
        response.delete_cookie(OLD_COOKIE, path="/ui")
    return response


@blueprint.route("/", methods=["GET", "HEAD"])
async def page(request: Request) -> HTTPResponse:
    if not _logged_in(request):
        given = request.args.get("key")
        if given is None:
            return _login_page()
        rest = urlencode([(k, v) for k, v in request.query_args if k != "key"])
        return _log_in(request, given, "/ui/" + (f"?{rest}" if rest else ""))
    limit = request.app.ctx.settings.ui_max_sessions
    if _state(request.app).sessions >= limit:
        return html_response(BUSY_PAGE.format(limit=limit), status=503)
    scheme = "wss" if request.scheme == "https" else "ws"
    font_size = request.args.get("fontsize", "16")
    body = PAGE.format(
        ws=html.escape(f"{scheme}://{request.host}/ui/ws"),
        font_size=int(font_size) if font_size.isdigit() else 16,
    )
    response = html_response(body)
    key = request.app.ctx.settings.api_key
    if key and not _state(request.app).tokens.valid(request.cookies.get(COOKIE)):
        return _with_session(request, response)  # came with the key in a header
    return response


@blueprint.post("/login", ctx_body="form")
async def login(request: Request) -> HTTPResponse:
    if not request.app.ctx.settings.api_key:
        return redirect("/ui/", status=303)
    form = request.form  # typed optional, but Sanic parses one (empty without a form body)
    key = form.get("key") if form is not None else None
    return _log_in(request, key or "", "/ui/")


@blueprint.on_request
async def _websocket_origin(request: Request) -> HTTPResponse | None:
    """Refuse the websocket of another site's page before it opens (no TUI is started)."""
    if request.path == "/ui/ws" and not request.app.ctx.guard.websocket_allowed(request):
        return text(
            f"the browser UI does not open for pages from {request.headers.get('origin')}: "
            "add that origin to the cors_origins setting (MULLAMA_CORS_ORIGINS) to allow it",
            status=403,
        )
    return None


def app_command(socket: str, mode: str = "dashboard") -> str:
    """The shell command that runs the TUI under the web driver, attached to ``socket``."""
    return " ".join(
        shlex.quote(part)
        for part in (
            sys.executable,
            "-m",
            "mullama.tui",
            "--attach",
            "--socket",
            socket,
            "--mode",
            mode,
        )
    )


def tui_service(settings, **kwargs):
    """textual-serve's AppService running the TUI, with the daemon's API key in its
    environment (the TUI needs it on the IPC socket; a command line would show it to all)."""
    from textual_serve.app_service import AppService

    class KeyedAppService(AppService):
        def _build_environment(self, width: int = 80, height: int = 24) -> dict[str, str]:
            env = super()._build_environment(width=width, height=height)
            if settings.api_key:
                env["MULLAMA_API_KEY"] = settings.api_key
            return env

    return KeyedAppService(app_command(settings.socket), **kwargs)


@blueprint.websocket("/ws")
async def session(request: Request, ws) -> None:
    if not _logged_in(request):
        await ws.close(code=4401, reason="API key required")
        return
    state, limit = _state(request.app), request.app.ctx.settings.ui_max_sessions
    if state.sessions >= limit:
        reason = f"all {limit} browser UI sessions are in use (the ui_max_sessions setting)"
        await ws.close(code=TRY_AGAIN_LATER, reason=reason)
        return
    state.sessions += 1
    try:
        await _run_tui(request, ws)
    finally:
        state.sessions -= 1


async def _run_tui(request: Request, ws) -> None:
    from textual_serve.download_manager import DownloadManager

    service = tui_service(
        request.app.ctx.settings,
        write_bytes=ws.send,
        write_str=ws.send,
        close=ws.close,
        download_manager=DownloadManager(),
    )
    await service.start(_int(request.args.get("width"), 80), _int(request.args.get("height"), 24))
    try:
        while (message := await ws.recv()) is not None:
            if isinstance(message, bytes):
                continue
            kind, *data = json.loads(message)
            if kind == "stdin":
                await service.send_bytes(data[0].encode("utf-8"))
            elif kind == "resize":
                await service.set_terminal_size(data[0]["width"], data[0]["height"])
            elif kind == "ping":
                await ws.send(json.dumps(["pong", data[0]]))
            elif kind in ("blur", "focus"):
                await getattr(service, kind)()
    finally:
        await service.stop()


def _int(value: str | None, default: int) -> int:
    return int(value) if value and value.isdigit() else default


PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Mullama</title>
<link rel="stylesheet" href="/ui/static/css/xterm.css">
<style>
@font-face {{ font-family: "Roboto Mono"; src: url("/ui/static/fonts/RobotoMono-VariableFont_wght.ttf"); }}
@font-face {{ font-family: "Roboto Mono"; font-style: italic;
             src: url("/ui/static/fonts/RobotoMono-Italic-VariableFont_wght.ttf"); }}
html, body {{ margin: 0; height: 100%; background: #0c181f; }}
.textual-terminal {{ width: 100vw; height: 100vh; opacity: 0; transition: opacity 0.3s; }}
body.-first-byte .textual-terminal {{ opacity: 1; }}
.notice {{ position: absolute; inset: 0; display: flex; align-items: center; justify-content: center;
          color: #eee; font: 16px "Roboto Mono", monospace; }}
body.-first-byte .starting, .ended {{ display: none; }}
body.-closed .ended {{ display: flex; }}
button {{ margin-left: 1em; padding: 0.5em 1.5em; background: #5e0ba7; color: #fff; border: 0; }}
</style>
<script src="/ui/static/js/textual.js"></script>
</head>
<body>
<div class="notice starting">🦙 Starting Mullama…</div>
<div class="notice ended">Session ended. <button onclick="location.reload()">Restart</button></div>
<div id="terminal" class="textual-terminal" data-session-websocket-url="{ws}"
     data-font-size="{font_size}"></div>
<script>
// keys (F1-F5 first of all) reach the app without a click: focus the terminal once it shows
new MutationObserver((_, watch) => {{
  const input = document.querySelector("#terminal textarea");
  if (document.body.classList.contains("-first-byte") && input) {{
    input.focus();
    watch.disconnect();
  }}
}}).observe(document.body, {{ attributes: true, childList: true, subtree: true }});
</script>
</body>
</html>
"""

BUSY_PAGE = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Mullama — busy</title>
<style>body {{ background: #0c181f; color: #eee; font: 16px monospace; display: flex;
height: 100vh; align-items: center; justify-content: center; margin: 0; }}</style></head>
<body><p>🦙 All {limit} browser UI sessions of this Mullama daemon are in use. Close one
(or raise the ui_max_sessions setting) and reload.</p></body></html>
"""

LOGIN_PAGE = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Mullama — API key</title>
<style>
body {{ background: #0c181f; color: #eee; font: 16px monospace; display: flex; height: 100vh;
       align-items: center; justify-content: center; margin: 0; }}
form {{ background: #12232d; padding: 2em 3em; }}
input {{ font: inherit; padding: 0.4em; width: 22em; }}
button {{ font: inherit; padding: 0.4em 1.2em; background: #5e0ba7; color: #fff; border: 0; }}
.error {{ color: #ff6b6b; }}
</style></head>
<body><form method="post" action="/ui/login">
<p>🦙 This Mullama daemon needs its API key.</p>{error}
<input type="password" name="key" placeholder="API key" autofocus> <button>Open</button>
</form></body></html>
"""
