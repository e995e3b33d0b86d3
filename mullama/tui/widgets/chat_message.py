"""One chat turn on screen; assistant replies stream into Markdown (batched, like oterm)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Collapsible, Label, Markdown
from textual.widgets.markdown import MarkdownStream

from ..conversations import Turn


class ChatMessage(Vertical):
    """A user message or an assistant reply (with its thinking in a collapsible block)."""

    def __init__(self, turn: Turn, author: str):
        super().__init__(classes=f"message -{turn.role}")
        self.turn = turn
        self.author = author
        self._text: MarkdownStream | None = None
        self._thinking: MarkdownStream | None = None

    def compose(self) -> ComposeResult:
        yield Label(self.author, classes="author")
        if self.turn.role == "assistant":
            with Collapsible(title="Thinking", collapsed=True, classes="thinking") as block:
                block.display = bool(self.turn.thinking)
                yield Markdown(self.turn.thinking, classes="thinking-text")
        yield Markdown(self.turn.content, classes="body")
        yield Label(self.turn.stats, classes="stats")

    async def add_text(self, text: str) -> None:
        self.turn.content += text
        if self._text is None:
            self._text = Markdown.get_stream(self.query_one(".body", Markdown))
        await self._text.write(text)

    async def add_thinking(self, text: str) -> None:
        self.turn.thinking += text
        if self._thinking is None:
            block = self.query_one(".thinking", Collapsible)
            block.display = True
            block.collapsed = False
            self._thinking = Markdown.get_stream(self.query_one(".thinking-text", Markdown))
        await self._thinking.write(text)

    async def finish(self, stats: str) -> None:
        """Flush the streams, fold the thinking away and show the reply's numbers."""
        for stream in (self._text, self._thinking):
            if stream is not None:
                await stream.stop()
        self._text = self._thinking = None
        if self.turn.thinking:
            self.query_one(".thinking", Collapsible).collapsed = True
        self.turn.stats = stats
        self.query_one(".stats", Label).update(stats)
        self.set_class(False, "-streaming")
