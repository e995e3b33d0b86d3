"""How `mullama run` writes a streamed reply: thinking dimmed or hidden, then the answer."""

from __future__ import annotations

import io

from mullama.cli.reply import Renderer


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def render(out, hide: bool = False, calls=()) -> str:
    renderer = Renderer(hide_thinking=hide, out=out)
    renderer.thinking("Let me ")
    renderer.thinking("think.")
    renderer.text("Paris")
    renderer.text(".")
    renderer.finish(list(calls))
    return out.getvalue()


def test_plain_output_marks_thinking_like_ollama():
    assert render(io.StringIO()) == "Thinking...\nLet me think.\n...done thinking.\n\nParis.\n"


def test_hidden_thinking():
    assert render(io.StringIO(), hide=True) == "Paris.\n"


def test_thinking_is_dimmed_on_a_terminal(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    out = render(Terminal())
    assert out.startswith("\x1b[2mThinking...\n\x1b[0m\x1b[2mLet me \x1b[0m")
    assert out.endswith("Paris.\n") and "\x1b[2m\n...done thinking.\n\n\x1b[0m" in out
    monkeypatch.setenv("NO_COLOR", "1")
    assert "\x1b[" not in render(Terminal())


def test_tool_calls_are_listed_after_the_text():
    out = render(
        io.StringIO(),
        hide=True,
        calls=[{"id": "c1", "name": "weather", "arguments": '{"city": "Paris"}'}],
    )
    assert out == 'Paris.\n[tool call] weather({"city": "Paris"})\n'
