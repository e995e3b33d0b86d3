"""The help screen (? or F9, and the palette), the footer at 80 columns, the Dashboard at 80
columns, effective defaults in the Options dialog and Settings, and the daemon's log pane.

These run over the FakeEngine (fixed models, instant replies): what they check is the TUI's
own behaviour. The same features against the real engine and a real daemon are in
test_help_real.py and tests/cli/test_serve_dashboard.py.
"""

from __future__ import annotations

import logging
import re
import threading
from datetime import UTC, datetime, timedelta

import pytest
from textual.binding import Binding
from textual.widgets import DataTable, Input, Static, TextArea
from textual.widgets._footer import FooterKey

import mullama.tui.screens.chat as chat_module
from mullama.tui.app import PAGES
from mullama.tui.effective import placeholders
from mullama.tui.screens.help import HelpScreen, key_text, screen_class
from mullama.tui.widgets.conversation_options import ConversationOptions
from mullama.tui.widgets.log_pane import LogFeed, LogPane
from tests.tui import fake_engine
from tests.tui.test_snapshots import make_app

from .conftest import wait_for

SIZES = [(80, 24), (120, 40)]


def help_text(app) -> str:
    return "\n".join(str(s.render()) for s in app.screen.query(".help-keys").results(Static))


def sections(app) -> dict[str, str]:
    return {
        str(s.border_title).removesuffix(" (this screen)"): str(s.render())
        for s in app.screen.query(".help-keys").results(Static)
    }


def described(section: str) -> dict[str, set[str]]:
    """Each key of a help section -> what it does ("d / Del  Delete": two keys); a key with
    two actions (the Models screen's b: Library, and Local from the library) has both."""
    found: dict[str, set[str]] = {}
    for line in section.splitlines():
        keys, what = re.split(r"\s{2,}", line.strip(), maxsplit=1)
        for key in keys.split(" / "):
            found.setdefault(key, set()).add(what)
    return found


async def settle(pilot) -> None:
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


# ---------------------------------------------------------------- help


@pytest.mark.parametrize("size", SIZES)
async def test_help_lists_every_binding_of_the_app_and_of_every_screen(tmp_path, size):
    app = make_app(tmp_path, "dashboard")
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), what="help")
        found = sections(app)
        assert list(found)[:2] == ["Dashboard", "Everywhere"]  # this screen first
        assert set(found) == {"Everywhere", *(title for _, title, _ in PAGES)}
        for mode, title, _ in PAGES:
            keys = described(found[title])
            for binding in Binding.make_bindings(screen_class(mode).BINDINGS):
                assert isinstance(binding, Binding)
                assert binding.description in keys.get(key_text(binding.key), ()), (title, binding)
        everywhere = described(found["Everywhere"])
        assert (everywhere["ctrl+q"], everywhere["F3"], everywhere["?"]) == (
            {"Quit"},
            {"Chat"},
            {"Keys"},
        )
        assert everywhere["F9"] == {"Keys"} and "ctrl+p" in everywhere
        await pilot.press("question_mark")  # ? closes it again
        await wait_for(pilot, lambda: not isinstance(app.screen, HelpScreen), what="closed")


async def test_help_shows_a_binding_a_screen_gains_later(tmp_path, monkeypatch):
    class ChatWithExport(chat_module.ChatScreen):
        BINDINGS = [Binding("ctrl+e", "export", "Export chat")]

    monkeypatch.setattr(chat_module, "ChatScreen", ChatWithExport)
    app = make_app(tmp_path, "models")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("f9")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), what="help")
        chat = sections(app)["Chat"]
        keys = described(chat)
        assert keys["ctrl+e"] == {"Export chat"} and keys["ctrl+n"] == {
            "New chat"
        }  # new, inherited
        assert list(sections(app))[0] == "Models"
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, HelpScreen), what="closed")


@pytest.mark.parametrize("size", SIZES)
async def test_question_mark_is_typed_into_inputs_and_f9_still_opens_help(tmp_path, size):
    app = make_app(tmp_path, "chat")
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        prompt = app.screen.query_one("#prompt", Input)
        assert prompt.has_focus
        await pilot.press("W", "h", "y", "question_mark")
        assert prompt.value == "Why?"
        assert not isinstance(app.screen, HelpScreen)
        await pilot.press("f9")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), what="help by F9")
        await pilot.press("escape")
        await pilot.press("f5")
        await settle(pilot)
        system = app.screen.query_one("#set-system_prompt", TextArea)
        system.focus()
        await pilot.press("question_mark")
        assert system.text == "?" and not isinstance(app.screen, HelpScreen)


async def test_the_palette_finds_help_by_either_name(tmp_path):
    app = make_app(tmp_path, "settings")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Help: keys of every screen" in titles
        assert "Keys" not in titles  # Textual's own key panel would be a second, lesser help
        for query in ("help", "keys"):
            await pilot.press("ctrl+p")
            await pilot.press(*query)
            await pilot.pause(0.3)
            await pilot.press("enter")
            await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), what=query)
            assert "Settings" in sections(app)
            await pilot.press("escape")
            await wait_for(pilot, lambda: not isinstance(app.screen, HelpScreen), what="closed")


# ---------------------------------------------------------------- footer and 80 columns


@pytest.mark.parametrize("mode", [mode for mode, _, _ in PAGES])
async def test_the_footer_fits_80_columns_and_keeps_help_and_quit(tmp_path, mode):
    app = make_app(tmp_path, mode)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        keys = list(app.screen.query(FooterKey).results(FooterKey))
        assert keys and all(k.region.right <= 80 and k.region.width > 0 for k in keys)
        actions = [k.action for k in keys]
        assert actions[-2:] == ["help", "quit"]
        assert actions[0] != "help"  # the screen's own keys come first, as many as fit


async def test_the_footer_shows_every_key_at_120_columns(tmp_path):
    app = make_app(tmp_path, "chat")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        shown = {k.action for k in app.screen.query(FooterKey).results(FooterKey)}
        bindings = Binding.make_bindings(chat_module.ChatScreen.BINDINGS)
        wanted = {b.action for b in bindings if b.show}  # the others: help and the palette
        assert wanted <= shown and {"help", "quit", "command_palette"} <= shown


async def test_the_dashboard_table_fits_80_columns_with_real_numbers(tmp_path, monkeypatch):
    expires = (datetime.now(UTC) + timedelta(minutes=4, seconds=50)).isoformat()
    loaded = fake_engine.LOADED[0]
    monkeypatch.setattr(loaded, "expires_at", expires)
    monkeypatch.setattr(loaded, "tokens_generated", 123_456)
    monkeypatch.setattr(loaded, "context_length", 131_072)
    app = make_app(tmp_path, "dashboard")
    app.frozen = False  # times and numbers as a user sees them
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.screen.query_one("#loaded", DataTable)
        await wait_for(pilot, lambda: table.row_count == 1, what="loaded row")
        await pilot.pause()
        row = [str(c) for c in table.get_row_at(0)]
        assert row[-1].startswith("in 4m") and "123,456" in row
        assert table.virtual_size.width <= table.scrollable_content_region.width
        await pilot.resize_terminal(120, 40)
        await pilot.pause(0.2)
        headers = [str(c.label) for c in table.columns.values()]
        assert "Slots busy" in headers and table.row_count == 1


# ---------------------------------------------------------------- effective defaults


def test_placeholders_say_what_applies_and_where_it_comes_from():
    from mullama.tui.preferences import Preferences

    shown = placeholders({"temperature": 0, "num_predict": 64})
    assert shown == {
        "temperature": "0 (model default)",
        "top_p": "0.9 (engine default)",
        "top_k": "40 (engine default)",
        "max_tokens": "64 (model default)",
    }
    prefs = Preferences(top_p=0.5)
    assert placeholders({}, prefs)["top_p"] == "0.5 (from Settings)"
    assert placeholders({})["max_tokens"] == "no limit (engine default)"
    assert placeholders({"num_predict": -2})["max_tokens"] == "fill the context (model default)"
    assert placeholders({}, cap=256)["max_tokens"] == "256 (server cap)"


@pytest.mark.parametrize("size", SIZES)
async def test_options_dialog_shows_the_effective_defaults(tmp_path, size):
    app = make_app(tmp_path, "chat")
    app.prefs.top_p = 0.5
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        await pilot.press("ctrl+o")
        await wait_for(pilot, lambda: isinstance(app.screen, ConversationOptions), what="dialog")
        fields = {n: app.screen.query_one(f"#opt-{n}", Input) for n in ("temperature", "top_p")}
        # (not settle: the Chat's worker waits for the dialog to close)
        await wait_for(pilot, lambda: "(" in fields["top_p"].placeholder, what="placeholders")
        assert fields["temperature"].placeholder == "0.7 (model default)"  # the fake's PARAMETER
        assert fields["top_p"].placeholder == "0.5 (from Settings)"
        max_tokens = app.screen.query_one("#opt-max_tokens", Input)
        assert max_tokens.placeholder == "no limit (engine default)"


@pytest.mark.parametrize("size", SIZES)
async def test_settings_show_the_default_models_effective_values(tmp_path, size):
    app = make_app(tmp_path, "settings")
    app.prefs.default_model = "gemma3:270m"
    async with app.run_test(size=size) as pilot:
        temperature = app.screen.query_one("#set-temperature", Input)
        await wait_for(pilot, lambda: "(" in temperature.placeholder, what="shown")
        assert temperature.placeholder == "0.7 (model default)"
        assert app.screen.query_one("#set-top_k", Input).placeholder == "40 (engine default)"


# ---------------------------------------------------------------- the daemon's log pane


def feed_on(logger: logging.Logger, max_lines: int = 1000) -> LogFeed:
    feed = LogFeed(max_lines)
    logger.addHandler(feed)
    logger.setLevel(logging.INFO)
    return feed


@pytest.mark.parametrize("size", SIZES)
async def test_the_log_pane_shows_records_logged_after_mount_from_any_thread(tmp_path, size):
    logger = logging.getLogger("mullama.test.logpane")
    feed = feed_on(logger)
    try:
        logger.info("before the app")
        app = make_app(tmp_path, "dashboard")
        app.log_feed = feed
        async with app.run_test(size=size) as pilot:
            await settle(pilot)
            pane = app.screen.query_one("#daemon-log", LogPane)
            assert pane.display and pane.region.height >= 5  # 3 lines at least, at 80x24
            assert "before the app" in pane.text
            logger.warning("on the app's thread [b]not markup[/b]")
            worker = threading.Thread(target=logger.info, args=("from a runner thread",))
            worker.start()
            worker.join()
            await wait_for(pilot, lambda: "runner thread" in pane.text, what="lines shown")
            words = pane.text.split()  # rows wrap at 80 columns
            assert " ".join(words[words.index("WARNING") :]) == (
                "WARNING mullama.test.logpane: on the app's thread [b]not markup[/b] "
                f"{words[-7]} INFO mullama.test.logpane: from a runner thread"
            )
            assert all(s.cell_length <= pane.scrollable_content_region.width for s in pane.lines)
            keys = {k.action for k in app.screen.query(FooterKey).results(FooterKey)}
            assert "toggle_log" in keys
            await pilot.press("L")
            await pilot.pause()
            assert not pane.display and app.screen.query_one("#actions").display
            await pilot.press("L")
            await pilot.pause()
            assert pane.display
    finally:
        logger.removeHandler(feed)


async def test_the_log_pane_keeps_a_bounded_tail_and_follows_it(tmp_path):
    logger = logging.getLogger("mullama.test.logtail")
    feed = feed_on(logger, max_lines=50)
    try:
        app = make_app(tmp_path, "dashboard")
        app.log_feed = feed
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot)
            pane = app.screen.query_one("#daemon-log", LogPane)
            for i in range(120):
                logger.info("line %d", i)
            await wait_for(pilot, lambda: pane.text.endswith("line 119"), what="tail")
            await pilot.pause(0.2)
            assert len(pane.lines) == 50 and len(feed.lines) == 50
            assert pane.text.splitlines()[0].endswith("line 70")
            assert pane.is_vertical_scroll_end  # it follows the newest line
    finally:
        logger.removeHandler(feed)


async def test_without_a_daemon_there_is_no_log_pane_or_key(tmp_path):
    app = make_app(tmp_path, "dashboard")
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert not app.screen.query("#daemon-log")
        keys = {k.action for k in app.screen.query(FooterKey).results(FooterKey)}
        assert "toggle_log" not in keys
        await pilot.press("L")  # nothing happens
        assert app.screen.query_one("#actions").display
