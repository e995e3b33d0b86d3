"""Per-conversation system prompt and sampling parameters."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, VerticalScroll
from textual.markup import escape
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, TextArea

from ...engine.api import SamplingOptions
from ..conversations import Conversation
from ..effective import model_parameters, placeholders
from ..preferences import check_options

if TYPE_CHECKING:
    from ..app import MullamaApp

THINK = [("model default", "default"), ("on", "on"), ("off", "off")]


class ConversationOptions(ModalScreen[dict | None]):
    """Returns the new values (system, temperature, top_p, max_tokens, think) or None.

    A blank number field shows what applies instead: the Settings' default, else the
    conversation model's PARAMETER, else the engine's default.
    """

    if TYPE_CHECKING:
        app: MullamaApp

    BINDINGS = [
        Binding("ctrl+s", "save", "Save", priority=True),
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(self, conversation: Conversation):
        super().__init__(classes="dialog-screen")
        self.conversation = conversation

    def compose(self) -> ComposeResult:
        c = self.conversation
        think = "default" if c.think is None else ("on" if c.think else "off")
        with VerticalScroll(classes="dialog wide"):  # scrolls in a small terminal
            yield Label(f"Options for “{escape(c.title)}”", classes="dialog-question")
            yield Label("System prompt")
            yield TextArea(c.system, id="opt-system")
            with Grid(id="opt-grid"):
                yield Label("Temperature")
                yield Input(
                    _text(c.temperature),
                    placeholder="model default",
                    type="number",
                    id="opt-temperature",
                )
                yield Label("Top P")
                yield Input(
                    _text(c.top_p), placeholder="model default", type="number", id="opt-top_p"
                )
                yield Label("Max tokens")
                yield Input(
                    _text(c.max_tokens),
                    placeholder="model default",
                    type="integer",
                    id="opt-max_tokens",
                )
                yield Label("Thinking")
                yield Select(THINK, value=think, allow_blank=False, id="opt-think")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Save [dim](ctrl+s)[/]", variant="primary", id="save")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#opt-system", TextArea).focus()
        self.show_effective()

    @work(exclusive=True, group="effective")
    async def show_effective(self) -> None:
        engine = await self.app.wait_engine()
        parameters = await model_parameters(engine, self.conversation.model)
        shown = placeholders(parameters, self.app.prefs, self.app.settings.max_tokens_cap)
        for name in ("temperature", "top_p", "max_tokens"):
            self.query_one(f"#opt-{name}", Input).placeholder = shown[name]

    @on(Button.Pressed, "#save")
    def action_save(self) -> None:
        think = self.query_one("#opt-think", Select).value
        try:
            numbers = {
                name: _number(name, self.query_one(f"#opt-{name}", Input).value, kind)
                for name, kind in (("temperature", float), ("top_p", float), ("max_tokens", int))
            }
            check_options(SamplingOptions(**numbers))
        except ValueError as exc:
            self.notify(str(exc), title="Not saved", severity="error")
            return
        self.dismiss(
            {
                "system": self.query_one("#opt-system", TextArea).text,
                **numbers,
                "think": None if think == "default" else think == "on",
            }
        )

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


def _text(value) -> str:
    return "" if value is None else str(value)


def _number(name: str, text: str, kind: type):
    try:
        return kind(text) if text.strip() else None
    except ValueError:
        raise ValueError(f"{name.replace('_', ' ')} must be a number, not {text!r}") from None
