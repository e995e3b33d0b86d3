"""A job's generated text on its way out: logprob entries, the stop matcher, the events."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .api import TextDelta
from .fast_sampler import Logits
from .llm import Model
from .runner_state import Job, RunnerEvent

Emit = Callable[[Job, RunnerEvent], None]


def logprob_entries(model: Model, job: Job, logits: Logits, token: int) -> list[dict[str, Any]]:
    top = max(job.opts.top_logprobs, 0)
    shifted = logits - logits.max()
    logz = math.log(float(np.exp(shifted).sum()))
    logp = shifted - logz
    entry: dict[str, Any] = {
        "token": model.token_text(token),
        "logprob": float(logp[token]),
        "bytes": list(model.piece(token, special=True)),
        "top_logprobs": [],
    }
    if top:
        best = np.argpartition(-logp, top)[:top]
        best = best[np.argsort(-logp[best])]
        entry["top_logprobs"] = [
            {
                "token": model.token_text(int(t)),
                "logprob": float(logp[t]),
                "bytes": list(model.piece(int(t), special=True)),
            }
            for t in best
        ]
    return [entry]


def text_out(job: Job, text: str, entries: list[dict[str, Any]], emit: Emit) -> None:
    """New text of generated tokens, with their logprob entries, through the stop matcher.

    What is sent is always the whole text of a run of tokens, with exactly their entries:
    text the matcher holds back keeps its entries with it, and text it lets through that
    ends inside a token waits for the rest of that token. A token whose bytes end
    mid-character (or render empty) goes with the token that completes its text. When a
    stop string matches, the text before it goes out with the entries of every token that
    has some of its text in it; the tokens cut off drop theirs.
    """
    if not text:
        job.no_text.extend(entries)
        return
    if job.no_text:
        entries, job.no_text = job.no_text + entries, []
    job.groups.append((len(text), entries))
    job.released += job.stops.feed(text)
    send_released(job, job.stops.matched is not None, emit)


def send_released(job: Job, cut: bool, emit: Emit) -> None:
    """Emit the released text that whole groups cover (all of it when ``cut``)."""
    covered, entries = 0, []
    while job.groups and covered + job.groups[0][0] <= len(job.released):
        chars, group = job.groups.popleft()
        covered += chars
        entries += group
    if cut:
        if covered < len(job.released) and job.groups:  # a token cut by the stop string
            entries += job.groups[0][1]
        covered = len(job.released)
        job.groups.clear()
    text, job.released = job.released[:covered], job.released[covered:]
    if text:
        logprobs = entries if job.opts.logprobs else None
        emit(job, TextDelta(text, logprobs, generated=job.generated))


def flush_text(job: Job, emit: Emit) -> None:
    """Send what the stop matcher and UTF-8 decoder still hold back."""
    text_out(job, job.utf8.flush(), [], emit)
    job.released += job.stops.flush()
    send_released(job, True, emit)
    job.no_text = []  # tokens that never rendered any text (a trailing control token)
