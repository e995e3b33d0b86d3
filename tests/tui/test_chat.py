"""Chat against the real engine (embedded): streaming, Esc stops, conversations on disk."""

from __future__ import annotations

import json

import pytest
from textual.widgets import Input, ListView, Markdown, Select

from mullama.tui.app import MullamaApp
from mullama.tui.widgets.chat_message import ChatMessage

from .conftest import SIZE, wait_for

pytestmark = pytest.mark.slow


async def send(pilot, text: str) -> None:
    prompt = pilot.app.screen.query_one("#prompt", Input)
    prompt.value = text
    prompt.focus()
    await pilot.press("enter")


async def model_picked(pilot, model: str = "gemma") -> None:
    picker = pilot.app.screen.query_one("#model-picker", Select)
    await wait_for(pilot, lambda: picker.value == model, what="model picked")


def last_reply(app) -> ChatMessage:
    return app.screen.query(ChatMessage).last()


async def test_chat_streams_a_reply_and_saves_the_conversation(engine, settings):
    app = MullamaApp(settings, engine=engine, mode="chat", model="gemma")
    app.prefs.max_tokens = 24
    async with app.run_test(size=SIZE) as pilot:
        await model_picked(pilot)
        await send(pilot, "Say hello.")
        reply = last_reply(app)
        assert reply.turn.role == "assistant"
        await wait_for(pilot, lambda: reply.turn.stats, what="reply finished")
        assert reply.turn.content.strip()
        assert "tokens" in reply.turn.stats and "tok/s" in reply.turn.stats
        body = reply.query_one(".body", Markdown)
        assert body.source.strip() == reply.turn.content.strip()
        assert app.screen.query_one("#prompt", Input).value == ""
        await pilot.pause(0.2)
    files = list(settings.conversations_dir.glob("*.json"))
    assert len(files) == 1
    saved = json.loads(files[0].read_text())
    assert saved["model"] == "gemma" and saved["title"] == "Say hello."
    assert [t["role"] for t in saved["turns"]] == ["user", "assistant"]
    assert saved["turns"][1]["content"] == reply.turn.content


async def test_escape_stops_the_reply(engine, settings):
    app = MullamaApp(settings, engine=engine, mode="chat", model="gemma")
    app.prefs.max_tokens = 1500
    async with app.run_test(size=SIZE) as pilot:
        await model_picked(pilot)
        await send(pilot, "Count from one to five hundred, one number per line.")
        reply = last_reply(app)
        await wait_for(pilot, lambda: len(reply.turn.content) > 5, what="first tokens")
        await pilot.press("escape")
        await wait_for(pilot, lambda: reply.turn.stats, what="reply stopped")
        assert reply.turn.stats == "stopped"
        assert not app.screen.replying()
        stopped_at = reply.turn.content
        await pilot.pause(0.5)
        assert reply.turn.content == stopped_at  # nothing arrives after the stop
        status = await engine.status()
        assert status.requests_active == 0
        # the conversation can go on after a stop
        await send(pilot, "Thanks.")
        await wait_for(pilot, lambda: last_reply(app) is not reply, what="second reply")
        await pilot.press("escape")
        await wait_for(pilot, lambda: last_reply(app).turn.stats, what="second reply stopped")


async def test_conversations_are_listed_reopened_and_deleted(engine, settings):
    app = MullamaApp(settings, engine=engine, mode="chat", model="gemma")
    app.prefs.max_tokens = 8
    async with app.run_test(size=SIZE) as pilot:
        await model_picked(pilot)
        await send(pilot, "First chat")
        await wait_for(pilot, lambda: last_reply(app).turn.stats, what="first reply")
        await pilot.press("ctrl+n")
        await send(pilot, "Second chat")
        await wait_for(pilot, lambda: last_reply(app).turn.stats, what="second reply")
        listing = app.screen.query_one("#conversations", ListView)
        titles = [str(item.query_one("Label").content) for item in listing.children]
        assert titles == ["Second chat", "First chat"]
        await pilot.press("ctrl+l", "down", "enter")
        await wait_for(pilot, lambda: app.screen.current.title == "First chat", what="reopened")
        assert [m.turn.content for m in app.screen.query(ChatMessage)][0] == "First chat"
        await pilot.press("ctrl+d")
        await pilot.press("y")
        await wait_for(pilot, lambda: len(app.screen.conversations) == 1, what="deleted")
    assert [
        json.loads(f.read_text())["title"] for f in settings.conversations_dir.glob("*.json")
    ] == ["Second chat"]


async def test_text_that_looks_like_markup_is_shown_as_typed(engine, settings):
    app = MullamaApp(settings, engine=engine, mode="chat", model="gemma")
    app.prefs.max_tokens = 4
    async with app.run_test(size=SIZE) as pilot:
        await model_picked(pilot)
        await send(pilot, "What does [/INST] mean? [b]x[/b]")
        await wait_for(pilot, lambda: last_reply(app).turn.stats, what="reply")
        title = str(app.screen.query_one("#chat-title").render())
        assert title == "What does [/INST] mean? [b]x[/b]"
        listing = app.screen.query_one("#conversations", ListView)
        assert str(listing.children[0].query_one("Label").render()) == title
        await pilot.press("ctrl+d")  # the confirmation quotes it too
        await wait_for(
            pilot,
            lambda: "[/INST]" in str(app.screen.query_one(".dialog-question").render()),
            what="confirmation",
        )
        await pilot.press("escape")


async def test_a_conversation_deleted_while_it_replies_stays_deleted(engine, settings):
    app = MullamaApp(settings, engine=engine, mode="chat", model="gemma")
    app.prefs.max_tokens = 1500
    async with app.run_test(size=SIZE) as pilot:
        await model_picked(pilot)
        await send(pilot, "Count from one to five hundred.")
        reply = last_reply(app)
        await wait_for(pilot, lambda: len(reply.turn.content) > 5, what="first tokens")
        await pilot.press("ctrl+d")
        await pilot.press("y")
        await wait_for(pilot, lambda: not app.screen.replying(), what="reply stopped")
        await pilot.pause(0.3)
    assert list(settings.conversations_dir.glob("*.json")) == []


async def test_a_new_chat_while_a_reply_streams_stops_it_and_saves_the_first(engine, settings):
    app = MullamaApp(settings, engine=engine, mode="chat", model="gemma")
    app.prefs.max_tokens = 1500
    async with app.run_test(size=SIZE) as pilot:
        await model_picked(pilot)
        await send(pilot, "Count from one to five hundred.")
        reply = last_reply(app)
        await wait_for(pilot, lambda: len(reply.turn.content) > 5, what="first tokens")
        await pilot.press("ctrl+n")  # used to crash: the reply finished into a removed widget
        await wait_for(pilot, lambda: not app.screen.replying(), what="reply stopped")
        await wait_for(pilot, lambda: reply.turn.stats == "stopped", what="stopped stats")
        assert app.is_running and app.screen.current is not None
        assert app.screen.current.turns == []  # the new, empty conversation is shown
        app.prefs.max_tokens = 8
        await send(pilot, "Hello")  # and the app goes on working
        await wait_for(pilot, lambda: last_reply(app).turn.stats, what="second reply")
        await pilot.pause(0.2)
    saved = [json.loads(f.read_text()) for f in settings.conversations_dir.glob("*.json")]
    first = next(c for c in saved if c["title"] == "Count from one to five hundred.")
    assert first["turns"][1]["content"] == reply.turn.content and first["turns"][1]["stats"]


async def test_conversation_options_refuse_impossible_values(engine, settings):
    from mullama.tui.widgets.conversation_options import ConversationOptions

    app = MullamaApp(settings, engine=engine, mode="chat", model="gemma")
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+o")
        await wait_for(pilot, lambda: isinstance(app.screen, ConversationOptions), what="options")
        for field, value, words in (
            ("top_p", "7", "top p must be between 0 and 1"),
            ("max_tokens", "0", "max tokens must be at least 1"),
            ("temperature", "-", "temperature must be a number"),
        ):
            app.screen.query_one(f"#opt-{field}", Input).value = value
            await pilot.press("ctrl+s")
            await wait_for(
                pilot,
                lambda words=words: any(words in n.message for n in app._notifications),
                what=words,
            )
            assert isinstance(app.screen, ConversationOptions)  # still open, nothing saved
            app.screen.query_one(f"#opt-{field}", Input).value = ""
        app.screen.query_one("#opt-top_p", Input).value = "0.5"
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not isinstance(app.screen, ConversationOptions), what="saved")
        assert app.screen.current.top_p == 0.5


async def test_new_chat_reuses_an_empty_one_and_picking_a_model_returns_to_the_prompt(
    engine, settings
):
    app = MullamaApp(settings, engine=engine, mode="chat")
    async with app.run_test(size=SIZE) as pilot:
        picker = app.screen.query_one("#model-picker", Select)
        await wait_for(pilot, lambda: len(picker._options) > 1, what="models listed")
        await pilot.press("ctrl+n", "ctrl+n", "ctrl+n")
        assert len(app.screen.conversations) == 1  # still the one empty conversation
        await pilot.press("ctrl+t")
        await wait_for(pilot, lambda: picker.expanded, what="model list open")
        await pilot.press("enter")
        await wait_for(
            pilot,
            lambda: app.focused is app.screen.query_one("#prompt", Input),
            what="focus back on the prompt",
        )
        assert app.screen.current.model == picker.value


async def test_closing_the_model_list_with_escape_returns_to_the_prompt(engine, settings):
    app = MullamaApp(settings, engine=engine, mode="chat")
    async with app.run_test(size=SIZE) as pilot:
        picker = app.screen.query_one("#model-picker", Select)
        prompt = app.screen.query_one("#prompt", Input)
        await wait_for(pilot, lambda: len(picker._options) > 1, what="models listed")
        chosen = picker.value
        await pilot.press("ctrl+t")
        await wait_for(pilot, lambda: picker.expanded, what="model list open")
        await pilot.press("escape")
        await wait_for(pilot, lambda: not picker.expanded, what="model list closed")
        await pilot.pause()
        await pilot.press("h", "i")  # typing goes to the prompt, not to the closed list
        assert prompt.value == "hi" and app.focused is prompt
        assert picker.value == chosen  # Esc picked nothing
