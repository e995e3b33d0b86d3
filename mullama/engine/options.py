"""Checks of sampling options: light (no llama.cpp), so the TUI checks its forms with them too."""

from __future__ import annotations

import math

from .api import InvalidRequest, SamplingOptions

_RANGES = {
    "temperature": (0.0, 100.0),
    "top_p": (0.0, 1.0),
    "min_p": (0.0, 1.0),
    "typical_p": (0.0, 1.0),
    "repeat_penalty": (0.0, 100.0),
    "presence_penalty": (-100.0, 100.0),
    "frequency_penalty": (-100.0, 100.0),
    "mirostat_tau": (0.0, 100.0),
    "mirostat_eta": (0.0, 10.0),
}


def validate(opts: SamplingOptions) -> None:
    """Raise InvalidRequest naming the first field with an impossible value."""
    for name, (low, high) in _RANGES.items():
        value = getattr(opts, name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            raise InvalidRequest(f"{name} must be a number, got {value!r}", param=name)
        if not low <= value <= high:
            raise InvalidRequest(
                f"{name} must be between {low:g} and {high:g}, got {value:g}", param=name
            )
    for name in ("top_k", "repeat_last_n", "seed", "max_tokens", "mirostat", "top_logprobs"):
        value = getattr(opts, name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise InvalidRequest(f"{name} must be an integer, got {value!r}", param=name)
    if opts.top_k is not None and opts.top_k < 0:
        raise InvalidRequest(f"top_k must be 0 or more, got {opts.top_k}", param="top_k")
    if opts.max_tokens is not None and opts.max_tokens < -1:
        raise InvalidRequest(
            f"max_tokens must be positive (or -1 for no limit), got {opts.max_tokens}",
            param="max_tokens",
        )
    if opts.mirostat is not None and opts.mirostat not in (0, 1, 2):
        raise InvalidRequest(f"mirostat must be 0, 1 or 2, got {opts.mirostat}", param="mirostat")
    if opts.top_logprobs and not 0 <= opts.top_logprobs <= 20:
        raise InvalidRequest("top_logprobs must be between 0 and 20", param="top_logprobs")
    if opts.stop is not None:
        if not isinstance(opts.stop, list) or not all(isinstance(s, str) for s in opts.stop):
            raise InvalidRequest("stop must be a string or a list of strings", param="stop")
