"""Chat conversations and their JSON files under ``settings.conversations_dir``."""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..engine.api import Message


@dataclass
class Turn:
    role: str  # user | assistant
    content: str = ""
    thinking: str = ""
    stats: str = ""  # e.g. "42 tokens · 31.5 tok/s" for a finished reply
    images: list[str] = field(default_factory=list)  # base64, sent again with each request
    image_names: list[str] = field(default_factory=list)


@dataclass
class Conversation:
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    title: str = "New chat"
    model: str = ""
    system: str = ""
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    think: bool | None = None
    turns: list[Turn] = field(default_factory=list)
    updated: float = field(default_factory=time.time)

    def messages(self) -> list[Message]:
        """The request history: system prompt first, then every turn with content."""
        head = [Message("system", self.system)] if self.system.strip() else []
        return head + [
            Message(t.role, t.content, images=list(t.images))
            for t in self.turns
            if t.content or t.role == "user"
        ]

    def retitle(self) -> None:
        """Name the conversation after its first user message."""
        first = next((t.content for t in self.turns if t.role == "user"), "")
        line = " ".join(first.split())
        if line and self.title == "New chat":
            self.title = line[:40] + ("…" if len(line) > 40 else "")

    def matches(self, query: str) -> bool:
        """Whether every word of ``query`` is in the title or a turn (case-insensitive)."""
        words = query.casefold().split()
        if not words:
            return True
        text = "\n".join([self.title, *(t.content for t in self.turns)]).casefold()
        return all(word in text for word in words)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Conversation:
        turns = [Turn(**t) for t in data.get("turns", [])]
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__ and k != "turns"}
        return cls(turns=turns, **known)


class ConversationStore:
    """One ``<id>.json`` file per conversation, written atomically."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)

    def path(self, conversation_id: str) -> Path:
        return self.directory / f"{conversation_id}.json"

    def list(self) -> list[Conversation]:
        """Every readable conversation, most recently updated first."""
        if not self.directory.is_dir():
            return []
        found = []
        for file in self.directory.glob("*.json"):
            try:
                found.append(Conversation.from_dict(json.loads(file.read_text(encoding="utf-8"))))
            except (OSError, ValueError, TypeError):
                continue  # a damaged file is skipped, never fatal
        return sorted(found, key=lambda c: c.updated, reverse=True)

    def save(self, conversation: Conversation) -> None:
        conversation.updated = time.time()
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.path(conversation.id)
        tmp = target.with_suffix(f".{uuid.uuid4().hex[:8]}.tmp")  # two saves never share one
        tmp.write_text(
            json.dumps(conversation.to_dict(), indent=1, ensure_ascii=False), encoding="utf-8"
        )
        os.replace(tmp, target)

    def delete(self, conversation_id: str) -> None:
        self.path(conversation_id).unlink(missing_ok=True)
