"""Pick a quantization of a Hugging Face repository: its GGUF files with their sizes, the one
the quantization preference would take already under the cursor. Returns what to pull."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.markup import escape
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label

from ...engine.api import EngineError, QuantFile
from ..format import human_size

ListQuants = Callable[[str], Awaitable[list[QuantFile]]]


def cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(0, width - 1)] + "…"


def files_text(quant: QuantFile) -> str:
    first = quant.files[0].rsplit("/", 1)[-1] if quant.files else ""
    return f"{first} (+{len(quant.files) - 1} shards)" if len(quant.files) > 1 else first


class QuantPicker(ModalScreen[str | None]):
    """Enter pulls the quantization under the cursor; Esc cancels (returns None)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, repo: str, list_quants: ListQuants, prefer: str = ""):
        """``prefer``: a quantization to put the cursor on instead of the preference's pick
        (an alias's default)."""
        super().__init__(classes="dialog-screen")
        self.repo, self.list_quants, self.prefer = repo, list_quants, prefer.upper()
        self.quants: list[QuantFile] = []

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="quant-dialog"):
            yield Label(
                f"Pick a quantization of [b]{escape(self.repo)}[/]", classes="dialog-question"
            )
            yield Label(f"Listing the files of {self.repo}…", id="quant-status", markup=False)
            table: DataTable[str] = DataTable(id="quants", cursor_type="row", zebra_stripes=True)
            table.add_columns("", "Quant", "Size", "File")
            yield table
            yield Label(
                "[dim]Enter pulls it · Esc cancels · ★ your quantization preference's pick[/]",
                classes="dialog-hint",
            )

    def on_mount(self) -> None:
        self.load()

    @work(exclusive=True)
    async def load(self) -> None:
        status = self.query_one("#quant-status", Label)
        try:
            self.quants = await self.list_quants(self.repo)
        except EngineError as exc:
            status.update(exc.message)
            status.add_class("dialog-error")
            return
        table = self.query_one("#quants", DataTable)
        room = max(20, min(64, self.app.size.width - 45))  # what the dialog leaves the file
        for q in self.quants:
            table.add_row(
                "★" if q.preferred else "",
                q.quant or "—",
                human_size(q.size),
                cut(files_text(q), room),
                key=q.ref,
            )
        status.update(f"{len(self.quants)} GGUF weights, smallest first")
        start = next((i for i, q in enumerate(self.quants) if q.quant == self.prefer), None)
        if start is None:
            start = next((i for i, q in enumerate(self.quants) if q.preferred), 0)
        table.move_cursor(row=start)
        table.focus()

    @on(DataTable.RowSelected, "#quants")
    def _picked(self, event: DataTable.RowSelected) -> None:
        self.dismiss(event.row_key.value)

    def action_cancel(self) -> None:
        self.dismiss(None)
