"""Streaming one chat reply to the terminal: the renderer, the spinner, the collected result and
``--verbose`` statistics. Used by ``run`` (one prompt) and the REPL (each turn)."""

from __future__ import annotations

import asyncio
import itertools
import os
import sys

from mullama.engine.api import (
    ChatRequest,
    Done,
    Engine,
    Started,
    TextDelta,
    ThinkingDelta,
    ToolCallDelta,
)

from .output import is_tty


def parse_think(value: str | None):
    return {None: None, "true": True, "false": False}.get(value, value)


class Renderer:
    """Writes a reply as it streams: thinking dimmed (or hidden), then the answer."""

    def __init__(self, hide_thinking: bool = False, out=None):
        self.out = out or sys.stdout
        self.hide_thinking = hide_thinking
        self.styled = is_tty(self.out) and not os.environ.get("NO_COLOR")
        self.thinking_open = False
        self.at_line_start = True

    def _write(self, text: str, dim: bool = False) -> None:
        if not text:
            return
        self.out.write(f"\033[2m{text}\033[0m" if dim and self.styled else text)
        self.out.flush()
        self.at_line_start = text.endswith("\n")

    def thinking(self, text: str) -> None:
        if self.hide_thinking:
            return
        if not self.thinking_open:
            self.thinking_open = True
            self._write("Thinking...\n", dim=True)
        self._write(text, dim=True)

    def text(self, text: str) -> None:
        self._close_thinking()
        self._write(text)

    def _close_thinking(self) -> None:
        if self.thinking_open:
            self.thinking_open = False
            self._write(("" if self.at_line_start else "\n") + "...done thinking.\n\n", dim=True)

    def finish(self, tool_calls: list[dict]) -> None:
        self._close_thinking()
        for call in tool_calls:
            self._write(
                ("" if self.at_line_start else "\n") + f"[tool call] {call['name']}"
                f"({call['arguments']})\n"
            )
        if not self.at_line_start:
            self._write("\n")


class Spinner:
    """A spinner on stderr until the first token arrives (loading a model takes a while)."""

    FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"

    def __init__(self) -> None:
        self.task = asyncio.ensure_future(self._spin()) if is_tty(sys.stderr) else None

    async def _spin(self) -> None:
        for i in itertools.count():
            sys.stderr.write(f"\r{self.FRAMES[i % len(self.FRAMES)]} ")
            sys.stderr.flush()
            await asyncio.sleep(0.1)

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            self.task = None
            sys.stderr.write("\r  \r")
            sys.stderr.flush()


async def stream_reply(engine: Engine, request: ChatRequest, renderer: Renderer | None) -> dict:
    """Stream one reply through ``renderer`` (None: silently); the collected result."""
    text: list[str] = []
    thinking: list[str] = []
    calls: dict[int, dict[str, str]] = {}
    done: Done | None = None
    spinner = Spinner() if renderer else None
    try:
        async for event in engine.chat(request):
            if isinstance(event, Started):
                continue  # admitted: the spinner turns on through the prefill
            if spinner:
                spinner.stop()
            _collect(event, renderer, text, thinking, calls)
            if isinstance(event, Done):
                done = event
    finally:
        if spinner:
            spinner.stop()
    tool_calls = [calls[i] for i in sorted(calls)]
    if renderer:
        renderer.finish(tool_calls)
    return {
        "model": done.model if done else request.model,
        "response": "".join(text),
        "thinking": "".join(thinking),
        "tool_calls": tool_calls,
        "done_reason": done.finish_reason if done else "",
        "usage": {
            "prompt_tokens": done.usage.prompt_tokens if done else 0,
            "completion_tokens": done.usage.completion_tokens if done else 0,
        },
        "timings": vars(done.timings).copy() if done else {},
    }


def _collect(event, renderer: Renderer | None, text: list, thinking: list, calls: dict) -> None:
    if isinstance(event, TextDelta):
        text.append(event.text)
        if renderer:
            renderer.text(event.text)
    elif isinstance(event, ThinkingDelta):
        thinking.append(event.text)
        if renderer:
            renderer.thinking(event.text)
    elif isinstance(event, ToolCallDelta):
        call = calls.setdefault(event.index, {"id": "", "name": "", "arguments": ""})
        call["id"] = event.id or call["id"]
        call["name"] = event.name or call["name"]
        call["arguments"] += event.arguments


def print_stats(result: dict, wall: float) -> None:
    t, u = result["timings"], result["usage"]

    def rate(n: int, ns: int) -> str:
        return f"{n / (ns / 1e9):.2f} tokens/s" if ns else "-"

    lines = [
        f"total duration:       {t.get('total_ns', 0) / 1e9:.3f}s (wall {wall:.3f}s)",
        f"load duration:        {t.get('load_ns', 0) / 1e9:.3f}s",
        f"prompt eval count:    {u['prompt_tokens']} token(s)",
        f"prompt eval duration: {t.get('prompt_eval_ns', 0) / 1e9:.3f}s",
        f"prompt eval rate:     {rate(u['prompt_tokens'], t.get('prompt_eval_ns', 0))}",
        f"eval count:           {u['completion_tokens']} token(s)",
        f"eval duration:        {t.get('eval_ns', 0) / 1e9:.3f}s",
        f"eval rate:            {rate(u['completion_tokens'], t.get('eval_ns', 0))}",
    ]
    print("\n".join(lines), file=sys.stderr, flush=True)
