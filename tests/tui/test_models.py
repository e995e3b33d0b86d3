"""Models against the real engine: pull with progress from the fake hub, details, delete."""

from __future__ import annotations

import pytest
from textual.widgets import DataTable, Input, ProgressBar, TextArea

from mullama.tui.app import MullamaApp
from mullama.tui.widgets.dialogs import ConfirmDialog
from mullama.tui.widgets.model_dialogs import ModelDetailsScreen
from tests.fakehub import make_gguf_bytes

from .conftest import SIZE, wait_for, wait_for_default

pytestmark = pytest.mark.slow


def names(app) -> list[str]:
    table = app.screen.query_one("#models", DataTable)
    return [str(table.get_row_at(i)[0]) for i in range(table.row_count)]


async def open_models(app, pilot) -> None:
    await wait_for(
        pilot,
        lambda: app.screen.query_one("#models", DataTable).row_count > 0,
        what="models listed",
    )


async def test_pull_shows_progress_and_lists_the_model(engine, settings, fake_hub):
    fake_hub.add_repo("acme/Tiny-GGUF", {"tiny.Q4_K_M.gguf": make_gguf_bytes(padding=4_000_000)})
    gate = fake_hub.hold("tiny.Q4_K_M.gguf", after_bytes=2_500_000)  # stops part-way
    app = MullamaApp(settings, engine=engine, mode="models")
    async with app.run_test(size=SIZE) as pilot:
        await open_models(app, pilot)
        await pilot.press("p")
        await wait_for(pilot, lambda: app.screen.query("#answer"), what="pull dialog")
        app.screen.query_one("#answer", Input).value = "hf:acme/Tiny-GGUF"
        await pilot.press("enter")
        panel = app.screen.query_one("#pull-panel")
        seen: list[float] = []

        def partial() -> bool:
            for bar in app.screen.query(".pull-bar").results(ProgressBar):
                if bar.total and 0 < bar.progress < bar.total:
                    seen.append(bar.progress)
            return bool(seen)

        await wait_for(pilot, partial, what="the bar showing a partial download")
        gate.set()
        await wait_for(pilot, lambda: "hf:acme/Tiny-GGUF" in names(app), what="pulled, listed")
        assert not panel.has_class("-active")
    assert "hf:acme/Tiny-GGUF" in [m.name for m in await engine.list_models()]


async def test_two_pulls_run_at_once_each_with_its_progress(engine, settings, fake_hub):
    from mullama.tui.widgets.pull_row import PullRow

    fake_hub.add_repo("acme/One-GGUF", {"one.Q4_K_M.gguf": make_gguf_bytes(padding=3_000_000)})
    fake_hub.add_repo("acme/Two-GGUF", {"two.Q4_K_M.gguf": make_gguf_bytes(padding=3_000_000)})
    fake_hub.delay_per_chunk = 0.02
    app = MullamaApp(settings, engine=engine, mode="models")
    async with app.run_test(size=SIZE) as pilot:
        await open_models(app, pilot)
        for ref in ("hf:acme/One-GGUF", "hf:acme/Two-GGUF"):
            await pilot.press("p")
            await wait_for(pilot, lambda: app.screen.query("#answer"), what="pull dialog")
            app.screen.query_one("#answer", Input).value = ref
            await pilot.press("enter")
            await wait_for(
                pilot, lambda ref=ref: ref in [r.ref for r in app.screen.query(PullRow)], what=ref
            )
        rows = {r.ref for r in app.screen.query(PullRow)}
        # the second did not cancel the first: both are listed, and both end in the store
        assert len(rows) == 2 or "hf:acme/One-GGUF" in names(app)
        await wait_for(
            pilot,
            lambda: {"hf:acme/One-GGUF", "hf:acme/Two-GGUF"} <= set(names(app)),
            what="both pulled",
        )
        assert not any(n.severity == "error" for n in app._notifications)
        await wait_for(pilot, lambda: not app.screen.query(PullRow), what="rows gone")


async def test_failed_pull_says_why(engine, settings, fake_hub):
    app = MullamaApp(settings, engine=engine, mode="models")
    async with app.run_test(size=SIZE) as pilot:
        await open_models(app, pilot)
        await pilot.press("p")
        await wait_for(pilot, lambda: app.screen.query("#answer"), what="pull dialog")
        app.screen.query_one("#answer", Input).value = "hf:nobody/Missing-GGUF"
        await pilot.press("enter")
        await wait_for(
            pilot,
            lambda: any(n.severity == "error" for n in app._notifications),
            what="error notification",
        )
        assert names(app) == ["gemma:latest"]


async def test_delete_asks_first(engine, settings):
    await engine.copy_model("gemma", "spare")
    app = MullamaApp(settings, engine=engine, mode="models")
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: "spare:latest" in names(app), what="both models listed")
        table = app.screen.query_one("#models", DataTable)
        table.move_cursor(row=names(app).index("spare:latest"))
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="confirmation")
        await pilot.press("n")  # no: nothing is deleted
        await pilot.pause(0.2)
        assert "spare:latest" in [m.name for m in await engine.list_models()]
        await pilot.press("d")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog), what="confirmation")
        await pilot.press("y")
        await wait_for(pilot, lambda: "spare:latest" not in names(app), what="row removed")
    assert [m.name for m in await engine.list_models()] == ["gemma:latest"]


async def test_details_show_the_modelfile_and_load_unload(engine, settings):
    app = MullamaApp(settings, engine=engine, mode="models")
    async with app.run_test(size=SIZE) as pilot:
        await open_models(app, pilot)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ModelDetailsScreen), what="details")
        assert "TEMPLATE" in app.screen.query_one(TextArea).text
        await pilot.press("escape")
        await pilot.press("l")
        await wait_for(
            pilot,
            lambda: "● loaded" in str(app.screen.query_one("#models", DataTable).get_row_at(0)[7]),
            what="loaded mark",
        )
        assert [m.name for m in await engine.running_models()] == ["gemma:latest"]
        await pilot.press("u")
        await wait_for(
            pilot,
            lambda: (
                "loaded" not in str(app.screen.query_one("#models", DataTable).get_row_at(0)[7])
            ),
            what="unloaded",
        )
        assert await engine.running_models() == []


async def test_a_pull_of_a_name_like_markup_fails_cleanly(engine, settings, fake_hub):
    app = MullamaApp(settings, engine=engine, mode="models")
    async with app.run_test(size=SIZE) as pilot:
        await open_models(app, pilot)
        await pilot.press("p")
        await wait_for(pilot, lambda: app.screen.query("#answer"), what="pull dialog")
        app.screen.query_one("#answer", Input).value = "foo[/]"
        await pilot.press("enter")
        await wait_for(
            pilot,
            lambda: any(n.severity == "error" for n in app._notifications),
            what="error notification",
        )
        assert app.is_running and names(app) == ["gemma:latest"]


async def test_a_failed_create_keeps_the_modelfile_and_says_why(engine, settings, test_model_path):
    from mullama.tui.widgets.model_dialogs import CreateModelDialog

    app = MullamaApp(settings, engine=engine, mode="models")
    async with app.run_test(size=SIZE) as pilot:
        await open_models(app, pilot)
        await pilot.press("n")
        await wait_for(
            pilot, lambda: isinstance(app.screen, CreateModelDialog), what="create dialog"
        )
        app.screen.query_one("#create-name", Input).value = "brief"
        editor = app.screen.query_one("#create-modelfile", TextArea)
        editor.text = f"FROM {test_model_path}\nPARAMETER bogus 1\n"
        await pilot.press("ctrl+s")
        error = app.screen.query_one("#create-error")
        await wait_for(pilot, lambda: "bogus" in str(error.render()), what="error in the dialog")
        assert "line 2" in str(error.render())
        await pilot.pause()
        assert error.size.height > 1  # the whole list of parameters, wrapped, not one line
        assert editor.cursor_location[0] == 1 and editor.has_focus  # at the line at fault
        assert isinstance(app.screen, CreateModelDialog) and "bogus" in editor.text  # kept
        editor.text = f"FROM {test_model_path}\nPARAMETER temprature 1\n"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: "did you mean" in str(error.render()), what="suggestion")
        assert '"temperature"' in str(error.render())
        editor.text = f"FROM {test_model_path}\nSYSTEM Be brief.\n"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: "brief:latest" in names(app), what="created and listed")


async def test_set_default_marks_the_model_at_once(engine, settings):
    app = MullamaApp(settings, engine=engine, mode="models")
    async with app.run_test(size=SIZE) as pilot:
        await open_models(app, pilot)
        await pilot.press("s")
        table = app.screen.query_one("#models", DataTable)
        await wait_for(pilot, lambda: "★ default" in str(table.get_row_at(0)[-1]), what="star")
        await wait_for_default(pilot, engine, "gemma:latest")
