"""Chat's conversations at 80x24 and 120x40: search, rename, export, import, copy, and what a
reply shows while it waits for its model.

The app runs over a real LocalEngine (its store empty: nothing here generates) except where a
reply's events must be held one by one; the real model's replies are in the slow tests below.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from textual.widgets import Input, ListView

from mullama.engine.api import Done, Started, TextDelta
from mullama.engine.local import LocalEngine
from mullama.tui import conversation_io
from mullama.tui.app import MullamaApp
from mullama.tui.conversations import Conversation, ConversationStore, Turn
from mullama.tui.widgets.chat_message import ChatMessage
from mullama.tui.widgets.conversation_dialogs import CodeBlockPicker, ExportDialog
from mullama.tui.widgets.dialogs import AskDialog, ConfirmDialog

from .conftest import wait_for
from .fake_engine import FakeEngine

SIZES = pytest.mark.parametrize("size", [(80, 24), (120, 40)], ids=["80x24", "120x40"])
CODE = "Two ways:\n\n```python\nprint('hello')\n```\n\nor:\n\n```sh\necho hello\necho again\n```\n"


@pytest.fixture
async def store_engine(settings):
    engine = LocalEngine(settings)
    yield engine
    await engine.close()


def save_three(settings) -> ConversationStore:
    store = ConversationStore(settings.conversations_dir)
    for title, question, answer in (
        ("Why is the sky blue?", "Why is the sky blue?", "Rayleigh scattering."),
        ("Packing list", "What to pack for the Andes?", "Warm layers and a llama-wool hat."),
        ("Say hello", "Say hello in code", CODE),
    ):
        store.save(
            Conversation(
                title=title,
                model="gemma",
                turns=[Turn("user", question), Turn("assistant", answer, stats="9 tokens")],
            )
        )
    return store  # "Say hello" is the newest: Chat opens it


def listed_titles(app) -> list[str]:
    view = app.screen.query_one("#conversations", ListView)
    return [str(item.query_one("Label").content) for item in view.children]


def last_view(app) -> ChatMessage | None:
    views = app.screen.query(ChatMessage)
    return views.last() if views and views.last().turn.role == "assistant" else None


def notified(app, words: str, severity: str | None = None) -> bool:
    return any(
        words in n.message and (severity is None or n.severity == severity)
        for n in app._notifications
    )


async def palette(pilot, command: str) -> None:
    """Run ``command`` from the command palette (ctrl+p), as a user would."""
    from textual.command import CommandPalette

    await pilot.press("ctrl+p")
    await wait_for(pilot, lambda: isinstance(pilot.app.screen, CommandPalette), what="palette")
    pilot.app.screen.query_one(Input).value = command
    await wait_for(
        pilot,
        lambda: any(
            command in str(o.prompt) for o in pilot.app.screen.query("CommandList").first().options
        ),
        what=f"palette hit {command!r}",
    )
    await pilot.press("down", "enter")  # the best hit (the list opens on the input)


async def opened(pilot, app, screen_type):
    await wait_for(pilot, lambda: isinstance(app.screen, screen_type), what=screen_type.__name__)
    return app.screen


@SIZES
async def test_search_filters_by_title_and_text(store_engine, settings, size):
    save_three(settings)
    app = MullamaApp(settings, engine=store_engine, mode="chat")
    async with app.run_test(size=size) as pilot:
        await wait_for(pilot, lambda: len(listed_titles(app)) == 3, what="listed")
        await pilot.press("ctrl+f")
        search = app.screen.query_one("#conv-search", Input)
        assert app.focused is search
        await pilot.press(*"andes")  # only in a message, not a title
        await wait_for(pilot, lambda: listed_titles(app) == ["Packing list"], what="filtered")
        assert app.screen.query_one("#sidebar").border_title == "Conversations · 1 of 3"
        await pilot.press("enter", "enter")  # to the match, and open it
        await wait_for(pilot, lambda: app.screen.current.title == "Packing list", what="opened")
        await pilot.press("ctrl+f", *" zebra")
        await wait_for(pilot, lambda: listed_titles(app) == [], what="nothing listed")
        assert app.screen.query_one("#conv-no-match").display
        await pilot.press("escape")  # clears the search and goes back to the prompt
        await wait_for(pilot, lambda: len(listed_titles(app)) == 3, what="all listed again")
        assert not search.display and app.focused is app.screen.query_one("#prompt")
        await palette(pilot, "Search conversations")
        await wait_for(pilot, lambda: app.focused is search, what="search from the palette")
        await pilot.press(*"rayleigh")
        await wait_for(pilot, lambda: listed_titles(app) == ["Why is the sky blue?"], what="hit")


@SIZES
async def test_rename_persists_on_disk(store_engine, settings, size):
    store = save_three(settings)
    app = MullamaApp(settings, engine=store_engine, mode="chat")
    async with app.run_test(size=size) as pilot:
        await wait_for(pilot, lambda: len(listed_titles(app)) == 3, what="listed")
        await pilot.press("ctrl+r")
        dialog = await opened(pilot, app, AskDialog)
        assert dialog.query_one(Input).value == "Say hello"
        await pilot.press(*"Greetings in [b]code[/b]", "enter")
        await wait_for(pilot, lambda: "Greetings in [b]code[/b]" in listed_titles(app), what="ok")
        assert str(app.screen.query_one("#chat-title").render()) == "Greetings in [b]code[/b]"
        await pilot.press("ctrl+r")
        await opened(pilot, app, AskDialog)
        await pilot.press("escape")  # cancelled: the name stays
        await pilot.pause()
        await pilot.press("ctrl+l", "down", "r")  # from the list: the highlighted one
        dialog = await opened(pilot, app, AskDialog)
        assert dialog.query_one(Input).value == "Packing list"
        await pilot.press(*"Andes trip", "enter")
        await wait_for(pilot, lambda: "Andes trip" in listed_titles(app), what="renamed")
        assert app.screen.current.title == "Andes trip"
    titles = sorted(c.title for c in store.list())
    assert titles == ["Andes trip", "Greetings in [b]code[/b]", "Why is the sky blue?"]
    app = MullamaApp(settings, engine=store_engine, mode="chat")  # and after a restart
    async with app.run_test(size=size) as pilot:
        await wait_for(pilot, lambda: len(listed_titles(app)) == 3, what="listed")
        assert listed_titles(app)[:2] == ["Andes trip", "Greetings in [b]code[/b]"]


@SIZES
async def test_export_markdown_and_json(store_engine, settings, size, tmp_path, monkeypatch):
    save_three(settings)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    app = MullamaApp(settings, engine=store_engine, mode="chat")
    async with app.run_test(size=size) as pilot:
        await wait_for(pilot, lambda: len(listed_titles(app)) == 3, what="listed")
        await pilot.press("ctrl+s")
        dialog = await opened(pilot, app, ExportDialog)
        assert dialog.query_one("#export-path", Input).value == str(work / "say-hello.md")
        await pilot.press("enter")
        await wait_for(pilot, lambda: notified(app, str(work / "say-hello.md")), what="written")
        markdown = (work / "say-hello.md").read_text()
        assert markdown == conversation_io.to_markdown(app.screen.current)
        assert "## You\n\nSay hello in code\n" in markdown and CODE.strip() in markdown
        # JSON from the palette; the format switch renames the default file
        await palette(pilot, "Export conversation as JSON")
        dialog = await opened(pilot, app, ExportDialog)
        assert dialog.query_one("#export-path", Input).value == str(work / "say-hello.json")
        dialog.query_one("#format-markdown").value = True
        await wait_for(
            pilot,
            lambda: dialog.query_one("#export-path", Input).value.endswith("say-hello.md"),
            what="suffix follows the format",
        )
        dialog.query_one("#format-json").value = True
        await pilot.press("enter")
        await wait_for(pilot, lambda: (work / "say-hello.json").exists(), what="json written")
        document = json.loads((work / "say-hello.json").read_text())
        assert document["conversation"] == app.screen.current.to_dict()
        # again: the existing file is only replaced when the user says so
        (work / "say-hello.json").write_text("mine")
        await palette(pilot, "Export conversation as JSON")
        await opened(pilot, app, ExportDialog)
        await pilot.press("enter")
        await opened(pilot, app, ConfirmDialog)
        await pilot.press("n")
        await pilot.pause(0.2)
        assert (work / "say-hello.json").read_text() == "mine"
        # a folder that does not exist: a clear error, nothing written
        await pilot.press("ctrl+s")
        dialog = await opened(pilot, app, ExportDialog)
        dialog.query_one("#export-path", Input).value = str(work / "nope" / "x.md")
        await pilot.press("enter")
        await wait_for(
            pilot, lambda: notified(app, f"no folder {work / 'nope'}", "error"), what="error"
        )
    assert sorted(p.name for p in work.iterdir()) == ["say-hello.json", "say-hello.md"]


@SIZES
async def test_json_round_trips_through_import(store_engine, settings, size, tmp_path):
    store = save_three(settings)
    before = {c.id: c for c in store.list()}
    exported = tmp_path / "hello.json"
    app = MullamaApp(settings, engine=store_engine, mode="chat")
    async with app.run_test(size=size) as pilot:
        await wait_for(pilot, lambda: len(listed_titles(app)) == 3, what="listed")
        original = app.screen.current
        await palette(pilot, "Export conversation as JSON")
        dialog = await opened(pilot, app, ExportDialog)
        dialog.query_one("#export-path", Input).value = str(exported)
        await pilot.press("enter")
        await wait_for(pilot, exported.exists, what="exported")
        await pilot.press("ctrl+d")
        await opened(pilot, app, ConfirmDialog)
        await pilot.press("y")
        await wait_for(pilot, lambda: len(listed_titles(app)) == 2, what="deleted")
        await palette(pilot, "Import conversation")
        dialog = await opened(pilot, app, AskDialog)
        dialog.query_one(Input).value = str(exported)
        await pilot.press("enter")
        await wait_for(pilot, lambda: len(listed_titles(app)) == 3, what="imported")
        assert notified(app, "“Say hello”, 2 messages")
        current = app.screen.current
        assert (current.id, current.title, current.turns) == (
            original.id,
            original.title,
            original.turns,
        )
        assert [m.turn.content for m in app.screen.query(ChatMessage)] == [
            "Say hello in code",
            CODE,
        ]
        # importing it again while it is here makes a copy beside it
        await pilot.press("ctrl+l", "i")
        dialog = await opened(pilot, app, AskDialog)
        dialog.query_one(Input).value = str(exported)
        await pilot.press("enter")
        await wait_for(pilot, lambda: len(listed_titles(app)) == 4, what="copy imported")
        copy_id = app.screen.current.id
        assert copy_id != original.id
    after = {c.id: c for c in store.list()}
    assert set(after) == set(before) | {copy_id}
    assert after[original.id].turns == before[original.id].turns


@SIZES
async def test_a_bad_import_errors_and_changes_nothing(store_engine, settings, size, tmp_path):
    store = save_three(settings)
    files_before = {p.name: p.read_bytes() for p in settings.conversations_dir.iterdir()}
    good_turn = {"role": "user", "content": "hi"}
    bad = {
        "broken.json": '{"format": "mullama-conversation", "version": 1, "conversation": {',
        "robot.json": json.dumps({"turns": [good_turn, {"role": "robot", "content": "beep"}]}),
        "options.json": json.dumps({"turns": [good_turn], "top_p": 7}),
    }
    for name, text in bad.items():
        (tmp_path / name).write_text(text)
    app = MullamaApp(settings, engine=store_engine, mode="chat")
    async with app.run_test(size=size) as pilot:
        await wait_for(pilot, lambda: len(listed_titles(app)) == 3, what="listed")
        for name, words in (
            ("broken.json", "not JSON (line 1"),
            ("robot.json", "`$.turns[1].role`"),
            ("options.json", "top p must be between 0 and 1"),
            ("missing.json", "no such file"),
        ):
            await palette(pilot, "Import conversation")
            dialog = await opened(pilot, app, AskDialog)
            dialog.query_one(Input).value = str(tmp_path / name)
            await pilot.press("enter")
            await wait_for(pilot, lambda words=words: notified(app, words, "error"), what=words)
            assert any(str(tmp_path / name) in n.message for n in app._notifications)
        assert len(listed_titles(app)) == 3 and app.screen.current.title == "Say hello"
    assert {p.name: p.read_bytes() for p in settings.conversations_dir.iterdir()} == files_before
    assert len(store.list()) == 3


@SIZES
async def test_copy_the_last_reply_and_its_code_blocks(store_engine, settings, size):
    save_three(settings)
    app = MullamaApp(settings, engine=store_engine, mode="chat")
    async with app.run_test(size=size) as pilot:
        await wait_for(pilot, lambda: len(listed_titles(app)) == 3, what="listed")
        await pilot.press("ctrl+y")
        assert app.clipboard == CODE
        assert notified(app, f"The last reply ({len(CODE)} characters)")
        await pilot.press("ctrl+g")  # two blocks: a picker, the last one first in line
        await opened(pilot, app, CodeBlockPicker)
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.clipboard == "echo hello\necho again\n", what="last")
        assert notified(app, "The sh code block (2 lines)")
        await pilot.press("ctrl+g")
        await opened(pilot, app, CodeBlockPicker)
        await pilot.press("up", "enter")
        await wait_for(pilot, lambda: app.clipboard == "print('hello')\n", what="first block")
        await pilot.press("ctrl+l", "down", "enter")  # "Packing list": no code in its reply
        await wait_for(pilot, lambda: app.screen.current.title == "Packing list", what="opened")
        await pilot.press("ctrl+g")
        await wait_for(pilot, lambda: notified(app, "has no code block", "warning"), what="none")
        assert app.clipboard == "print('hello')\n"
        await palette(pilot, "Copy a code block")
        await pilot.pause(0.2)
        assert app.clipboard == "print('hello')\n"
        await pilot.press("ctrl+n", "ctrl+y")  # a new chat has no reply to copy
        await wait_for(pilot, lambda: notified(app, "no reply to copy yet", "warning"), what="no")


class SteppedEngine(FakeEngine):
    """Holds a reply before ``Started`` (the model loading) and before its first token."""

    def __init__(self) -> None:
        super().__init__()
        self.admit = asyncio.Event()
        self.speak = asyncio.Event()

    async def chat(self, request):
        await self.admit.wait()
        yield Started(5)
        await self.speak.wait()
        yield TextDelta("Hello there.")
        yield Done("stop")


@SIZES
@pytest.mark.parametrize(
    ("model", "waiting"),
    [
        ("llama3.2:1b", "Loading model llama3.2:1b…"),  # not among the engine's loaded models
        ("gemma3:270m", "Waiting for gemma3:270m…"),  # loaded already
    ],
)
async def test_a_reply_says_what_it_waits_for_until_its_first_token(settings, size, model, waiting):
    engine = SteppedEngine()
    app = MullamaApp(settings, engine=engine, mode="chat", model=model)
    async with app.run_test(size=size) as pilot:
        await wait_for(pilot, lambda: app.screen.current.model == model, what="model")
        prompt = app.screen.query_one("#prompt", Input)
        prompt.value = "Hi"
        await pilot.press("enter")
        await wait_for(pilot, lambda: last_view(app) is not None, what="reply bubble")
        reply = last_view(app)
        await wait_for(pilot, lambda: reply.status == waiting, what=waiting)
        engine.admit.set()  # the engine admitted it: loaded, prompt being read
        await wait_for(pilot, lambda: reply.status == "Thinking…", what="admitted")
        assert reply.turn.content == ""
        engine.speak.set()
        await wait_for(pilot, lambda: reply.turn.stats, what="finished")
        assert reply.status == "" and reply.turn.content == "Hello there."


class Watched:
    """The real engine, noting what the reply on screen says as each of its events arrives."""

    def __init__(self, engine, app_box: list) -> None:
        self.engine, self.app_box = engine, app_box
        self.seen: list[tuple[str, str, bool]] = []  # event, reply's status, model loaded

    def __getattr__(self, name):
        return getattr(self.engine, name)

    async def chat(self, request):
        async for event in self.engine.chat(request):
            reply = self.app_box[0].screen.query(ChatMessage).last()
            loaded = bool(await self.engine.running_models())
            self.seen.append((type(event).__name__, reply.status, loaded))
            yield event


@pytest.mark.slow
async def test_real_reply_shows_the_model_loading_then_exports(engine, settings, tmp_path):
    app_box: list = []
    watched = Watched(engine, app_box)
    app = MullamaApp(settings, engine=watched, mode="chat", model="gemma")
    app_box.append(app)
    app.prefs.max_tokens = 16
    exported = tmp_path / "reply.md"
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.screen.current.model == "gemma", what="model")
        assert await engine.running_models() == []  # the first reply loads the model
        prompt = app.screen.query_one("#prompt", Input)
        prompt.value = "Say hello."
        await pilot.press("enter")
        await wait_for(pilot, lambda: last_view(app) is not None, what="reply bubble")
        reply = last_view(app)
        await wait_for(pilot, lambda: reply.turn.stats, what="reply finished")
        assert reply.turn.content.strip() and reply.status == ""
        kinds = [kind for kind, _, _ in watched.seen]
        assert kinds[0] == "Started" and kinds[1] in ("TextDelta", "ThinkingDelta")
        # while it loaded (until Started) the bubble said so; then it waited for the first token
        assert watched.seen[0][1] == "Loading model gemma…" and watched.seen[0][2]
        assert watched.seen[1][1] == "Thinking…"
        # a second reply: the model is loaded, the bubble only waits for it
        watched.seen.clear()
        prompt.value = "Again."
        await pilot.press("enter")
        await wait_for(pilot, lambda: last_view(app) is not reply, what="second bubble")
        second = last_view(app)
        await wait_for(pilot, lambda: second.turn.stats, what="second reply")
        assert watched.seen[0][:2] == ("Started", "Waiting for gemma…")
        await pilot.press("ctrl+s")
        dialog = await opened(pilot, app, ExportDialog)
        dialog.query_one("#export-path", Input).value = str(exported)
        await pilot.press("enter")
        await wait_for(pilot, exported.exists, what="exported")
        await pilot.press("ctrl+y")
        assert app.clipboard == second.turn.content
    markdown = exported.read_text()
    assert markdown.startswith("# Say hello.\n")
    said = reply.turn.content.strip("\n")  # leading spaces kept: they may make a code block
    assert f"## You\n\nSay hello.\n\n## gemma\n\n{said}\n" in markdown
    assert f"*{second.turn.stats}*" in markdown
