"""Output helpers: rich for people, plain text and JSON for programs.

Colour and styling only when the stream is a terminal (and ``NO_COLOR`` is unset).
Errors go to stderr as one line, then the next step on its own line.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from mullama.humanize import human_duration, human_size  # noqa: F401  (re-exported)


class CliError(Exception):
    """A failure the CLI reports as ``Error: message`` plus an optional next step."""

    def __init__(self, message: str, hint: str = "", code: int = 1):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.code = code


def is_tty(stream: TextIO | None = None) -> bool:
    stream = stream or sys.stdout
    return hasattr(stream, "isatty") and stream.isatty()


def console(stderr: bool = False):
    """A rich Console on stdout (or stderr) that styles only on a terminal."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    styled = is_tty(stream) and not os.environ.get("NO_COLOR")
    return Console(
        file=stream,
        force_terminal=styled if styled else None,
        no_color=not styled,
        highlight=False,
        soft_wrap=not is_tty(stream),
    )


def info(message: str) -> None:
    """A status line for people, on stderr so stdout stays clean for scripts."""
    print(message, file=sys.stderr, flush=True)


def error(message: str, hint: str = "") -> None:
    print(f"Error: {message}", file=sys.stderr)
    if hint:
        print(hint, file=sys.stderr)
    sys.stderr.flush()


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")
    sys.stdout.flush()


def _parse_time(iso: str) -> datetime | None:
    try:
        stamp = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def ago(iso: str) -> str:
    """'3 minutes ago' for an ISO 8601 time ('' when unknown)."""
    stamp = _parse_time(iso)
    if stamp is None:
        return ""
    return human_duration((datetime.now(UTC) - stamp).total_seconds()) + " ago"


def until(iso: str) -> str:
    """'in 4m 59s' for a future ISO 8601 time, 'Forever' for '' ."""
    if not iso:
        return "Forever"
    stamp = _parse_time(iso)
    if stamp is None:
        return iso
    left = (stamp - datetime.now(UTC)).total_seconds()
    return f"in {human_duration(left)}" if left > 0 else "expiring"


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    """Columns aligned with spaces, like `ollama list`; the header bold on a terminal."""
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells: list[str]) -> str:
        return "    ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()

    bold = is_tty() and not os.environ.get("NO_COLOR")
    head = line(headers)
    print(f"\033[1m{head}\033[0m" if bold else head)
    for row in rows:
        print(line(row))
    sys.stdout.flush()


def plain(obj: Any) -> Any:
    """A wire dataclass as JSON-ready data for --json output (no type tags)."""
    import msgspec

    return msgspec.to_builtins(obj)
