"""Conversations to and from files: Markdown and JSON exports, JSON imports, code blocks.

A JSON export is ``{"format": "mullama-conversation", "version": 1, "conversation": {...}}``;
the conversation inside has the shape of the files under ``settings.conversations_dir``, and a
bare copy of one of those files imports too. An import is checked whole before anything is saved.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Literal

import msgspec

from ..engine.api import SamplingOptions
from .conversations import Conversation, Turn
from .preferences import check_options

FORMAT = "mullama-conversation"
VERSION = 1
MAX_IMPORT_BYTES = 64 * 1024 * 1024
SUFFIXES = {"markdown": ".md", "json": ".json"}
_SAFE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # an id names a file in the store


class BadImport(ValueError):
    """The file is not a conversation Mullama can import; the message says why."""


class _TurnFile(msgspec.Struct):
    role: Literal["user", "assistant"]
    content: str = ""
    thinking: str = ""
    stats: str = ""


class _ConversationFile(msgspec.Struct):
    turns: list[_TurnFile]
    id: str = ""
    title: str = "New chat"
    model: str = ""
    system: str = ""
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    think: bool | None = None
    updated: float = 0.0


# ---------------------------------------------------------------- export


def to_markdown(conversation: Conversation) -> str:
    """The conversation as a Markdown document: a heading, its settings, then every turn."""
    c = conversation
    lines = [f"# {c.title}", ""]
    if c.model:
        lines.append(f"- Model: `{c.model}`")
    lines.append(f"- Updated: {time.strftime('%Y-%m-%d %H:%M', time.localtime(c.updated))}")
    if c.system.strip():
        lines += ["", "**System prompt**", "", *_quoted(c.system)]
    for turn in c.turns:
        author = "You" if turn.role == "user" else (c.model or "Assistant")
        lines += ["", f"## {author}", ""]
        if turn.thinking:
            lines += ["> **Thinking**", ">", *_quoted(turn.thinking), ""]
        lines.append(turn.content.strip("\n"))
        if turn.stats:
            lines += ["", f"*{turn.stats}*"]
    return "\n".join(lines).rstrip() + "\n"


def _quoted(text: str) -> list[str]:
    return [f"> {line}".rstrip() for line in text.strip("\n").splitlines()]


def to_json(conversation: Conversation) -> str:
    document = {"format": FORMAT, "version": VERSION, "conversation": conversation.to_dict()}
    return json.dumps(document, indent=1, ensure_ascii=False) + "\n"


def render(conversation: Conversation, fmt: str) -> str:
    return to_markdown(conversation) if fmt == "markdown" else to_json(conversation)


def slug(title: str) -> str:
    """A file name stem from a title: ``Why is the sky blue?`` -> ``why-is-the-sky-blue``."""
    words = re.sub(r"[^a-z0-9]+", "-", title.casefold()).strip("-")
    return words[:48].rstrip("-") or "conversation"


def default_export_path(conversation: Conversation, fmt: str, fallback_dir: Path) -> Path:
    """``<slug>.md`` or ``.json`` in the current directory, or ``fallback_dir`` when that
    cannot be written (a TUI served to a browser often runs in ``/``)."""
    here = Path.cwd()
    folder = here if here != Path(here.anchor) and os.access(here, os.W_OK) else fallback_dir
    return folder / (slug(conversation.title) + SUFFIXES[fmt])


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all (a temporary file, then a rename)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------- import


def parse_export(text: str) -> Conversation:
    """The conversation in a JSON export (or a bare conversation file); BadImport if it is not."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadImport(
            f"not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg.lower()})"
        ) from None
    if not isinstance(document, dict):
        raise BadImport("not a conversation: the file holds no JSON object")
    if "format" in document or "conversation" in document:
        if document.get("format") != FORMAT:
            raise BadImport(
                f"not a Mullama conversation export (format {document.get('format')!r})"
            )
        version = document.get("version")
        if not isinstance(version, int) or version > VERSION:
            raise BadImport(f"an export of version {version!r}; this Mullama reads version 1")
        document = document.get("conversation")
        where = "$.conversation"
    else:
        where = "$"
    try:
        data = msgspec.convert(document, _ConversationFile)
    except msgspec.ValidationError as exc:
        message = str(exc).replace("`$", f"`{where}", 1) if where != "$" else str(exc)
        raise BadImport(f"not a valid conversation: {message}") from None
    try:
        check_options(
            SamplingOptions(
                temperature=data.temperature, top_p=data.top_p, max_tokens=data.max_tokens
            )
        )
    except ValueError as exc:
        raise BadImport(f"not a valid conversation: {exc}") from None
    conversation = Conversation(
        title=" ".join(data.title.split()) or "New chat",
        model=data.model,
        system=data.system,
        temperature=data.temperature,
        top_p=data.top_p,
        max_tokens=data.max_tokens,
        think=data.think,
        turns=[Turn(t.role, t.content, t.thinking, t.stats) for t in data.turns],
    )
    if _SAFE_ID.match(data.id):
        conversation.id = data.id
    return conversation


def read_export(path: Path) -> Conversation:
    """The conversation in the file at ``path``; BadImport (with the reason) if there is none."""
    try:
        size = path.stat().st_size
        if size > MAX_IMPORT_BYTES:
            raise BadImport(f"{size} bytes is too large for a conversation")
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise BadImport("no such file") from None
    except IsADirectoryError:
        raise BadImport("a folder, not a file") from None
    except UnicodeDecodeError:
        raise BadImport("not a text file (it is not UTF-8)") from None
    except OSError as exc:
        raise BadImport(exc.strerror or str(exc)) from None
    return parse_export(text)


# ---------------------------------------------------------------- code blocks


def code_blocks(markdown: str) -> list[tuple[str, str]]:
    """Every code block of a Markdown text as ``(language, code)``, in order."""
    from markdown_it import MarkdownIt

    return [
        (token.info.strip().split(" ")[0] if token.type == "fence" else "", token.content)
        for token in MarkdownIt("commonmark").parse(markdown)
        if token.type in ("fence", "code_block")
    ]
