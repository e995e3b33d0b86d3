"""One chat turn on screen; assistant replies stream into Markdown (batched, like oterm).

Until its first token a reply shows what it waits for (``set_status``: loading the model,
reading the prompt), so a slow first reply is never an empty bubble.

Deltas are collected as they arrive and handed to the Markdown stream at most
``FLUSHES_PER_SECOND`` times a second, so a fast engine never makes the screen re-render per
token, and the event loop stays free to read the next tokens.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.timer import Timer
from textual.widgets import Collapsible, Label, Markdown
from textual.widgets.markdown import MarkdownStream

from ..conversations import Turn

FLUSHES_PER_SECOND = 20


class ChatMessage(Vertical):
    """A user message or an assistant reply (with its thinking in a collapsible block)."""

    def __init__(self, turn: Turn, author: str):
        super().__init__(classes=f"message -{turn.role}")
        self.turn = turn
        self.author = author
        self._streams: dict[str, MarkdownStream] = {}
        self._pending: dict[str, list[str]] = {"body": [], "thinking-text": []}
        self._flusher: Timer | None = None

    def compose(self) -> ComposeResult:
        yield Label(self.author, classes="author")
        status = Label("", classes="status", markup=False)
        status.display = False
        yield status
        if self.turn.role == "assistant":
            with Collapsible(title="Thinking", collapsed=True, classes="thinking") as block:
                block.display = bool(self.turn.thinking)
                yield Markdown(self.turn.thinking, classes="thinking-text")
        yield Markdown(self.turn.content, classes="body")
        yield Label(self.turn.stats, classes="stats")

    @property
    def status(self) -> str:
        """What the reply waits for ("" once text arrives)."""
        labels = self.query(".status").results(Label)
        return next((str(label.content) for label in labels if label.display), "")

    def set_status(self, text: str) -> None:
        for label in self.query(".status").results(Label):
            label.update(text)
            label.display = bool(text)

    def add_text(self, text: str) -> None:
        if not self.turn.content:
            self.set_status("")
        self.turn.content += text
        self._queue("body", text)

    def add_thinking(self, text: str) -> None:
        if not self.turn.thinking:
            self.set_status("")
            block = self.query_one(".thinking", Collapsible)
            block.display = True
            block.collapsed = False
        self.turn.thinking += text
        self._queue("thinking-text", text)

    def _queue(self, target: str, text: str) -> None:
        self._pending[target].append(text)
        if self._flusher is None:
            self._flusher = self.set_interval(1 / FLUSHES_PER_SECOND, self._flush)

    async def _flush(self) -> None:
        if not self.is_attached:
            return
        for target, pieces in self._pending.items():
            if pieces:
                text = "".join(pieces)
                pieces.clear()
                if target not in self._streams:
                    self._streams[target] = Markdown.get_stream(
                        self.query_one(f".{target}", Markdown)
                    )
                await self._streams[target].write(text)

    async def finish(self, stats: str) -> None:
        """Flush what is left, fold the thinking away and show the reply's numbers."""
        self.turn.stats = stats
        if self._flusher is not None:
            self._flusher.stop()
            self._flusher = None
        if not self.is_attached:  # taken off the screen (another conversation was opened)
            self._streams.clear()
            return
        await self._flush()
        for stream in self._streams.values():
            await stream.stop()
        self._streams.clear()
        # query, not query_one: the view may have been removed while the streams stopped
        if self.turn.thinking:
            for block in self.query(".thinking").results(Collapsible):
                block.collapsed = True
        self.set_status("")
        for label in self.query(".stats").results(Label):
            label.update(stats)
        self.set_class(False, "-streaming")
