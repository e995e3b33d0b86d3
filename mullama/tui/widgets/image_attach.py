"""Attaching images in Chat: ``/image PATH`` in the prompt attaches a file to the next message.

The image travels with its turn (base64, in the conversation's file), so that the next
questions about it send it again; the engine checks what it holds (PNG, JPEG, WebP, GIF) and
answers a model without a vision projector with its error.
"""

from __future__ import annotations

import base64
import shlex
from dataclasses import dataclass
from pathlib import Path

from textual.widgets import Label

COMMAND = "/image"


@dataclass(frozen=True)
class Attachment:
    name: str
    data: str  # base64
    size: int


def attach_path(text: str) -> str | None:
    """The path of an ``/image PATH`` prompt ('' when it names none), or None for a message."""
    if text != COMMAND and not text.startswith(COMMAND + " "):
        return None
    rest = text[len(COMMAND) :].strip()
    try:
        words = shlex.split(rest)
    except ValueError:
        words = [rest]
    return " ".join(words) if words else ""


def load_attachment(path: str, max_bytes: int) -> Attachment:
    """Read an image file for a message; ValueError says why it cannot be attached."""
    if not path:
        raise ValueError(f"Give the image's path: {COMMAND} PATH")
    file = Path(path).expanduser()
    try:
        size = file.stat().st_size
        if not file.is_file():
            raise ValueError(f"{path} is not a file")
        if size > max_bytes:
            raise ValueError(f"{file.name} is {size:,} bytes, over the limit of {max_bytes:,}")
        data = file.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
    return Attachment(file.name, base64.b64encode(data).decode("ascii"), len(data))


def describe(names: list[str]) -> str:
    if not names:
        return ""
    return ("image: " if len(names) == 1 else "images: ") + ", ".join(names)


class AttachmentsLabel(Label):
    """The images waiting to go with the next message, above the prompt."""

    def __init__(self, id: str) -> None:
        super().__init__("", id=id, markup=False)
        self.display = False

    def show(self, names: list[str]) -> None:
        self.update(describe(names) + ("  (goes with your next message)" if names else ""))
        self.display = bool(names)
