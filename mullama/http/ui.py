"""``/ui/``: the Textual TUI in a browser, served the way textual-serve serves apps.

``GET /ui/`` is a page that loads textual-serve's ``textual.js`` (an xterm.js front end);
it opens the websocket ``/ui/ws``, and each websocket runs one ``python -m mullama.tui --attach``
subprocess under Textual's web driver, attached to this daemon over its IPC socket.
textual-serve's :class:`AppService` speaks the driver's packet protocol on the subprocess pipes.

When the daemon has an API key, the page and the websocket need it: an ``Authorization: Bearer``
or ``x-api-key`` header, a ``?key=`` query parameter, or the cookie set by the login form.
"""

from __future__ import annotations

import hmac
import html
import json
import shlex
import sys
from pathlib import Path

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, redirect
from sanic.response import html as html_response

COOKIE = "mullama_ui_key"

blueprint = Blueprint("ui", url_prefix="/ui")


def _static_dir() -> Path:
    import textual_serve

    return Path(textual_serve.__file__).parent / "static"


blueprint.static("/static", _static_dir(), name="static")


def _given_key(request: Request) -> str:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return (
        request.headers.get("x-api-key")
        or request.args.get("key")
        or request.cookies.get(COOKIE)
        or ""
    ).strip()


def _authorized(request: Request, given: str | None = None) -> bool:
    key = request.app.ctx.settings.api_key
    given = _given_key(request) if given is None else given
    return not key or hmac.compare_digest(given.encode(), key.encode())


def _remember(request: Request, response: HTTPResponse) -> HTTPResponse:
    """Keep the key in an HttpOnly cookie so the websocket and reloads carry it."""
    key = request.app.ctx.settings.api_key
    if key:
        response.add_cookie(
            COOKIE,
            key,
            path="/ui",
            httponly=True,
            samesite="Strict",
            secure=request.scheme == "https",
        )
    return response


@blueprint.get("/")
async def page(request: Request) -> HTTPResponse:
    if not _authorized(request):
        return html_response(
            LOGIN_PAGE.format(
                error="" if not _given_key(request) else "<p class=error>That key is not right.</p>"
            ),
            status=401,
        )
    scheme = "wss" if request.scheme == "https" else "ws"
    font_size = request.args.get("fontsize", "16")
    body = PAGE.format(
        ws=html.escape(f"{scheme}://{request.host}/ui/ws"),
        font_size=int(font_size) if font_size.isdigit() else 16,
    )
    return _remember(request, html_response(body))


@blueprint.post("/login")
async def login(request: Request) -> HTTPResponse:
    form = request.form  # typed optional, but Sanic parses one (empty without a form body)
    key = form.get("key") if form is not None else None
    if not _authorized(request, (key or "").strip()):
        return html_response(
            LOGIN_PAGE.format(error="<p class=error>That key is not right.</p>"), status=401
        )
    return _remember(request, redirect("/ui/"))


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
    if not _authorized(request):
        await ws.close(code=4401, reason="API key required")
        return
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
