"""keep_alive values as Ollama accepts them: "5m", "1h30m", "300ms", 300, "300", 0, -1."""

from __future__ import annotations

import re

from .api import InvalidRequest

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")


def parse_keep_alive(value: object, default: float | None) -> float | None:
    """Seconds to keep a model loaded after its last request; ``None`` means forever.

    0 unloads right after the request; any negative value keeps the model forever.
    """
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise InvalidRequest(f"keep_alive must be a duration, got {value!r}", param="keep_alive")
    if isinstance(value, (int, float)):
        seconds = float(value)
    elif isinstance(value, str):
        seconds = _parse_duration(value.strip())
    else:
        raise InvalidRequest(f"keep_alive must be a duration, got {value!r}", param="keep_alive")
    return None if seconds < 0 else seconds


def _parse_duration(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    sign = -1.0 if text.startswith("-") else 1.0
    body = text.lstrip("+-")
    total, pos = 0.0, 0
    for match in _PART.finditer(body):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(body) or not body:
        raise InvalidRequest(
            f'keep_alive "{text}" is not a duration such as "5m", "1h30m" or "300s"',
            param="keep_alive",
        )
    return sign * total
