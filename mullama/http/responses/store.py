"""Responses kept for ``store: true``: one JSON file per response in the data directory's
``responses/`` folder, so that ``previous_response_id``, ``GET`` and ``DELETE`` find them after
a restart.

A record holds the response as sent, the input items of its request and the history they
followed (the items of its ``previous_response_id`` chain), so continuing a conversation reads
one file. Files are written atomically (a temporary file in the same folder, then
``os.replace``); the store is bounded: after each write, responses older than ``max_age``
seconds go, then the oldest beyond ``max_count``."""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any

MAX_COUNT = 1000
MAX_AGE = 30 * 24 * 3600  # seconds
_ID = re.compile(r"^[A-Za-z0-9_-]{1,100}$")
_STALE_TEMP = 3600  # seconds before a leftover temporary file (a crash mid-write) is removed


class ResponseStore:
    def __init__(self, root: Path, max_count: int = MAX_COUNT, max_age: float = MAX_AGE):
        self.root, self.max_count, self.max_age = Path(root), max_count, max_age

    def _path(self, response_id: str) -> Path | None:
        return self.root / f"{response_id}.json" if _ID.match(response_id) else None

    def save(self, record: dict[str, Any]) -> None:
        """Keep ``record`` (``{"response": {...}, "input": [...], "history": [...]}``)."""
        path = self._path(record["response"]["id"])
        if path is None:
            raise ValueError(f"not a response id: {record['response']['id']!r}")
        self.root.mkdir(parents=True, exist_ok=True)
        fd, temp = tempfile.mkstemp(dir=self.root, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                json.dump(record, file, ensure_ascii=False, separators=(",", ":"))
            os.replace(temp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise
        self.prune()

    def load(self, response_id: str) -> dict[str, Any] | None:
        path = self._path(response_id)
        if path is None:
            return None
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if time.time() - path.stat().st_mtime > self.max_age:
            return None
        return record if isinstance(record, dict) else None

    def delete(self, response_id: str) -> bool:
        path = self._path(response_id)
        if path is None:
            return False
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        return True

    def conversation(self, record: dict[str, Any]) -> list[dict[str, Any]]:
        """The items a response continuing ``record`` follows: its history, input and output."""
        return [*record.get("history", []), *record.get("input", []), *record["response"]["output"]]

    def prune(self) -> None:
        now = time.time()
        kept: list[tuple[float, Path]] = []
        for path in self.root.iterdir():
            try:
                mtime = path.stat().st_mtime
            except FileNotFoundError:
                continue
            if path.suffix == ".tmp":
                if now - mtime > _STALE_TEMP:
                    with contextlib.suppress(OSError):
                        path.unlink()
            elif path.suffix == ".json":
                if now - mtime > self.max_age:
                    with contextlib.suppress(OSError):
                        path.unlink()
                else:
                    kept.append((mtime, path))
        kept.sort()
        for _, path in kept[: max(0, len(kept) - self.max_count)]:
            with contextlib.suppress(OSError):
                path.unlink()
