"""From raw generated text to typed events: thinking, answer text and tool calls."""

from __future__ import annotations

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

    def feed(self, delta: TextDelta) -> list[TextEvent]:
        if self.thinking is None and self.tools is None:
            return [delta]
        parts = self.thinking.feed(delta.text) if self.thinking else [("text", delta.text)]
        events = self._translate(parts)
        if delta.logprobs and events and isinstance(events[-1], TextDelta):
            events[-1].logprobs = delta.logprobs
        return events

    def flush(self) -> list[TextEvent]:
        parts = self.thinking.flush() if self.thinking else []
        events = self._translate(parts)
        if self.tools is not None:
            events += self._tool_events(self.tools.flush())
        return events

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
