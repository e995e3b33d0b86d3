"""Small text formatters shared by the screens."""

from __future__ import annotations

from datetime import UTC, datetime

from mullama.humanize import human_duration, human_size  # noqa: F401  (re-exported)


def until(iso: str, now: datetime | None = None) -> str:
    """'in 4m 10s' for an ISO 8601 time ('' = never)."""
    if not iso:
        return "never"
    try:
        when = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return iso
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    left = (when - (now or datetime.now(UTC))).total_seconds()
    return "now" if left <= 0 else f"in {human_duration(left)}"


def short_date(iso: str) -> str:
    return iso[:16].replace("T", " ") if iso else ""


def reply_stats(tokens: int, eval_ns: int, finish: str) -> str:
    rate = tokens / (eval_ns / 1e9) if eval_ns > 0 else 0.0
    text = f"{tokens} tokens · {rate:.1f} tok/s"
    return text if finish in ("stop", "") else f"{text} · {finish}"
