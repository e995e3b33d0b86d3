"""SVG snapshots of Chat's conversation features at 80x24 and 120x40: search, rename, export,
import, the code block picker, a copy's notification, and a reply waiting for its model.

Same rules as test_snapshots.py (a frozen app over the FakeEngine); the behaviours are tested
against a real engine in test_conversations.py and test_chat.py.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from textual.widgets import Input

from mullama.engine.api import Started
from mullama.tui import conversation_io
from mullama.tui.conversations import Conversation, ConversationStore, Turn

from .fake_engine import FakeEngine
from .test_snapshots import make_app, saved_conversation, settle

SIZES = pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])

TWO_BLOCKS = (
    "Two ways:\n\n```python\nprint('hello')\n```\n\nor in the shell:\n\n"
    "```sh\necho hello\necho again\n```\n"
)


def more_conversations(tmp_path) -> None:
    saved_conversation(tmp_path)
    store = ConversationStore(tmp_path / "data" / "conversations")
    store.save(
        Conversation(
            title="Packing list",
            model="gemma3:270m",
            turns=[
                Turn("user", "What should I pack for the Andes?"),
                Turn("assistant", "Warm layers, and a llama-wool hat."),
            ],
        )
    )
    store.save(
        Conversation(
            title="Say hello",
            model="gemma3:270m",
            turns=[Turn("user", "Say hello in code"), Turn("assistant", TWO_BLOCKS)],
        )
    )


class HeldEngine(FakeEngine):
    """A reply that never starts: held before ``Started`` (loading) or after it."""

    def __init__(self, admitted: bool = False) -> None:
        super().__init__()
        self.admitted = admitted

    async def chat(self, request):
        if self.admitted:
            yield Started(12)
        await asyncio.Event().wait()


@SIZES
def test_chat_search_filters_the_list(snap_compare, tmp_path, size):
    more_conversations(tmp_path)
    app = make_app(tmp_path, "chat")
    assert snap_compare(app, terminal_size=size, run_before=settle("ctrl+f", *"llama"))


@SIZES
def test_chat_search_without_a_match(snap_compare, tmp_path, size):
    more_conversations(tmp_path)
    app = make_app(tmp_path, "chat")
    assert snap_compare(app, terminal_size=size, run_before=settle("ctrl+f", *"zebra"))


@SIZES
def test_chat_rename_dialog(snap_compare, tmp_path, size):
    more_conversations(tmp_path)
    app = make_app(tmp_path, "chat")
    assert snap_compare(app, terminal_size=size, run_before=settle("ctrl+r"))


@SIZES
def test_chat_export_dialog(snap_compare, tmp_path, size, monkeypatch):
    more_conversations(tmp_path)
    home = Path("/home/user")  # the default is in the current directory: fixed for the picture
    monkeypatch.setattr(
        conversation_io,
        "default_export_path",
        lambda c, fmt, _: home / (conversation_io.slug(c.title) + conversation_io.SUFFIXES[fmt]),
    )
    app = make_app(tmp_path, "chat")
    assert snap_compare(app, terminal_size=size, run_before=settle("ctrl+s"))


@SIZES
def test_chat_import_dialog(snap_compare, tmp_path, size):
    more_conversations(tmp_path)
    app = make_app(tmp_path, "chat")

    async def run_before(pilot) -> None:  # the palette's way there: test_conversations.py
        await settle()(pilot)
        await pilot.app.screen.run_action("import_conversation")
        await pilot.pause()
        await pilot.press(*"chat.json")
        await pilot.pause(0.3)
        for field in pilot.app.screen.query(Input):
            field.cursor_blink = False
        await pilot.pause(0.2)

    assert snap_compare(app, terminal_size=size, run_before=run_before)


@SIZES
def test_chat_code_block_picker(snap_compare, tmp_path, size):
    more_conversations(tmp_path)
    app = make_app(tmp_path, "chat")
    assert snap_compare(app, terminal_size=size, run_before=settle("ctrl+g"))


def test_chat_copied_reply_notification(snap_compare, tmp_path):
    more_conversations(tmp_path)
    app = make_app(tmp_path, "chat")
    assert snap_compare(app, terminal_size=(80, 24), run_before=settle("ctrl+y"))


@SIZES
def test_chat_reply_waits_for_its_model_to_load(snap_compare, tmp_path, size):
    saved_conversation(tmp_path)  # opens "Haiku about llamas" on llama3.2:1b, not loaded
    app = make_app(tmp_path, "chat", HeldEngine())
    assert snap_compare(app, terminal_size=size, run_before=settle(*"Another one", "enter"))


def test_chat_reply_admitted_before_its_first_token(snap_compare, tmp_path):
    app = make_app(tmp_path, "chat", HeldEngine(admitted=True))
    assert snap_compare(app, terminal_size=(120, 40), run_before=settle(*"Hello", "enter"))
