"""Splitting a model's reasoning from its answer while streaming.

Markers come from the model's THINKING directive or its family's defaults. A
marker may arrive split over several pieces; a piece that could be the start of
a marker is held back until it is known, so a partial marker is never emitted
as text. Thinking starts only before any answer text (a literal "<think>" later
in an answer stays text); a model that never closes its thinking ends cleanly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..modelfile.spec import ModelfileSpec

# families whose models think between these markers by default
THINKING_FAMILIES = ("deepseek-r1", "deepseek2", "qwq", "qwen3", "gpt-oss", "phi4-reasoning")
DEFAULT_START, DEFAULT_END = "<think>", "</think>"


@dataclass
class ThinkingConfig:
    start: str = DEFAULT_START
    end: str = DEFAULT_END
    enabled: bool = False


def thinking_config(spec: ModelfileSpec | None, family: str, template: str) -> ThinkingConfig:
    """From the THINKING directive, else the family or template."""
    declared = dict(getattr(spec, "thinking", None) or {}) if spec is not None else {}
    start = declared.get("start") or DEFAULT_START
    end = declared.get("end") or DEFAULT_END
    if "enabled" in declared:
        enabled = bool(declared["enabled"])
    else:
        name = (family or "").lower()
        enabled = (
            any(f in name for f in THINKING_FAMILIES)
            or start in (template or "")
            or bool(declared.get("start"))
        )
    return ThinkingConfig(start, end, enabled)


def _held_prefix(buf: str, marker: str) -> int:
    """Length of the longest suffix of ``buf`` that is a proper prefix of ``marker``."""
    for n in range(min(len(marker) - 1, len(buf)), 0, -1):
        if buf.endswith(marker[:n]):
            return n
    return 0


class ThinkingSplitter:
    """Feed text pieces; get ``("thinking" | "text", piece)`` parts back in order."""

    def __init__(
        self, config: ThinkingConfig, opened_in_prompt: bool = False, emit_thinking: bool = True
    ) -> None:
        self.config = config
        self.emit_thinking = emit_thinking
        self.state = "thinking" if opened_in_prompt else "start"  # start -> thinking -> text
        self._held = ""
        self.thinking_chars = 0

    def feed(self, piece: str) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        buf = self._held + piece
        self._held = ""
        while buf:
            if self.state == "start":
                stripped = buf.lstrip()
                if stripped.startswith(self.config.start):
                    self.state = "thinking"
                    buf = stripped[len(self.config.start) :]
                    continue
                if not stripped or self.config.start.startswith(stripped):
                    self._held = buf  # could still become the start marker
                    return out
                self.state = "text"
            if self.state == "thinking":
                i = buf.find(self.config.end)
                if i != -1:
                    self._thinking(out, buf[:i])
                    self.state = "after"
                    buf = buf[i + len(self.config.end) :]
                    continue
                keep = _held_prefix(buf, self.config.end)
                self._thinking(out, buf[: len(buf) - keep])
                self._held = buf[len(buf) - keep :]
                return out
            if self.state == "after":  # the answer usually follows a blank line
                buf = buf.lstrip()
                if not buf:
                    return out
                self.state = "text"
            out.append(("text", buf))
            return out
        return out

    @property
    def holding(self) -> bool:
        """Whether text is held back (it could be part of a marker)."""
        return bool(self._held)

    def flush(self) -> list[tuple[str, str]]:
        held, self._held = self._held, ""
        if not held:
            return []
        if self.state == "thinking":
            out: list[tuple[str, str]] = []
            self._thinking(out, held)
            return out
        return [("text", held)] if held.strip() or self.state == "text" else []

    def _thinking(self, out: list[tuple[str, str]], text: str) -> None:
        if text:
            self.thinking_chars += len(text)
            if self.emit_thinking:
                out.append(("thinking", text))
