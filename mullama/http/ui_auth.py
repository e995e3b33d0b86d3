"""``/ui/``'s logins: session tokens for the cookie, and a limit on wrong keys per client.

The cookie holds a random token the daemon maps to a login, never the API key itself; tokens
live in memory (a restart logs every browser out). After :data:`FREE_TRIES` wrong keys, a client
address waits :data:`FIRST_WAIT` seconds before its next try, twice as long after each further
wrong key, up to :data:`MAX_WAIT`; the right key clears its record.
"""

from __future__ import annotations

import math
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

FREE_TRIES = 5
FIRST_WAIT = 30.0
MAX_WAIT = 15 * 60.0
MAX_CLIENTS = 10_000  # addresses remembered; the oldest are forgotten first
MAX_TOKENS = 256  # logins kept; the oldest is logged out first


class SessionTokens:
    """Random tokens standing for a login."""

    def __init__(self, limit: int = MAX_TOKENS) -> None:
        self.limit = limit
        self._tokens: OrderedDict[str, None] = OrderedDict()

    def issue(self) -> str:
        token = secrets.token_urlsafe(32)
        self._tokens[token] = None
        while len(self._tokens) > self.limit:
            self._tokens.popitem(last=False)
        return token

    def valid(self, token: str | None) -> bool:
        return bool(token) and token in self._tokens


@dataclass
class _Record:
    failures: int = 0
    until: float = 0.0  # no try before this (monotonic seconds)


class LoginLimiter:
    """Backoff on wrong keys, per client address."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._clients: OrderedDict[str, _Record] = OrderedDict()

    def wait(self, client: str) -> int:
        """Seconds ``client`` must wait before its next try (0: it may try now)."""
        record = self._clients.get(client)
        left = record.until - self.clock() if record is not None else 0.0
        return math.ceil(left) if left > 0 else 0

    def failed(self, client: str) -> None:
        record = self._clients.pop(client, None) or _Record()
        record.failures += 1
        if record.failures >= FREE_TRIES:
            extra = record.failures - FREE_TRIES
            record.until = self.clock() + min(FIRST_WAIT * 2 ** min(extra, 32), MAX_WAIT)
        self._clients[client] = record
        while len(self._clients) > MAX_CLIENTS:
            self._clients.popitem(last=False)

    def succeeded(self, client: str) -> None:
        self._clients.pop(client, None)
