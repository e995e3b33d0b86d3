"""Models: the local store — pull with progress, details, create, copy, delete, load, unload —
and the model library (b): the alias registry and a Hugging Face search, pulled from here too."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, cast

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import ContentSwitcher, DataTable

from ...engine.api import EngineError, ModelInfo, PullProgress
from ..format import human_size, short_date
from ..messages import ChatRequested, DefaultModelChanged, ModelsChanged
from ..widgets.dialogs import AskDialog, ConfirmDialog
from ..widgets.footer import Footer
from ..widgets.library import ModelLibrary
from ..widgets.model_dialogs import CreateModelDialog, ModelDetailsScreen
from ..widgets.navbar import NavBar
from ..widgets.pull_row import PullRow

if TYPE_CHECKING:
    from ..app import MullamaApp

WIDE_COLUMNS = ("Name", "Size", "Quant", "Family", "Params", "Kind", "Modified", "")
NARROW_COLUMNS = ("Name", "Size", "Quant", "Params", "Modified", "")
NARROW_BELOW = 100  # columns; the app's -narrow breakpoint
PULL_HINT = "an alias (llama3.2:1b) or hf:owner/repo[:QUANT|:file.gguf][@rev]"
# what acts on the local table's selection: not offered while the library is shown
LOCAL_ACTIONS = {
    "details", "create", "copy", "delete", "load", "unload", "set_default", "chat",
    "cancel_pull", "library",
}  # fmt: skip


class ModelsScreen(Screen):
    if TYPE_CHECKING:
        app: MullamaApp  # the App these screens run in

    BINDINGS = [
        Binding("p", "pull", "Pull"),
        Binding("enter", "details", "Details", show=False),
        Binding("n", "create", "Create"),
        Binding("y", "copy", "Copy"),
        Binding("d,delete", "delete", "Delete"),
        Binding("l", "load", "Load"),
        Binding("u", "unload", "Unload"),
        Binding("s", "set_default", "Set default"),
        Binding("c", "chat", "Chat"),
        Binding("r", "refresh", "Refresh"),
        Binding("b", "library", "Library"),
        Binding("b", "local", "Local"),
        Binding("escape", "cancel_pull", "Cancel pull", show=False),
    ]

    def compose(self) -> ComposeResult:
        yield NavBar("models")
        with ContentSwitcher(initial="models", id="models-view"):
            table: DataTable[str] = DataTable(id="models", cursor_type="row", zebra_stripes=True)
            table.border_title = "Local models"
            yield table
            yield ModelLibrary(id="model-library")
        with Vertical(id="pull-panel", classes="panel") as panel:
            panel.border_title = "Pulls — ✕ cancels one, Esc (on the local models) all"
        yield Footer()

    @property
    def library_shown(self) -> bool:
        return self.query_one("#models-view", ContentSwitcher).current == "model-library"

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "local":
            return self.library_shown
        if action in LOCAL_ACTIONS:
            return not self.library_shown
        return True

    def on_mount(self) -> None:
        self._narrow: bool | None = None
        self._set_columns()
        self.reload()

    def _set_columns(self) -> bool:
        """The columns for this width (below 100: no Family or Kind, a shorter date, marks
        as symbols, so that an 80-column terminal shows every column); True when changed."""
        narrow = self.app.size.width < NARROW_BELOW
        if narrow == self._narrow:
            return False
        self._narrow = narrow
        table = self.query_one("#models", DataTable)
        table.clear(columns=True)
        table.add_columns(*(NARROW_COLUMNS if narrow else WIDE_COLUMNS))
        return True

    def on_resize(self) -> None:
        if self._set_columns():
            self.reload()

    def on_screen_resume(self) -> None:
        self.reload()
        if self.library_shown:  # its pulled marks may have changed elsewhere
            self.query_one(ModelLibrary).load_registry()

    def action_refresh(self) -> None:
        self.reload()
        if self.library_shown:
            self.query_one(ModelLibrary).load_registry()

    def action_library(self) -> None:
        self.query_one("#models-view", ContentSwitcher).current = "model-library"
        library = self.query_one(ModelLibrary)
        library.load_registry()
        library.query_one("#library", DataTable).focus()
        self.refresh_bindings()

    def action_local(self) -> None:
        self.query_one("#models-view", ContentSwitcher).current = "models"
        self.query_one("#models", DataTable).focus()
        self.refresh_bindings()

    @on(ModelLibrary.Closed)
    def _library_closed(self) -> None:
        self.action_local()

    @on(ModelLibrary.PullChosen)
    def _pull_chosen(self, event: ModelLibrary.PullChosen) -> None:
        self.start_pull(event.ref)

    @work(exclusive=True, group="list")
    async def reload(self) -> None:
        engine = await self.app.wait_engine()
        try:
            models = await engine.list_models()
            loaded = {m.name for m in await engine.running_models()}
        except EngineError as exc:
            self.notify(exc.message, title="Cannot list models", severity="error")
            return
        self.show_models(models, loaded)

    def show_models(self, models: list[ModelInfo], loaded: set[str]) -> None:
        table = self.query_one("#models", DataTable)
        selected = self.selected()
        table.clear()
        default = self.app.prefs.default_model
        narrow = bool(self._narrow)
        for m in models:
            flags = (("● loaded", m.name in loaded), ("★ default", m.name == default))
            marks = " ".join((x[0] if narrow else x) for x, on_ in flags if on_)
            modified = short_date(m.modified_at)
            if narrow:  # "11-20 09:14": the year goes
                table.add_row(
                    m.name,
                    human_size(m.size),
                    m.quantization or "—",
                    m.parameter_size or "—",
                    modified[5:],
                    marks,
                    key=m.name,
                )
                continue
            table.add_row(
                m.name,
                human_size(m.size),
                m.quantization or "—",
                m.family or "—",
                m.parameter_size or "—",
                m.kind,
                modified,
                marks,
                key=m.name,
            )
        table.border_subtitle = f"{len(models)} models" if models else "none yet — press p to pull"
        if selected in {m.name for m in models}:
            table.move_cursor(row=table.get_row_index(selected))

    def selected(self) -> str | None:
        table = self.query_one("#models", DataTable)
        if table.row_count == 0:
            return None
        return table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value

    # ---------------------------------------------------------------- pull

    @work(group="ask-pull")
    async def action_pull(self) -> None:
        ref = await self.app.push_screen_wait(
            AskDialog("Pull a model", "llama3.2:1b", hint=PULL_HINT)
        )
        if ref:
            self.start_pull(ref)

    def start_pull(self, ref: str) -> None:
        if any(row.ref == ref for row in self.query(PullRow)):
            self.notify(f"{ref} is being pulled already", severity="warning")
            return
        # not exclusive: a second pull runs beside the first, each in its own row
        self.run_worker(self.pull(ref), group="pull", name=ref, exit_on_error=False)

    async def pull(self, ref: str) -> None:
        engine = await self.app.wait_engine()
        panel = self.query_one("#pull-panel")
        row = PullRow(ref)
        await panel.mount(row)
        panel.add_class("-active")
        try:
            # Engine implementations are async generators; the API types them as AsyncIterator
            pulls = cast("AsyncGenerator[PullProgress, None]", engine.pull_model(ref))
            async with contextlib.aclosing(pulls) as progress:
                async for step in progress:
                    row.show(step)
        except EngineError as exc:
            self.notify(exc.message, title=f"Pull of {ref} failed", severity="error", timeout=10)
        else:
            self.notify(f"{ref} is ready", title="Pulled")
            self.post_message(ModelsChanged("pulled", ref))
            if self.library_shown:  # its ✓ marks
                self.query_one(ModelLibrary).load_registry()
        finally:
            await row.remove()
            if not self.query(PullRow):
                panel.remove_class("-active")

    def action_cancel_pull(self) -> None:
        for worker in self.workers:
            if worker.group == "pull" and not worker.is_finished:
                self._cancel(worker)

    @on(PullRow.CancelRequested)
    def _cancel_one(self, event: PullRow.CancelRequested) -> None:
        for worker in self.workers:
            if worker.group == "pull" and worker.name == event.ref and not worker.is_finished:
                self._cancel(worker)

    def _cancel(self, worker) -> None:
        worker.cancel()
        self.notify(f"Pull of {worker.name} cancelled; pulling it again resumes the download")

    # ---------------------------------------------------------------- other actions

    @on(DataTable.RowSelected, "#models")
    def _row_selected(self) -> None:
        self.action_details()

    @work(exclusive=True, group="action")
    async def action_details(self) -> None:
        if name := self.selected():
            if details := await self.call_engine("show", "show_model", name):
                await self.app.push_screen_wait(ModelDetailsScreen(details))

    @work(exclusive=True, group="action")
    async def action_create(self) -> None:
        engine = await self.app.wait_engine()
        name = await self.app.push_screen_wait(
            CreateModelDialog(engine.create_model, self.selected() or "")
        )
        if name:
            self.notify(f"Created {name}")
            self.post_message(ModelsChanged("created", name))

    @work(exclusive=True, group="action")
    async def action_copy(self) -> None:
        if not (source := self.selected()):
            return
        target = await self.app.push_screen_wait(AskDialog(f"Copy {source} to", f"{source}-copy"))
        if target and await self.call_engine("copy", "copy_model", source, target):
            self.post_message(ModelsChanged("copied", target))

    @work(exclusive=True, group="action")
    async def action_delete(self) -> None:
        if not (name := self.selected()):
            return
        if not await self.app.push_screen_wait(ConfirmDialog(f"Delete [b]{name}[/]?", "Delete")):
            return
        if await self.call_engine("delete", "delete_model", name) is not None:
            self.notify(f"Deleted {name}")
            self.post_message(ModelsChanged("deleted", name))

    @work(exclusive=True, group="action")
    async def action_load(self) -> None:
        if name := self.selected():
            self.notify(f"Loading {name}…")
            if loaded := await self.call_engine("load", "load_model", name):
                self.notify(f"{name} loaded (context {loaded.context_length:,})")
                self.reload()

    @work(exclusive=True, group="action")
    async def action_unload(self) -> None:
        if (name := self.selected()) and await self.call_engine(
            "unload", "unload_model", name
        ) is not None:
            self.notify(f"{name} unloaded")
            self.reload()

    def action_set_default(self) -> None:
        if name := self.selected():
            self.post_message(DefaultModelChanged(name))  # the app sets, saves and confirms it
            self.app.prefs.default_model = name
            self.reload()  # the star moves now

    def action_chat(self) -> None:
        self.post_message(ChatRequested(self.selected() or ""))

    async def call_engine(self, what: str, method: str, *args):
        """Call an engine method; on error, say so and return None (``True`` for None results)."""
        engine = await self.app.wait_engine()
        try:
            result = await getattr(engine, method)(*args)
        except EngineError as exc:
            self.notify(exc.message, title=f"Cannot {what}", severity="error", timeout=8)
            return None
        return True if result is None else result

    @on(ModelsChanged)
    def _models_changed(self) -> None:
        self.reload()
