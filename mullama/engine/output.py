"""Streaming text post-processing: UTF-8 assembly and stop sequences.

Both work on a stream of small pieces and never emit something they may have
to take back: a piece that could be the start of a stop string is held until it
is known not to be one.
"""

from __future__ import annotations

import codecs


class Utf8Stream:
    """Token bytes in, whole characters out (a token may end mid-character)."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def feed(self, data: bytes) -> str:
        return self._decoder.decode(data)

    def flush(self) -> str:
        return self._decoder.decode(b"", final=True)


class StopMatcher:
    """Finds stop strings across piece boundaries, holding back partial matches."""

    def __init__(self, stops: list[str]) -> None:
        self.stops = [s for s in stops if s]
        self._held = ""
        self.matched: str | None = None

    def feed(self, text: str) -> str:
        """Returns the text that is safe to emit now; sets ``matched`` on a stop."""
        if self.matched is not None:
            return ""
        if not self.stops:
            return text
        buf = self._held + text
        first = None
        for stop in self.stops:
            i = buf.find(stop)
            if i != -1 and (first is None or i < first[0]):
                first = (i, stop)
        if first is not None:
            self.matched = first[1]
            self._held = ""
            return buf[: first[0]]
        keep = self._partial_suffix(buf)
        self._held = buf[len(buf) - keep :] if keep else ""
        return buf[: len(buf) - keep]

    def flush(self) -> str:
        """At the end of generation, held text was not a stop after all."""
        held, self._held = self._held, ""
        return held if self.matched is None else ""

    def _partial_suffix(self, buf: str) -> int:
        """Length of the longest suffix of ``buf`` that is a proper prefix of a stop."""
        best = 0
        for stop in self.stops:
            for n in range(min(len(stop) - 1, len(buf)), best, -1):
                if buf.endswith(stop[:n]):
                    best = n
                    break
        return best
