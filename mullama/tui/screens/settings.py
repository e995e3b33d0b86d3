"""Settings: theme, default model, generation defaults, daemon address — saved to settings.toml."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Input, Label, Select, TextArea

from ...engine.api import EngineError
from ..effective import model_parameters, placeholders
from ..messages import DefaultModelChanged
from ..preferences import Preferences, check_options
from ..widgets.footer import Footer
from ..widgets.navbar import NavBar

if TYPE_CHECKING:
    from ..app import MullamaApp

NUMBERS = {"temperature": float, "top_p": float, "top_k": int, "max_tokens": int}


class SettingsScreen(Screen):
    if TYPE_CHECKING:
        app: MullamaApp  # the App these screens run in

    BINDINGS = [
        Binding("ctrl+s", "save", "Save", priority=True),
        Binding("ctrl+z", "revert", "Revert"),
    ]

    def compose(self) -> ComposeResult:
        prefs, settings = self.app.prefs, self.app.settings
        yield NavBar("settings")
        with VerticalScroll(id="settings-form"):
            with Grid(classes="form", id="appearance") as group:
                group.border_title = "Appearance"
                yield Label("Theme")
                yield Select(
                    ((t, t) for t in sorted(self.app.available_themes)),
                    value=self.app.theme,
                    allow_blank=False,
                    id="set-theme",
                )
            with Grid(classes="form", id="generation") as group:
                group.border_title = "Generation defaults (blank: the default model's own)"
                yield Label("Default model")
                yield Select([], prompt="none", id="set-default_model")
                for name, kind in NUMBERS.items():
                    yield Label(name.replace("_", " ").capitalize())
                    yield Input(
                        _text(getattr(prefs, name)),
                        placeholder="model default",
                        type="integer" if kind is int else "number",
                        id=f"set-{name}",
                    )
                yield Label("System prompt")
                yield TextArea(prefs.system_prompt, id="set-system_prompt")
            with Grid(classes="form", id="daemon") as group:
                group.border_title = "Daemon"
                yield Label("IPC socket")
                yield Input(
                    prefs.daemon_socket, placeholder=settings.socket, id="set-daemon_socket"
                )
                yield Label("HTTP address")
                yield Input(
                    prefs.daemon_http, placeholder=settings.http_endpoint, id="set-daemon_http"
                )
            with Horizontal(classes="dialog-buttons"):
                yield Button("Save [dim](ctrl+s)[/]", variant="primary", id="save")
                yield Button("Revert [dim](ctrl+z)[/]", id="revert")
            yield Label(f"[dim]Saved to {settings.settings_file}[/]", id="settings-path")
        yield Footer()

    def on_mount(self) -> None:
        self.load_models()

    def on_screen_resume(self) -> None:
        self.load_models()

    @work(exclusive=True, group="models")
    async def load_models(self) -> None:
        engine = await self.app.wait_engine()
        try:
            names = [m.name for m in await engine.list_models()]
        except EngineError:
            return
        picker = self.query_one("#set-default_model", Select)
        default = self.app.prefs.default_model
        if default and default not in names:
            names.append(default)
        picker.set_options((n, n) for n in names)
        if default:
            picker.value = default
        else:
            self.show_effective("")

    @on(Select.Changed, "#set-default_model")
    def _default_model_picked(self, event: Select.Changed) -> None:
        self.show_effective(event.value if isinstance(event.value, str) else "")

    @work(exclusive=True, group="effective")
    async def show_effective(self, model: str) -> None:
        """Blank fields show what applies to the default model: its PARAMETER or the engine's."""
        parameters = await model_parameters(await self.app.wait_engine(), model)
        shown = placeholders(parameters, cap=self.app.settings.max_tokens_cap)
        for name in NUMBERS:
            self.query_one(f"#set-{name}", Input).placeholder = shown[name]

    @on(Select.Changed, "#set-theme")
    def _theme_changed(self, event: Select.Changed) -> None:
        theme = event.value
        assert isinstance(theme, str)  # the picker lists theme names and allows no blank
        self.app.theme = theme  # live preview; saved with ctrl+s

    def read_form(self) -> Preferences:
        values: dict = {"theme": self.query_one("#set-theme", Select).value}
        model = self.query_one("#set-default_model", Select).value
        values["default_model"] = model if isinstance(model, str) else ""
        for name, kind in NUMBERS.items():
            text = self.query_one(f"#set-{name}", Input).value.strip()
            try:
                values[name] = kind(text) if text else None
            except ValueError:
                raise ValueError(
                    f"{name.replace('_', ' ')} must be a number, not {text!r}"
                ) from None
        values["system_prompt"] = self.query_one("#set-system_prompt", TextArea).text
        for name in ("daemon_socket", "daemon_http"):
            values[name] = self.query_one(f"#set-{name}", Input).value.strip()
        prefs = Preferences(**values)
        check_options(prefs.options())
        return prefs

    @on(Button.Pressed, "#save")
    def _save_pressed(self) -> None:
        self.action_save()

    @work(exclusive=True, group="save")
    async def action_save(self) -> None:
        try:
            prefs = self.read_form()
        except ValueError as exc:
            self.notify(str(exc), title="Not saved", severity="error")
            return
        default_changed = prefs.default_model != self.app.prefs.default_model
        self.app.prefs = prefs
        await self.app.save_preferences()
        if default_changed and prefs.default_model:
            self.post_message(DefaultModelChanged(prefs.default_model))
        self.notify(f"Saved to {self.app.settings.settings_file.name}", title="Settings")

    @on(Button.Pressed, "#revert")
    async def action_revert(self) -> None:
        self.app.theme = self.app.prefs.theme
        await self.recompose()
        self.load_models()
        self.focus_next()  # recompose dropped the focused field


def _text(value) -> str:
    return "" if value is None else str(value)
