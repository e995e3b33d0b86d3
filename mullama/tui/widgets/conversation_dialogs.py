"""Dialogs for conversation files: export (format and path) and picking a code block."""

from __future__ import annotations

from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.markup import escape
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, OptionList, RadioButton, RadioSet

from ..conversation_io import SUFFIXES
from .dialogs import PickDialog

FORMATS = {"markdown": "Markdown (.md), to read or share", "json": "JSON (.json), to import again"}


class ExportDialog(ModalScreen[tuple[Path, str] | None]):
    """Returns the path and format ("markdown" | "json") to export to, or None."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, path: Path, fmt: str = "markdown"):
        super().__init__(classes="dialog-screen")
        self.conversation_title, self.path, self.fmt = title, path, fmt

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="export-dialog"):
            yield Label(f"Export “{escape(self.conversation_title)}”", classes="dialog-question")
            with RadioSet(id="export-format"):
                for fmt, text in FORMATS.items():
                    yield RadioButton(text, value=fmt == self.fmt, id=f"format-{fmt}")
            yield Label("File")
            yield Input(str(self.path), id="export-path")
            yield Label("", classes="dialog-error", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Export", variant="primary", id="export")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#export-path", Input).focus()

    @on(RadioSet.Changed)
    def _format_changed(self, event: RadioSet.Changed) -> None:
        fmt = (event.pressed.id or "").removeprefix("format-")
        field = self.query_one("#export-path", Input)
        path = Path(field.value)
        if path.suffix.lower() == SUFFIXES[self.fmt]:  # keep a name the user typed
            field.value = str(path.with_suffix(SUFFIXES[fmt]))
        self.fmt = fmt

    @on(Input.Submitted)
    @on(Button.Pressed, "#export")
    def _export(self) -> None:
        text = self.query_one("#export-path", Input).value.strip()
        if not text:
            self.query_one(".dialog-error", Label).update("Give a file to write.")
            return
        self.dismiss((Path(text), self.fmt))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


class CodeBlockPicker(PickDialog):
    """Choose one of a reply's code blocks; the last is highlighted (Enter takes it)."""

    def on_mount(self) -> None:
        for options in self.query("#choices").results(OptionList):
            options.highlighted = len(self.choices) - 1
            options.focus()
