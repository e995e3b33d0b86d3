"""Dashboard: engine state, loaded models, live counters, CPU and RAM, quick actions."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, cast

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical
from textual.markup import escape
from textual.screen import Screen
from textual.widgets import Button, DataTable, Label, Sparkline, Static

from ...engine.api import EngineError, EngineStatus, Unavailable
from ..format import human_duration, human_size, until
from ..messages import ChatRequested, DaemonLost, DaemonReconnected
from ..widgets.dialogs import PickDialog
from ..widgets.footer import Footer
from ..widgets.log_pane import LogPane
from ..widgets.navbar import NavBar

if TYPE_CHECKING:
    from ..app import MullamaApp
    from .models import ModelsScreen

POLL_SECONDS = 1.0
NARROW_BELOW = 100  # columns; the app's -narrow breakpoint
WIDE_COLUMNS = (
    "Model",
    "Memory",
    "Context",
    "Slots busy",
    "Queued",
    "Requests",
    "Tokens",
    "Unloads",
)
NARROW_COLUMNS = ("Model", "Mem", "Ctx", "Busy", "Queue", "Reqs", "Tokens", "Unloads")
STATS = (  # id, title, title below 100 columns
    ("stat-requests", "Requests", "Requests"),
    ("stat-active", "Active", "Active"),
    ("stat-tokens", "Tokens generated", "Generated"),
    ("stat-prompt", "Prompt tokens", "Prompt"),
    ("stat-rate", "Tokens/s", "Tokens/s"),
)


class StatCard(Vertical):
    def __init__(self, title: str, id: str):
        super().__init__(id=id, classes="stat-card")
        self.border_title = title

    def compose(self) -> ComposeResult:
        yield Label("—", classes="stat-value")

    def show(self, value: str) -> None:
        self.query_one(".stat-value", Label).update(value)


class DashboardScreen(Screen):
    if TYPE_CHECKING:
        app: MullamaApp  # the App these screens run in

    VERTICAL_BREAKPOINTS = [(0, "-short"), (30, "-tall")]

    BINDINGS = [
        Binding("l", "load", "Load model"),
        Binding("u", "unload", "Unload"),
        Binding("p", "pull", "Pull"),
        Binding("c", "chat", "Chat"),
        Binding("r", "refresh", "Refresh"),
        Binding("L", "toggle_log", "Log"),  # only while serving: the daemon's log pane
    ]

    def __init__(self) -> None:
        super().__init__()
        self.last_tokens: tuple[float, int] | None = None
        self.rates: list[float] = [0.0] * 60
        self.status: EngineStatus | None = None
        self._narrow: bool | None = None

    def compose(self) -> ComposeResult:
        yield NavBar("dashboard")
        with Horizontal(id="dash-top"):
            yield Static("Connecting to the engine…", id="engine-info", classes="panel")
            with Vertical(id="system", classes="panel") as system:
                system.border_title = "System"
                yield Static("", id="system-info")
                yield Sparkline(self.rates, id="rate-spark")
        with Grid(id="stats"):
            for stat_id, title, _ in STATS:
                yield StatCard(title, stat_id)
        table: DataTable[str] = DataTable(id="loaded", cursor_type="row", zebra_stripes=True)
        table.border_title = "Loaded models"
        yield table
        if self.app.log_feed is not None:
            log = LogPane(self.app.log_feed, id="daemon-log", classes="panel")
            log.border_title = "Daemon log"
            log.border_subtitle = "L hides"
            self.add_class("-log")
            yield log
        with Horizontal(id="actions"):
            yield Button("Load model [dim](l)[/]", id="act-load", variant="primary")
            yield Button("Unload [dim](u)[/]", id="act-unload")
            yield Button("Pull [dim](p)[/]", id="act-pull")
            yield Button("Open chat [dim](c)[/]", id="act-chat", variant="success")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#engine-info").border_title = "Engine"
        self._fit_width()
        self.query_one("#loaded", DataTable).show_cursor = True
        self.refresh_status()
        if not self.app.frozen:
            self.set_interval(POLL_SECONDS, self.refresh_status)

    def _fit_width(self) -> bool:
        """Below 100 columns: short column headers and tile titles, so that every column of
        the table shows in 80; True when the layout changed."""
        narrow = self.app.size.width < NARROW_BELOW
        if narrow == self._narrow:
            return False
        self._narrow = narrow
        table = self.query_one("#loaded", DataTable)
        table.clear(columns=True)
        table.add_columns(*(NARROW_COLUMNS if narrow else WIDE_COLUMNS))
        for stat_id, wide, short in STATS:
            self.query_one(f"#{stat_id}").border_title = short if narrow else wide
        return True

    def on_resize(self) -> None:
        if self._fit_width() and self.status is not None:
            self.show_loaded(self.status)

    def action_refresh(self) -> None:
        self.refresh_status()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "toggle_log":
            return self.app.log_feed is not None  # no pane, no key in the footer
        return True

    def action_toggle_log(self) -> None:
        self.toggle_class("-log")

    @work(exclusive=True, group="status")
    async def refresh_status(self) -> None:
        engine = await self.app.wait_engine()
        try:
            status = await engine.status()
        except Unavailable:
            self.app.post_message(DaemonLost())
            return
        except EngineError as exc:
            self.query_one("#engine-info", Static).update(f"[red]{escape(exc.message)}[/]")
            return
        if self.app.connection == "lost":
            self.app.post_message(DaemonReconnected())
        self.show_status(status)

    def show_status(self, status: EngineStatus) -> None:
        self.status = status
        frozen = self.app.frozen
        attached = self.app.connection in ("remote", "lost")
        if self.app.connection == "serving":
            where = "[b]serving[/]: this terminal is the daemon (quitting stops it)"
        elif attached:
            where = f"attached to the daemon at [b]{self.app.prefs.socket(self.app.settings)}[/]"
        else:
            where = "engine running [b]embedded[/] in this app (no daemon)"
        lines = [
            f"[b]Mode[/]       {where}",
            f"[b]Version[/]    {status.version}",
            f"[b]Uptime[/]     {'—' if frozen else human_duration(status.uptime_secs)}",
            f"[b]Default[/]    {status.default_model or self.app.prefs.default_model or '—'}",
        ]
        for name, url in sorted(status.endpoints.items()):
            lines.append(f"[b]{name:<10}[/] {url}")
        if not status.endpoints and not attached:
            lines.append("[dim]Run [b]mullama serve[/b] to expose the HTTP APIs.[/]")
        self.query_one("#engine-info", Static).update("\n".join(lines))
        rate = self.token_rate(status.tokens_generated)
        self.query_one("#stat-requests", StatCard).show(f"{status.requests_total:,}")
        self.query_one("#stat-active", StatCard).show(f"{status.requests_active:,}")
        self.query_one("#stat-tokens", StatCard).show(f"{status.tokens_generated:,}")
        self.query_one("#stat-prompt", StatCard).show(f"{status.prompt_tokens:,}")
        self.query_one("#stat-rate", StatCard).show("—" if frozen else f"{rate:.1f}")
        self.show_system()
        self.show_loaded(status)

    def token_rate(self, tokens: int) -> float:
        now = time.monotonic()
        rate = 0.0
        if self.last_tokens is not None and now > self.last_tokens[0]:
            rate = max(0.0, (tokens - self.last_tokens[1]) / (now - self.last_tokens[0]))
        self.last_tokens = (now, tokens)
        self.rates = self.rates[1:] + [rate]
        self.query_one("#rate-spark", Sparkline).data = self.rates
        return rate

    def show_system(self) -> None:
        if self.app.frozen:
            self.query_one("#system-info", Static).update(
                "CPU  —\nRAM  —\n[dim]tokens/s, last minute[/]"
            )
            return
        import psutil

        mem = psutil.virtual_memory()
        self.query_one("#system-info", Static).update(
            f"[b]CPU[/]  {psutil.cpu_percent():>5.1f}%  ({psutil.cpu_count()} cores)\n"
            f"[b]RAM[/]  {human_size(mem.used)} / {human_size(mem.total)} ({mem.percent:.0f}%)\n"
            "[dim]tokens/s, last minute[/]"
        )

    def show_loaded(self, status: EngineStatus) -> None:
        table = self.query_one("#loaded", DataTable)
        selected = self.selected_model()
        table.clear()
        for m in status.loaded:
            table.add_row(
                m.name,
                human_size(m.size),
                f"{m.context_length:,}",
                f"{m.busy_slots}/{m.num_parallel}",
                str(m.queued),
                str(m.requests_total),
                f"{m.tokens_generated:,}",
                "—" if self.app.frozen else until(m.expires_at),
                key=m.name,
            )
        if not status.loaded:
            table.border_subtitle = "none — press l to load one"
        else:
            table.border_subtitle = f"{len(status.loaded)} loaded"
            if selected in {m.name for m in status.loaded}:
                table.move_cursor(row=table.get_row_index(selected))

    def selected_model(self) -> str | None:
        table = self.query_one("#loaded", DataTable)
        if table.row_count == 0:
            return None
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value

    # ---------------------------------------------------------------- quick actions

    @on(Button.Pressed, "#actions Button")
    async def _action_button(self, event: Button.Pressed) -> None:
        button_id = event.button.id
        assert button_id is not None  # every action button has an id: act-<action>
        await self.run_action(button_id.removeprefix("act-"))

    @work(exclusive=True, group="action")
    async def action_load(self) -> None:
        engine = await self.app.wait_engine()
        try:
            names = [m.name for m in await engine.list_models()]
        except EngineError as exc:
            self.notify(exc.message, title="Cannot list models", severity="error")
            return
        name = await self.app.push_screen_wait(
            PickDialog("Load which model?", names, "No models yet: pull one first (p).")
        )
        if not name:
            return
        self.notify(f"Loading {name}…")
        try:
            loaded = await engine.load_model(name)
        except EngineError as exc:
            self.notify(exc.message, title="Load failed", severity="error")
            return
        self.notify(
            f"{loaded.name} loaded ({human_size(loaded.size)}, ctx {loaded.context_length})"
        )
        self.refresh_status()

    @work(exclusive=True, group="action")
    async def action_unload(self) -> None:
        name = self.selected_model()
        if name is None:
            self.notify("No model is loaded.", severity="warning")
            return
        engine = await self.app.wait_engine()
        try:
            await engine.unload_model(name)
        except EngineError as exc:
            self.notify(exc.message, title="Unload failed", severity="error")
            return
        self.notify(f"{name} unloaded")
        self.refresh_status()

    def action_pull(self) -> None:
        self.app.switch_mode("models")
        cast("ModelsScreen", self.app.screen).action_pull()

    def action_chat(self) -> None:
        self.post_message(ChatRequested(self.selected_model() or ""))
