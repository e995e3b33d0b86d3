"""Conversation exports and imports: Markdown, JSON round trips, every kind of bad file."""

from __future__ import annotations

import json
import os

import pytest

from mullama.tui import conversation_io as io
from mullama.tui.conversations import Conversation, Turn


def sample() -> Conversation:
    return Conversation(
        title="Why is the sky blue?",
        model="gemma",
        system="Be brief.\nUse metaphors.",
        temperature=0.3,
        max_tokens=64,
        think=True,
        turns=[
            Turn("user", "Why is the sky blue?"),
            Turn("assistant", "Rayleigh scattering.\n", "Physics, keep it short.", "3 tokens"),
            Turn("user", "And sunsets?"),
            Turn("assistant", "Longer path: ```\nred\n```"),
        ],
    )


def test_markdown_has_the_title_settings_and_every_turn():
    text = io.to_markdown(sample())
    assert text.startswith("# Why is the sky blue?\n\n- Model: `gemma`\n- Updated: ")
    assert "**System prompt**\n\n> Be brief.\n> Use metaphors.\n" in text
    turns = text.split("\n## ")[1:]
    assert [t.split("\n")[0] for t in turns] == ["You", "gemma", "You", "gemma"]
    assert turns[0] == "You\n\nWhy is the sky blue?\n"
    assert turns[1] == (
        "gemma\n\n> **Thinking**\n>\n> Physics, keep it short.\n\nRayleigh scattering.\n\n"
        "*3 tokens*\n"
    )
    assert turns[3] == "gemma\n\nLonger path: ```\nred\n```\n"


def test_json_export_round_trips():
    conversation = sample()
    text = io.to_json(conversation)
    document = json.loads(text)
    assert document["format"] == "mullama-conversation" and document["version"] == 1
    back = io.parse_export(text)
    assert back.to_dict() == {**conversation.to_dict(), "updated": back.updated}
    # a bare conversation file (what the store keeps) imports too
    assert io.parse_export(json.dumps(conversation.to_dict())).turns == conversation.turns


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("{not json", "not JSON (line 1, column 2"),
        ("[1, 2]", "the file holds no JSON object"),
        ('{"format": "other", "conversation": {}}', "not a Mullama conversation export"),
        ('{"format": "mullama-conversation", "version": 9, "conversation": {}}', "version 9"),
        (
            '{"format": "mullama-conversation", "version": 1, "conversation": {"title": "x"}}',
            "missing required field `turns`",
        ),
        ('{"turns": [{"role": "robot", "content": "hi"}]}', "`$.turns[0].role`"),
        ('{"turns": [{"role": "user", "content": 5}]}', "Expected `str`, got `int`"),
        ('{"turns": [], "top_p": 7}', "top p must be between 0 and 1"),
        ('{"turns": [], "title": null}', "`$.title`"),
    ],
)
def test_a_bad_import_says_why(text, words):
    with pytest.raises(io.BadImport) as caught:
        io.parse_export(text)
    assert words in str(caught.value)


def test_an_id_that_could_leave_the_store_is_replaced():
    text = json.dumps({"id": "../../etc/passwd", "turns": []})
    assert io.parse_export(text).id != "../../etc/passwd"
    assert io.parse_export(json.dumps({"id": "abc123", "turns": []})).id == "abc123"


def test_read_export_names_what_is_wrong_with_the_file(tmp_path):
    with pytest.raises(io.BadImport, match="no such file"):
        io.read_export(tmp_path / "missing.json")
    with pytest.raises(io.BadImport, match="a folder"):
        io.read_export(tmp_path)
    (tmp_path / "binary.json").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(io.BadImport, match="not UTF-8"):
        io.read_export(tmp_path / "binary.json")


def test_write_atomic_leaves_no_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "out.md"
    io.write_atomic(target, "first")

    def broken_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError):
        io.write_atomic(target, "second")
    assert target.read_text() == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.md"]  # no temporary left


def test_default_export_path_and_slug(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    conversation = Conversation(title="Why is the sky blue? (part 2)")
    assert io.slug(conversation.title) == "why-is-the-sky-blue-part-2"
    assert io.slug("¿?") == "conversation"
    fallback = tmp_path / "data" / "exports"
    path = io.default_export_path(conversation, "json", fallback)
    assert path == tmp_path / "why-is-the-sky-blue-part-2.json"
    monkeypatch.chdir("/")  # a served TUI's directory: not where exports should go
    assert io.default_export_path(conversation, "markdown", fallback).parent == fallback


def test_code_blocks_in_order_with_their_language():
    text = "a\n\n```python\nprint(1)\n```\n\nb\n\n    indented\n\n~~~sh title\nls\n~~~\n"
    assert io.code_blocks(text) == [("python", "print(1)\n"), ("", "indented\n"), ("sh", "ls\n")]
    assert io.code_blocks("no code `inline` only") == []


def test_search_matches_every_word_in_title_or_text():
    conversation = sample()
    assert conversation.matches("")
    assert conversation.matches("SKY sunsets")
    assert not conversation.matches("sky zebra")
    assert not conversation.matches("physics")  # thinking is not searched, only what was said
