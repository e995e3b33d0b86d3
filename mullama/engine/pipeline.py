"""From raw generated text to typed events: thinking, answer text and tool calls."""

from __future__ import annotations

from typing import Any

from .api import TextDelta, ThinkingDelta, ToolCallDelta
from .reasoning import ThinkingSplitter
from .tools import ParsedCall, ToolCallParser, ToolPart

TextEvent = TextDelta | ThinkingDelta | ToolCallDelta


class OutputPipeline:
    """Runs each text piece through the thinking splitter, then the tool-call parser."""

    def __init__(
        self, thinking: ThinkingSplitter | None = None, tools: ToolCallParser | None = None
    ) -> None:
        self.thinking = thinking
        self.tools = tools
        self.tool_calls = 0
        self.thinking_pieces = 0
        self.answer_started = False
        # logprob entries of text fed but not yet out as answer text (None: none were asked for)
        self._logprobs: list[dict[str, Any]] | None = None

    def feed(self, delta: TextDelta) -> list[TextEvent]:
        if self.thinking is None and self.tools is None:
            return [delta]
        if delta.logprobs is not None:
            self._logprobs = (self._logprobs or []) + delta.logprobs
        parts = self.thinking.feed(delta.text) if self.thinking else [("text", delta.text)]
        return self._with_logprobs(self._translate(parts))

    def flush(self) -> list[TextEvent]:
        parts = self.thinking.flush() if self.thinking else []
        events = self._translate(parts)
        if self.tools is not None:
            events += self._tool_events(self.tools.flush())
        return self._with_logprobs(events, final=True)

    def _with_logprobs(self, events: list[TextEvent], final: bool = False) -> list[TextEvent]:
        """The entries of the tokens fed so far go with the answer text they became (the last
        text event); those of text that became reasoning or a tool call are dropped."""
        if self._logprobs is None:
            return events
        texts = [e for e in events if isinstance(e, TextDelta) and e.text]
        for e in texts:
            e.logprobs = []
        if texts:
            texts[-1].logprobs, self._logprobs = self._logprobs, []
        elif final or (events and not self._holding) or self._reasoning:
            self._logprobs = []  # their text went to reasoning or a call, nothing is waiting
        return events

    @property
    def _reasoning(self) -> bool:
        """Inside the reasoning, or just after it: all text fed so far was reasoning."""
        return self.thinking is not None and self.thinking.state in ("thinking", "after")

    @property
    def _holding(self) -> bool:
        """Whether the splitter or the parser holds text back (it may still become answer)."""
        return bool(
            (self.thinking is not None and self.thinking.holding)
            or (self.tools is not None and self.tools.holding)
        )

    @property
    def in_thinking(self) -> bool:
        return (
            self.thinking is not None
            and self.thinking.state in ("start", "thinking")
            and self.thinking.thinking_chars > 0
        )

    def _translate(self, parts: list[tuple[str, str]]) -> list[TextEvent]:
        events: list[TextEvent] = []
        for kind, text in parts:
            if kind == "thinking":
                self.thinking_pieces += 1
                events.append(ThinkingDelta(text))
            elif self.tools is not None:
                events += self._tool_events(self.tools.feed(text))
            else:
                events.append(TextDelta(text))
        return events

    def _tool_events(self, parts: list[ToolPart]) -> list[TextEvent]:
        events: list[TextEvent] = []
        for _kind, value in parts:
            if isinstance(value, ParsedCall):  # kind "call"
                call = value
                index = self.tool_calls
                self.tool_calls += 1
                events.append(ToolCallDelta(index, id=call.id, name=call.name, arguments=""))
                events.append(ToolCallDelta(index, arguments=call.arguments))
            elif value:
                events.append(TextDelta(value))
        return events
