"""The top bar: brand, one tab per screen (clickable), and the engine connection state."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Label

PAGES = [
    ("dashboard", "Dashboard", "F1"),
    ("models", "Models", "F2"),
    ("chat", "Chat", "F3"),
    ("playground", "Playground", "F4"),
    ("settings", "Settings", "F5"),
]

STATES = {
    "connecting": ("◌ connecting…", "-connecting"),
    "local": ("● embedded engine", "-local"),
    "remote": ("● attached to daemon", "-remote"),
    "serving": ("● serving (this is the daemon)", "-remote"),
    "lost": ("✖ daemon lost — reconnecting", "-lost"),
    "failed": ("✖ no engine", "-lost"),
}


class NavTab(Label):
    def __init__(self, mode: str, title: str, key: str, current: bool):
        super().__init__(f"[dim]{key}[/] {title}", id=f"nav-{mode}", classes="nav-tab")
        self.mode = mode
        self.set_class(current, "-current")

    def on_click(self) -> None:
        self.app.switch_mode(self.mode)


class NavBar(Horizontal):
    """Shown at the top of every screen; ``current`` is that screen's mode."""

    def __init__(self, current: str):
        super().__init__(id="navbar")
        self.current = current

    def compose(self) -> ComposeResult:
        yield Label("[b]Mullama[/]", id="brand")
        for mode, title, key in PAGES:
            yield NavTab(mode, title, key, mode == self.current)
        yield Label("", id="connection")

    def on_mount(self) -> None:
        self.watch(self.app, "connection", self._show_connection)

    def _show_connection(self, state: str) -> None:
        text, cls = STATES.get(state, (state, ""))
        label = self.query_one("#connection", Label)
        label.update(text)
        label.set_classes(cls)
