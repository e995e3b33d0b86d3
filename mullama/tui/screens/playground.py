"""Playground: compose an OpenAI, Anthropic or Ollama request, send it, watch the raw response."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.markup import escape
from textual.screen import Screen
from textual.widgets import Label, Log, Select, Static, Switch, TextArea

from ...engine.api import EngineError
from .. import playground_requests as reqs
from ..widgets.footer import Footer
from ..widgets.navbar import NavBar

if TYPE_CHECKING:
    from ..app import MullamaApp


class PlaygroundScreen(Screen):
    if TYPE_CHECKING:
        app: MullamaApp  # the App these screens run in

    BINDINGS = [
        Binding("ctrl+r", "send", "Send", priority=True),
        Binding("ctrl+y", "copy_curl", "Copy cURL", priority=True),
        Binding("ctrl+b", "reset_body", "Reset body"),
        Binding("escape", "cancel", "Cancel", show=False),
    ]

    def compose(self) -> ComposeResult:
        yield NavBar("playground")
        with Horizontal(id="pg-bar"):
            yield Select(reqs.APIS, value="openai", allow_blank=False, id="pg-api")
            yield Select(
                self.endpoint_options("openai"),
                value="/v1/chat/completions",
                allow_blank=False,
                id="pg-endpoint",
            )
            yield Select([], prompt="model", id="pg-model")
            yield Label("stream", id="pg-stream-label")
            yield Switch(True, id="pg-stream")
        with Horizontal(id="pg-body"):
            with Vertical(id="pg-request", classes="panel") as request:
                request.border_title = "Request body (JSON)"
                yield TextArea("", language="json", id="pg-json", show_line_numbers=True)
            with Vertical(id="pg-response", classes="panel") as response:
                response.border_title = "Response"
                yield Label("[dim]ctrl+r sends the request[/]", id="pg-status")
                yield Log(id="pg-log", highlight=True)
        curl = Static("", id="pg-curl", classes="panel")
        curl.border_title = "cURL — ctrl+y copies"
        yield curl
        yield Footer()

    def endpoint_options(self, api: str) -> list[tuple[str, str]]:
        return [(f"{e.method} {e.path}", e.path) for e in reqs.endpoints(api)]

    def on_mount(self) -> None:
        self.action_reset_body()
        self.load_models()

    @work(exclusive=True, group="models")
    async def load_models(self) -> None:
        engine = await self.app.wait_engine()
        try:
            names = [m.name for m in await engine.list_models()]
        except EngineError:
            return
        picker = self.query_one("#pg-model", Select)
        picker.set_options((n, n) for n in names)
        default = self.app.prefs.default_model
        if names:
            picker.value = default if default in names else names[0]

    # ---------------------------------------------------------------- composing

    @property
    def endpoint(self) -> reqs.Endpoint:
        api = self.query_one("#pg-api", Select).value
        path = self.query_one("#pg-endpoint", Select).value
        assert isinstance(api, str) and isinstance(path, str)  # both pickers allow no blank
        return reqs.find(api, path)

    def model(self) -> str:
        value = self.query_one("#pg-model", Select).value
        return value if isinstance(value, str) else self.app.prefs.default_model or "MODEL"

    @on(Select.Changed, "#pg-api")
    def _api_changed(self, event: Select.Changed) -> None:
        api = event.value
        assert isinstance(api, str)  # the API picker allows no blank
        options = self.endpoint_options(api)
        endpoint = self.query_one("#pg-endpoint", Select)
        with endpoint.prevent(Select.Changed):
            endpoint.set_options(options)
            endpoint.value = options[0][1]
        self.action_reset_body()

    @on(Select.Changed, "#pg-endpoint")
    @on(Select.Changed, "#pg-model")
    @on(Switch.Changed, "#pg-stream")
    def action_reset_body(self) -> None:
        stream = self.query_one("#pg-stream", Switch).value
        self.query_one("#pg-json", TextArea).text = reqs.body_text(
            self.endpoint, self.model(), stream
        )
        self.show_curl()

    @on(TextArea.Changed, "#pg-json")
    def show_curl(self) -> None:
        self.query_one("#pg-curl", Static).update(self.curl_text())

    def curl_text(self) -> str:
        return reqs.curl(
            self.endpoint,
            self.app.prefs.http(self.app.settings),
            self.query_one("#pg-json", TextArea).text,
            self.app.settings.api_key,
        )

    def action_copy_curl(self) -> None:
        self.app.copy_to_clipboard(self.curl_text())
        self.notify("cURL command copied to the clipboard")

    # ---------------------------------------------------------------- sending

    @work(exclusive=True, group="send")
    async def action_send(self) -> None:
        import httpx

        endpoint, body = self.endpoint, self.query_one("#pg-json", TextArea).text
        status, log = self.query_one("#pg-status", Label), self.query_one("#pg-log", Log)
        log.clear()
        if endpoint.body is not None:
            try:
                json.loads(body)
            except ValueError as exc:
                status.update(f"[red]The body is not valid JSON: {escape(str(exc))}[/]")
                return
        base = self.app.prefs.http(self.app.settings)
        status.update(f"{endpoint.method} {base}{endpoint.path} …")
        started = time.perf_counter()
        try:
            async with httpx.AsyncClient(timeout=httpx.Timeout(10.0, read=None)) as client:
                async with client.stream(
                    endpoint.method,
                    base + endpoint.path,
                    content=body.encode() if endpoint.body else None,
                    headers=reqs.headers(endpoint.api, self.app.settings.api_key),
                ) as resp:
                    colour = "green" if resp.is_success else "red"
                    head = (
                        f"[{colour}]{resp.status_code} {resp.reason_phrase}[/] · "
                        f"{resp.headers.get('content-type', '')}"
                    )
                    status.update(head)
                    streaming = "event-stream" in resp.headers.get(
                        "content-type", ""
                    ) or "ndjson" in resp.headers.get("content-type", "")
                    if streaming:
                        async for line in resp.aiter_lines():
                            _write_wrapped(log, line)
                    else:
                        _write_wrapped(log, _pretty(await resp.aread()))
        except httpx.HTTPError as exc:
            status.update(
                f"[red]No answer from {escape(base)}: {escape(str(exc) or type(exc).__name__)}[/]"
            )
            _write_wrapped(
                log, f"Is the daemon running? Start it with `mullama serve` (HTTP on {base})."
            )
            return
        status.update(f"{head} · {time.perf_counter() - started:.2f} s")

    def action_cancel(self) -> None:
        for worker in self.workers:
            if worker.group == "send" and not worker.is_finished:
                worker.cancel()
                self.query_one("#pg-status", Label).update("[yellow]cancelled[/]")


def _write_wrapped(log: Log, text: str) -> None:
    """``text`` into the response pane, long lines folded to its width (a Log never wraps)."""
    width = max(20, log.scrollable_content_region.width - 1)
    for line in text.splitlines() or [""]:
        while len(line) > width:
            log.write_line(line[:width])
            line = line[width:]
        log.write_line(line)


def _pretty(raw: bytes) -> str:
    try:
        return json.dumps(json.loads(raw), indent=2, ensure_ascii=False)
    except ValueError:
        return raw.decode("utf-8", "replace")
