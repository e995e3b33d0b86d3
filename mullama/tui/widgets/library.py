"""The model library on the Models screen: the alias registry (bundled and the user's), or the
Hugging Face repositories a search finds; Enter pulls an alias or picks a repository's
quantization. What to pull goes to the screen as :class:`ModelLibrary.PullChosen`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import DataTable, Input, Label

from ...engine.api import AliasInfo, EngineError, HubModel
from ..format import human_size, short_date
from .quant_picker import QuantPicker, cut

if TYPE_CHECKING:
    from ..app import MullamaApp

NARROW_BELOW = 100  # columns, as the Models table
SEARCH_LIMIT = 30
REGISTRY_HINT = "Enter pulls the alias · q picks another quantization · / searches Hugging Face"
HUB_HINT = "Enter picks a quantization to pull · Esc goes back to the alias registry"


def human_count(n: int) -> str:
    """1234567 -> '1.2M' (downloads and likes)."""
    for div, unit in ((1_000_000_000, "B"), (1_000_000, "M"), (1_000, "K")):
        if n >= div:
            return f"{n / div:.1f}{unit}"
    return str(n)


class ModelLibrary(Vertical):
    if TYPE_CHECKING:
        app: MullamaApp

    BINDINGS = [
        Binding("slash", "focus_search", "Search"),
        Binding("q", "quants", "Quants"),
        Binding("escape", "back", "Back", show=False),
    ]

    @dataclass
    class PullChosen(Message):
        """The user chose something to pull: an alias or an ``hf:`` reference."""

        ref: str

    class Closed(Message):
        """Esc on the alias registry: back to the local models."""

    def __init__(self, id: str | None = None):
        super().__init__(id=id)
        self.aliases: list[AliasInfo] = []
        self.results: list[HubModel] = []
        self.local: set[str] = set()
        self.showing = "registry"  # "registry" | "hub"
        self.query_text = ""

    def compose(self) -> ComposeResult:
        yield Input(placeholder="Search Hugging Face for GGUF models (Enter)", id="library-search")
        yield Label(REGISTRY_HINT, id="library-status", markup=False)
        table: DataTable[str] = DataTable(id="library", cursor_type="row", zebra_stripes=True)
        table.border_title = "Alias registry"
        yield table

    @property
    def narrow(self) -> bool:
        return self.app.size.width < NARROW_BELOW

    def on_resize(self) -> None:
        self.show()

    # ---------------------------------------------------------------- loading

    @work(exclusive=True, group="library-registry")
    async def load_registry(self) -> None:
        engine = await self.app.wait_engine()
        try:
            self.aliases = await engine.list_aliases()
            self.local = {m.name.lower() for m in await engine.list_models()}
        except EngineError as exc:
            self.say(exc.message, error=True)
            return
        if self.showing == "registry":
            self.say(REGISTRY_HINT)
        self.show()

    @on(Input.Submitted, "#library-search")
    def _search_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.search(event.value.strip())

    @work(exclusive=True, group="library-search")  # a search does not stop the registry's load
    async def search(self, text: str) -> None:
        engine = await self.app.wait_engine()
        self.showing, self.query_text, self.results = "hub", text, []
        self.show()
        self.say(f"Searching Hugging Face for {text!r}…" if text else "Listing GGUF models…")
        try:
            self.results = await engine.search_models(text, SEARCH_LIMIT)
        except EngineError as exc:
            self.say(f"{exc.message} — Esc shows the alias registry", error=True)
            return
        self.say(HUB_HINT if self.results else f"No GGUF repository matches {text!r}")
        self.show()
        self.query_one("#library", DataTable).focus()

    def say(self, text: str, error: bool = False) -> None:
        status = self.query_one("#library-status", Label)
        status.update(text)
        status.set_class(error, "-error")

    # ---------------------------------------------------------------- the table

    def show(self) -> None:
        table = self.query_one("#library", DataTable)
        selected = self.selected()
        table.clear(columns=True)
        if self.showing == "hub":
            self._show_results(table)
        else:
            self._show_aliases(table)
        if selected is not None and selected in table.rows:  # a reload keeps the cursor
            table.move_cursor(row=table.get_row_index(selected))

    def _show_aliases(self, table: DataTable[str]) -> None:
        narrow = self.narrow
        columns = ("", "Name", "Size", "Description") if narrow else (
            "", "Name", "Size", "Quant", "Tags", "Description"
        )  # fmt: skip
        table.add_columns(*columns)
        name_width = max((len(a.name) for a in self.aliases), default=4)
        tags_width = 0 if narrow else max((len(", ".join(a.tags)) for a in self.aliases), default=0)
        # borders, each column's padding, the mark, Size, Quant and a scrollbar
        used = name_width + (21 if narrow else 31 + tags_width)
        room = max(12, self.app.size.width - used)
        for a in self.aliases:
            pulled = a.name.lower() in self.local or any(x.lower() in self.local for x in a.aliases)
            size = human_size(a.size) if a.size else "—"
            description = cut(a.description or "—", room)
            cells = (
                ("✓" if pulled else "", a.name, size, description)
                if narrow
                else (
                    "✓" if pulled else "",
                    a.name,
                    size,
                    a.quant or "file",
                    ", ".join(a.tags),
                    description,
                )
            )
            table.add_row(*cells, key=a.name)
        table.border_title = "Alias registry"
        table.border_subtitle = f"{len(self.aliases)} aliases · ✓ pulled"

    def _show_results(self, table: DataTable[str]) -> None:
        narrow = self.narrow
        table.add_columns(
            *(("Repository", "Downloads", "Likes"))
            if narrow
            else ("Repository", "Downloads", "Likes", "Task", "Created")
        )
        room = max(20, self.app.size.width - (26 if narrow else 52))
        for m in self.results:
            repo = cut(m.repo, room) + (" 🔒" if m.gated else "")
            cells = [repo, human_count(m.downloads), human_count(m.likes)]
            if not narrow:
                cells += [m.pipeline_tag or "—", short_date(m.created_at)[:10] or "—"]
            table.add_row(*cells, key=m.repo)
        table.border_title = (
            f"Hugging Face — {self.query_text!r}" if self.query_text else "Hugging Face"
        )
        table.border_subtitle = f"{len(self.results)} GGUF repositories, most downloaded first"

    def selected(self) -> str | None:
        table = self.query_one("#library", DataTable)
        if table.row_count == 0:
            return None
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value

    # ---------------------------------------------------------------- actions

    @on(DataTable.RowSelected, "#library")
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        key = event.row_key.value
        if key is None:
            return
        if self.showing == "registry":
            self.post_message(self.PullChosen(key))
        else:
            self.pick_quant(key)

    def action_quants(self) -> None:
        key = self.selected()
        if key is None:
            return
        if self.showing == "hub":
            self.pick_quant(key)
            return
        alias = next((a for a in self.aliases if a.name == key), None)
        if alias is None or not alias.repo:
            self.app.notify(
                f"{key} has no Hugging Face repository to choose from", severity="warning"
            )
            return
        self.pick_quant(alias.repo, alias.quant)

    @work(group="quant-picker")
    async def pick_quant(self, repo: str, prefer: str = "") -> None:
        engine = await self.app.wait_engine()
        ref = await self.app.push_screen_wait(QuantPicker(repo, engine.list_quants, prefer))
        if ref:
            self.post_message(self.PullChosen(ref))

    def action_focus_search(self) -> None:
        self.query_one("#library-search", Input).focus()

    def action_back(self) -> None:
        if self.showing == "hub":
            self.showing, self.results = "registry", []
            self.say(REGISTRY_HINT)
            self.show()
            self.query_one("#library", DataTable).focus()
        else:
            self.post_message(self.Closed())
