"""Dashboard and Settings against the real engine (embedded)."""

from __future__ import annotations

import pytest
import tomlkit
from textual.widgets import DataTable, Input, Select, Static

from mullama.tui.app import MullamaApp
from mullama.tui.widgets.dialogs import PickDialog

from .conftest import SIZE, wait_for, wait_for_default

pytestmark = pytest.mark.slow


def text(widget) -> str:
    return str(widget.render())


async def test_dashboard_says_embedded_and_loads_a_model(engine, settings):
    app = MullamaApp(settings, engine=engine)
    async with app.run_test(size=SIZE) as pilot:
        info = app.screen.query_one("#engine-info", Static)
        await wait_for(pilot, lambda: "embedded" in text(info), what="engine info")
        assert app.connection == "local"
        assert "embedded engine" in text(app.screen.query_one("#connection"))
        await pilot.press("l")
        await wait_for(pilot, lambda: isinstance(app.screen, PickDialog), what="model picker")
        await pilot.press("enter")
        table = app.screen.query_one("#loaded", DataTable)
        await wait_for(pilot, lambda: table.row_count == 1, what="loaded model row")
        assert str(table.get_row_at(0)[0]) == "gemma:latest"
        await pilot.press("u")
        await wait_for(pilot, lambda: table.row_count == 0, what="unloaded")
        await pilot.press("c")
        await wait_for(pilot, lambda: app.current_mode == "chat", what="chat opened")


async def test_settings_are_saved_and_reloaded(engine, settings):
    app = MullamaApp(settings, engine=engine, mode="settings")
    async with app.run_test(size=SIZE) as pilot:
        picker = app.screen.query_one("#set-default_model", Select)
        await wait_for(pilot, lambda: len(picker._options) > 1, what="models in the picker")
        picker.value = "gemma:latest"
        app.screen.query_one("#set-theme", Select).value = "nord"
        app.screen.query_one("#set-temperature", Input).value = "0.3"
        app.screen.query_one("#set-max_tokens", Input).value = "200"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: settings.settings_file.exists(), what="settings file")
        await wait_for_default(pilot, engine, "gemma:latest")
        assert app.theme == "nord"
    saved = tomlkit.parse(settings.settings_file.read_text())["tui"]
    assert (saved["theme"], saved["temperature"], saved["max_tokens"], saved["default_model"]) == (
        "nord",
        0.3,
        200,
        "gemma:latest",
    )
    again = MullamaApp(settings, engine=engine, mode="settings")
    async with again.run_test(size=SIZE) as pilot:
        await pilot.pause(0.2)
        assert again.theme == "nord"
        assert again.screen.query_one("#set-temperature", Input).value == "0.3"


async def test_settings_refuse_a_bad_number(engine, settings):
    app = MullamaApp(settings, engine=engine, mode="settings")
    async with app.run_test(size=SIZE) as pilot:
        for field, value, words in (
            ("top_k", "1.5", "top k must be a number"),
            ("temperature", "500", "temperature must be between 0 and 100"),
            ("top_k", "-3", "top k must be 0 or more"),
            ("max_tokens", "0", "max tokens must be at least 1"),
        ):
            app.screen.query_one(f"#set-{field}", Input).value = value
            await pilot.press("ctrl+s")
            await wait_for(
                pilot,
                lambda words=words: any(words in n.message for n in app._notifications),
                what=words,
            )
            app.screen.query_one(f"#set-{field}", Input).value = ""
    assert not settings.settings_file.exists()


async def test_the_command_palette_runs_every_screen_action_by_name(engine, settings):
    app = MullamaApp(settings, engine=engine)
    async with app.run_test(size=SIZE) as pilot:
        titles = {c.title for c in app.get_system_commands(app.screen)}
        assert {"Load model", "Unload", "Pull", "Chat", "Go to Models"} <= titles
        await pilot.press("ctrl+p")
        await pilot.pause(0.2)
        await pilot.press(*"Load model")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, PickDialog), what="load picker")
        await pilot.press("escape")
        await pilot.press("f3")
        await wait_for(pilot, lambda: app.current_mode == "chat", what="chat")
        titles = {c.title for c in app.get_system_commands(app.screen)}
        assert {"New chat", "Options", "Delete chat", "Model"} <= titles
