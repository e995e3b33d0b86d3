"""Per-conversation system prompt and sampling parameters."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, TextArea

from ..conversations import Conversation

THINK = [("model default", "default"), ("on", "on"), ("off", "off")]


class ConversationOptions(ModalScreen[dict | None]):
    """Returns the new values (system, temperature, top_p, max_tokens, think) or None."""

    BINDINGS = [Binding("ctrl+s", "save", "Save", priority=True), Binding("escape", "cancel", "Cancel")]

    def __init__(self, conversation: Conversation):
        super().__init__(classes="dialog-screen")
        self.conversation = conversation

    def compose(self) -> ComposeResult:
        c = self.conversation
        think = "default" if c.think is None else ("on" if c.think else "off")
        with Vertical(classes="dialog wide"):
            yield Label(f"Options for “{c.title}”", classes="dialog-question")
            yield Label("System prompt")
            yield TextArea(c.system, id="opt-system")
            with Grid(id="opt-grid"):
                yield Label("Temperature")
                yield Input(_text(c.temperature), placeholder="model default", type="number", id="opt-temperature")
                yield Label("Top P")
                yield Input(_text(c.top_p), placeholder="model default", type="number", id="opt-top_p")
                yield Label("Max tokens")
                yield Input(_text(c.max_tokens), placeholder="model default", type="integer", id="opt-max_tokens")
                yield Label("Thinking")
                yield Select(THINK, value=think, allow_blank=False, id="opt-think")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Save [dim](ctrl+s)[/]", variant="primary", id="save")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#opt-system", TextArea).focus()

    @on(Button.Pressed, "#save")
    def action_save(self) -> None:
        think = self.query_one("#opt-think", Select).value
        self.dismiss({
            "system": self.query_one("#opt-system", TextArea).text,
            "temperature": _number(self.query_one("#opt-temperature", Input).value, float),
            "top_p": _number(self.query_one("#opt-top_p", Input).value, float),
            "max_tokens": _number(self.query_one("#opt-max_tokens", Input).value, int),
            "think": None if think == "default" else think == "on",
        })

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


def _text(value) -> str:
    return "" if value is None else str(value)


def _number(text: str, kind: type):
    try:
        return kind(text) if text.strip() else None
    except ValueError:
        return None
