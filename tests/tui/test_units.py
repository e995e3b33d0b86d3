"""Conversations, preferences and Playground requests: the TUI's non-widget parts."""

from __future__ import annotations

import json
import shlex

import tomlkit

from mullama.tui import playground_requests as reqs
from mullama.tui.conversations import Conversation, ConversationStore, Turn
from mullama.tui.preferences import Preferences, load_preferences, save_preferences


def test_conversations_round_trip_and_order(tmp_path):
    store = ConversationStore(tmp_path / "conversations")
    older = Conversation(model="gemma", system="Be brief.")
    older.turns += [
        Turn("user", "Hello   there\nfriend"),
        Turn("assistant", "Hi!", "hmm", "3 tokens"),
    ]
    older.retitle()
    store.save(older)
    newer = Conversation(model="gemma")
    store.save(newer)
    (tmp_path / "conversations" / "broken.json").write_text("{not json")
    listed = store.list()
    assert [c.id for c in listed] == [newer.id, older.id]
    assert listed[1] == older
    assert older.title == "Hello there friend"
    assert [m.role for m in older.messages()] == ["system", "user", "assistant"]
    store.delete(older.id)
    assert [c.id for c in store.list()] == [newer.id]


def test_preferences_keep_other_tables_and_comments(tmp_path):
    path = tmp_path / "settings.toml"
    path.write_text("# mine\n[daemon]\nport = 9000\n")
    save_preferences(path, Preferences(theme="nord", temperature=0.2, max_tokens=64))
    doc = tomlkit.parse(path.read_text())
    assert "# mine" in path.read_text() and doc["daemon"]["port"] == 9000
    prefs = load_preferences(path)
    assert (prefs.theme, prefs.temperature, prefs.max_tokens, prefs.top_p) == (
        "nord",
        0.2,
        64,
        None,
    )
    assert prefs.options(top_p=0.5).temperature == 0.2 and prefs.options(top_p=0.5).top_p == 0.5


def test_preferences_ignore_wrong_types(tmp_path):
    path = tmp_path / "settings.toml"
    path.write_text('[tui]\ntemperature = "hot"\ntop_k = true\nmax_tokens = 12\n')
    prefs = load_preferences(path)
    assert (prefs.temperature, prefs.top_k, prefs.max_tokens) == (None, None, 12)
    assert load_preferences(tmp_path / "missing.toml") == Preferences()
    for broken in ("[tui\ntheme = 1", 'tui = "not a table"', "\udcff"):
        path.write_text(broken, errors="surrogateescape")
        assert load_preferences(path) == Preferences(), broken


def test_curl_commands_are_runnable_shell():
    for endpoint in reqs.ENDPOINTS:
        body = reqs.body_text(endpoint, "gemma", True)
        command = reqs.curl(endpoint, "http://127.0.0.1:8080", body, "secret")
        words = shlex.split(command.replace("\\\n", " "))
        assert words[0] == "curl" and f"http://127.0.0.1:8080{endpoint.path}" in words
        assert "secret" not in command  # the key is referenced, never shown
        if endpoint.body is not None:
            assert json.loads(words[words.index("-d") + 1])["model"] == "gemma"
    anthropic = reqs.find("anthropic", "/v1/messages")
    assert "x-api-key: $MULLAMA_API_KEY" in reqs.curl(anthropic, "http://h", "{}", "k")


async def test_the_arrow_keys_move_between_the_confirmation_buttons():
    from textual.app import App

    from mullama.tui.widgets.dialogs import ConfirmDialog

    answers: list[bool | None] = []

    class Host(App[None]):
        def on_mount(self) -> None:
            self.push_screen(ConfirmDialog("Delete it?", "Delete"), answers.append)

    app = Host()
    async with app.run_test() as pilot:
        await pilot.pause()
        assert app.focused is not None and app.focused.id == "no"  # the safe choice first
        await pilot.press("left")
        assert app.focused.id == "yes"
        await pilot.press("right")
        assert app.focused.id == "no"
        await pilot.press("left", "enter")
        await pilot.pause()
    assert answers == [True]
