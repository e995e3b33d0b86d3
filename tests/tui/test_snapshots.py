"""SVG snapshots of every screen and its main states (stored under snapshots/).

The app runs ``frozen`` (no clocks, uptimes or live CPU/RAM numbers) over a FakeEngine so the
pictures are deterministic; the same behaviours run against the real engine in the other tests.
Update them with ``pytest tests/tui/test_snapshots.py --snapshot-update``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Input, TextArea

from mullama.config import load_settings
from mullama.tui.app import MullamaApp
from mullama.tui.conversations import Conversation, ConversationStore, Turn

from .conftest import SIZE
from .fake_engine import FakeEngine

CONFIG_DIR = Path("/home/user/.config/mullama")  # shown on the Settings screen; never written


def make_app(tmp_path, mode: str, engine: FakeEngine | None = None) -> MullamaApp:
    settings = load_settings(
        env={}, config_dir=CONFIG_DIR, data_dir=tmp_path / "data", cache_dir=tmp_path / "cache"
    )
    return MullamaApp(settings, engine=engine or FakeEngine(), mode=mode, frozen=True)


def saved_conversation(tmp_path) -> None:
    conversation = Conversation(title="Why is the sky blue?", model="gemma3:270m")
    conversation.turns = [
        Turn("user", "Why is the sky blue?"),
        Turn(
            "assistant",
            "Because of **Rayleigh scattering**: shorter wavelengths scatter more.",
            thinking="The user asks a physics question. Keep it short.",
            stats="14 tokens · 42.0 tok/s",
        ),
    ]
    ConversationStore(tmp_path / "data" / "conversations").save(conversation)
    ConversationStore(tmp_path / "data" / "conversations").save(
        Conversation(
            title="Haiku about llamas",
            model="llama3.2:1b",
            turns=[Turn("user", "A haiku about llamas")],
        )
    )


def settle(*keys: str):
    async def run_before(pilot) -> None:
        await pilot.pause()
        await pilot.app.workers.wait_for_complete()
        for key in keys:
            await pilot.press(key)
            await pilot.pause()
        await pilot.app.workers.wait_for_complete() if not keys else None
        await pilot.pause(0.3)
        for widget in pilot.app.screen.query("Input, TextArea"):
            if isinstance(widget, (Input, TextArea)):
                widget.cursor_blink = False
        await pilot.pause(0.2)

    return run_before


def test_dashboard(snap_compare, tmp_path):
    assert snap_compare(make_app(tmp_path, "dashboard"), terminal_size=SIZE, run_before=settle())


def test_dashboard_load_dialog(snap_compare, tmp_path):
    assert snap_compare(make_app(tmp_path, "dashboard"), terminal_size=SIZE, run_before=settle("l"))


def test_dashboard_daemon_lost(snap_compare, tmp_path):
    app = make_app(tmp_path, "dashboard")

    async def run_before(pilot) -> None:
        await settle()(pilot)
        app.connection = "lost"
        await pilot.pause(0.2)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_models(snap_compare, tmp_path):
    assert snap_compare(make_app(tmp_path, "models"), terminal_size=SIZE, run_before=settle())


def test_models_at_80x24_shows_every_column(snap_compare, tmp_path):
    app = make_app(tmp_path, "models")
    assert snap_compare(app, terminal_size=(80, 24), run_before=settle())


def test_models_details(snap_compare, tmp_path):
    assert snap_compare(
        make_app(tmp_path, "models"), terminal_size=SIZE, run_before=settle("enter")
    )


def test_models_delete_confirmation(snap_compare, tmp_path):
    assert snap_compare(make_app(tmp_path, "models"), terminal_size=SIZE, run_before=settle("d"))


def test_models_create_dialog(snap_compare, tmp_path):
    assert snap_compare(make_app(tmp_path, "models"), terminal_size=SIZE, run_before=settle("n"))


def test_models_pull_in_progress(snap_compare, tmp_path):
    app = make_app(tmp_path, "models")

    async def run_before(pilot) -> None:
        await settle()(pilot)
        await pilot.press("p")
        await pilot.press(*"llama3.2:1b", "enter")
        await pilot.pause(0.3)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_chat_conversation(snap_compare, tmp_path):
    saved_conversation(tmp_path)
    assert snap_compare(make_app(tmp_path, "chat"), terminal_size=SIZE, run_before=settle())


def test_chat_reply_with_thinking(snap_compare, tmp_path):
    app = make_app(
        tmp_path, "chat", FakeEngine(thinking="Light, air, wavelengths: explain briefly.")
    )

    async def run_before(pilot) -> None:
        await settle()(pilot)
        await pilot.press(*"Why is the sky blue?", "enter")
        await pilot.app.workers.wait_for_complete()
        await settle()(pilot)

    assert snap_compare(app, terminal_size=SIZE, run_before=run_before)


def test_chat_options(snap_compare, tmp_path):
    saved_conversation(tmp_path)
    assert snap_compare(make_app(tmp_path, "chat"), terminal_size=SIZE, run_before=settle("ctrl+o"))


def test_playground(snap_compare, tmp_path):
    assert snap_compare(make_app(tmp_path, "playground"), terminal_size=SIZE, run_before=settle())


def test_settings(snap_compare, tmp_path):
    assert snap_compare(make_app(tmp_path, "settings"), terminal_size=SIZE, run_before=settle())


@pytest.mark.parametrize("theme", ["textual-light", "nord"])
def test_themes(snap_compare, tmp_path, theme):
    app = make_app(tmp_path, "dashboard")
    app.prefs.theme = theme
    assert snap_compare(app, terminal_size=SIZE, run_before=settle())


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_library_registry(snap_compare, tmp_path, size):
    assert snap_compare(make_app(tmp_path, "models"), terminal_size=size, run_before=settle("b"))


def test_library_hub_search(snap_compare, tmp_path):
    app = make_app(tmp_path, "models")
    keys = ("b", "slash", *"qwen", "enter")
    assert snap_compare(app, terminal_size=(120, 40), run_before=settle(*keys))


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_library_quant_picker(snap_compare, tmp_path, size):
    app = make_app(tmp_path, "models")
    keys = ("b", "slash", *"qwen", "enter", "enter")
    assert snap_compare(app, terminal_size=size, run_before=settle(*keys))


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_library_two_pulls(snap_compare, tmp_path, size):
    app = make_app(tmp_path, "models")

    async def run_before(pilot) -> None:
        await settle("b")(pilot)
        await pilot.app.workers.wait_for_complete()  # the registry listed before the keys
        await settle("enter", "down", "enter")(pilot)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_help(snap_compare, tmp_path, size):
    app = make_app(tmp_path, "chat")
    assert snap_compare(app, terminal_size=size, run_before=settle("f9"))


def test_dashboard_at_80x24_shows_every_column(snap_compare, tmp_path):
    app = make_app(tmp_path, "dashboard")
    assert snap_compare(app, terminal_size=(80, 24), run_before=settle())


def test_chat_options_at_80x24(snap_compare, tmp_path):
    saved_conversation(tmp_path)
    app = make_app(tmp_path, "chat")
    app.prefs.top_p = 0.5  # shown as coming from Settings; the rest from the model or engine
    assert snap_compare(app, terminal_size=(80, 24), run_before=settle("ctrl+o"))


def test_settings_at_80x24_with_a_default_model(snap_compare, tmp_path):
    app = make_app(tmp_path, "settings")
    app.prefs.default_model = "gemma3:270m"
    assert snap_compare(app, terminal_size=(80, 24), run_before=settle())


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_daemon_dashboard_with_its_log_pane(snap_compare, tmp_path, size):
    import logging

    from mullama.tui.widgets.log_pane import LogFeed

    feed = LogFeed()
    feed.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))  # no clock
    logger = logging.getLogger("mullama.daemon.snapshot")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(feed)
    app = make_app(tmp_path, "dashboard")
    app.log_feed = feed

    async def run_before(pilot) -> None:
        logger.info("loading gemma3:270m")
        await settle()(pilot)
        app.connection = "serving"
        app.screen.refresh_status()
        for path in ("/api/tags", "/v1/models", "/api/ps"):
            logger.info("GET %s 200 512B 1.2ms 127.0.0.1:50312", path)
        logger.warning("a client went away mid-stream")
        await settle()(pilot)

    try:
        assert snap_compare(app, terminal_size=size, run_before=run_before)
    finally:
        logger.removeHandler(feed)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
def test_chat_with_an_image_attached(snap_compare, tmp_path, size):
    """``/image PATH`` attached a picture: named above the prompt, and beside the author of a
    message sent with one."""
    import base64

    conversation = Conversation(title="What is in this photo?", model="gemma3:270m")
    conversation.turns = [
        Turn("user", "What is in this photo?", images=["AAAA"], image_names=["beach.jpg"]),
        Turn("assistant", "A beach at sunset, with two people walking.", stats="9 tokens"),
    ]
    ConversationStore(tmp_path / "data" / "conversations").save(conversation)
    picture = tmp_path / "cat.png"
    picture.write_bytes(base64.b64decode("iVBORw0KGgo="))

    async def run_before(pilot) -> None:
        await settle()(pilot)
        prompt = pilot.app.screen.query_one("#prompt", Input)
        prompt.value = "/image cat.png"
        prompt.focus()
        pilot.app.screen.attach(str(picture), prompt)
        prompt.value = "And this one?"
        await pilot.pause()

    assert snap_compare(make_app(tmp_path, "chat"), terminal_size=size, run_before=run_before)
