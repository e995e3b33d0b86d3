"""Model details (info, Modelfile, parameters, metadata) and the create-from-Modelfile dialog."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.markup import escape
from textual.screen import ModalScreen
from textual.widgets import (
    Button,
    DataTable,
    Input,
    Label,
    Static,
    TabbedContent,
    TabPane,
    TextArea,
)

from ...engine.api import EngineError, ModelDetails
from ..format import human_size, short_date


class ModelDetailsScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,q", "dismiss", "Close")]

    def __init__(self, details: ModelDetails):
        super().__init__(classes="dialog-screen")
        self.details = details

    def compose(self) -> ComposeResult:
        d, info = self.details, self.details.info
        caps = ", ".join(k for k, v in sorted(info.capabilities.items()) if v) or "—"
        overview = "\n".join(
            [
                f"[b]Name[/]          {info.name}",
                f"[b]Kind[/]          {info.kind}",
                f"[b]Source[/]        {info.source or '—'}",
                f"[b]Size[/]          {human_size(info.size)}",
                f"[b]Family[/]        {info.family or '—'}",
                f"[b]Parameters[/]    {info.parameter_size or '—'}",
                f"[b]Quantization[/]  {info.quantization or '—'}",
                f"[b]Capabilities[/]  {caps}",
                f"[b]Digest[/]        {info.digest[:19] or '—'}",
                f"[b]Modified[/]      {short_date(info.modified_at) or '—'}",
                f"[b]License[/]       {(d.license.splitlines() or ['—'])[0][:60]}",
            ]
        )
        with Vertical(classes="dialog wide", id="details"):
            yield Label(f"[b]{escape(info.name)}[/]", classes="dialog-question")
            with TabbedContent():
                with TabPane("Overview"):
                    yield Static(overview)
                with TabPane("Modelfile"):
                    yield TextArea(d.modelfile, read_only=True, show_line_numbers=True)
                with TabPane("Parameters"):
                    yield _table("Parameter", d.parameters)
                with TabPane("Metadata"):
                    yield _table("Key", d.metadata)
            yield Label("[dim]Esc closes · Tab switches panes[/]", classes="dialog-hint")


def _table(key_title: str, values: dict[str, Any]) -> DataTable[str]:
    table: DataTable[str] = DataTable(cursor_type="row", zebra_stripes=True)
    table.add_columns(key_title, "Value")
    for key, value in sorted(values.items()):
        text = value if isinstance(value, str) else json.dumps(value)
        table.add_row(key, text if len(text) < 120 else text[:117] + "…")
    return table


class CreateModelDialog(ModalScreen[str | None]):
    """A name and a Modelfile; Ctrl+S creates (through ``create``), Esc cancels. An error keeps
    the dialog open with the text as typed; returns the created name."""

    BINDINGS = [
        Binding("ctrl+s", "create", "Create", priority=True),
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(self, create: Callable[[str, str], Awaitable[object]], base: str = ""):
        super().__init__(classes="dialog-screen")
        self.create = create
        self.base = base

    def compose(self) -> ComposeResult:
        template = (
            f"FROM {self.base or 'llama3.2:1b'}\n"
            'SYSTEM """You are a helpful assistant."""\n'
            "PARAMETER temperature 0.7\n"
        )
        with Vertical(classes="dialog wide"):
            yield Label("Create a model from a Modelfile", classes="dialog-question")
            yield Input(placeholder="name, e.g. my-assistant", id="create-name")
            yield TextArea(template, id="create-modelfile", show_line_numbers=True)
            yield Label("", id="create-error", classes="dialog-error", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Create [dim](ctrl+s)[/]", variant="primary", id="create")
                yield Button("Cancel", id="cancel")

    @on(Button.Pressed, "#create")
    @work(exclusive=True)
    async def action_create(self) -> None:
        name = self.query_one("#create-name", Input).value.strip()
        modelfile = self.query_one("#create-modelfile", TextArea).text
        error = self.query_one("#create-error", Label)
        if not name:
            error.update("Give the model a name.")
            self.query_one("#create-name", Input).focus()
            return
        error.update("Creating…")
        try:
            await self.create(name, modelfile)
        except EngineError as exc:
            error.update(exc.message)
            line = exc.details.get("line")
            if isinstance(line, int) and line > 0:  # the Modelfile's line at fault
                editor = self.query_one("#create-modelfile", TextArea)
                column = exc.details.get("column")
                editor.move_cursor((line - 1, column - 1 if isinstance(column, int) else 0))
                editor.focus()
            return
        self.dismiss(name)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
