"""Speculative decoding by prompt lookup, inside the batched runner.

A generating sequence whose last tokens occurred earlier in its own prompt or output (code being
edited, a document being quoted, JSON repeating its keys) drafts the tokens that followed them
there. The runner puts the drafts into the same ``llama_decode`` as every other sequence's next
token, with logits for each, and samples position by position: a draft token is kept while the
sampler picks exactly it, and the first token it picks differently ends the run (its cell and
the later drafts' are removed from the KV cache). Every token that comes out was sampled from
the model's own distribution given the tokens before it, in order, with the same sampler state
and random draws as without drafting: greedy output is the same, and a sampled request keeps
its distribution (with a point-mass draft, "sample, then compare" is speculative sampling's
accept-with-min(1, p/q) rule).

How much to draft is decided per step from what steps cost on this machine (:class:`StepCost`):
the step takes the draft tokens likeliest to be kept, as many as give the most expected tokens
per second (:func:`choose`). Under load, or for a sequence whose drafts keep failing, that is
none.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# the n-gram lengths looked up, longest first (a longer match is likelier the right source)
NGRAMS = (5, 3, 2)
MATCH_CAP = 32  # how far back a match is measured (its length sets the prior of success)
INDEX_PER_STEP = 4096  # positions indexed per step (a long prompt is indexed over a few steps)
PRIOR_WEIGHT = 1.0  # the prior's weight, in tested draft tokens
FORGET = 0.7  # a verify step keeps this much of what the earlier ones said
IDLE_FORGET = 0.9  # a step without a draft: the history fades toward the prior


@dataclass
class Proposal:
    tokens: list[int]
    chance: float  # that each next draft token is kept, given the ones before it were


@dataclass
class Drafter:
    """One request's draft source and its record of how its drafts fared."""

    draft_max: int
    draft_min: int = 0
    _indexes: tuple[dict[tuple[int, ...], int], ...] = field(
        default_factory=lambda: tuple({} for _ in NGRAMS)
    )
    _indexed: int = 0  # history positions whose n-grams are in the indexes
    _kept: float = 0.0
    _tested: float = 0.0
    proposed: int = 0  # draft tokens verified
    accepted: int = 0  # of them, kept

    def propose(self, history: list[int], limit: int) -> Proposal | None:
        """A draft of at most ``limit`` tokens continuing ``history``, or None."""
        limit = min(limit, self.draft_max)
        if limit <= 0 or limit < self.draft_min:
            return None
        self._index(history)
        end = len(history)
        for n, index in zip(NGRAMS, self._indexes, strict=True):
            if end <= n:
                continue
            start = index.get(tuple(history[end - n :]))
            if start is None:
                continue
            tokens = history[start : min(start + limit, end)]
            period = end - start
            while len(tokens) < limit:  # the match runs into the tail: a loop, which goes on
                tokens.append(tokens[len(tokens) - period])
            for i, token in enumerate(tokens):
                if token < 0:  # an image's cells: nothing to draft from
                    tokens = tokens[:i]
                    break
            if len(tokens) < max(self.draft_min, 1):
                return None
            return Proposal(tokens, self._chance(self._match(history, start)))
        return None

    def _index(self, history: list[int]) -> None:
        """Index the n-grams that end before the last token: each maps to where the token
        after its most recent occurrence is."""
        stop = min(len(history) - 1, self._indexed + INDEX_PER_STEP)
        for end in range(max(self._indexed, 1), stop + 1):
            for n, index in zip(NGRAMS, self._indexes, strict=True):
                if end >= n:
                    index[tuple(history[end - n : end])] = end
        self._indexed = max(self._indexed, stop + 1)

    @staticmethod
    def _match(history: list[int], start: int) -> int:
        """How many tokens before ``start`` equal the last ones of ``history``."""
        end, n = len(history), 0
        while n < MATCH_CAP and n < start and history[start - 1 - n] == history[end - 1 - n]:
            n += 1
        return n

    def _chance(self, match: int) -> float:
        prior = match / (match + 2)
        return (self._kept + PRIOR_WEIGHT * prior) / (self._tested + PRIOR_WEIGHT)

    def verified(self, drafted: int, kept: int) -> None:
        """``drafted`` tokens went in and the sampler kept the first ``kept`` of them."""
        self.proposed += drafted
        self.accepted += kept
        self._kept = self._kept * FORGET + kept
        self._tested = self._tested * FORGET + kept + (1 if kept < drafted else 0)

    def idle(self) -> None:
        self._kept *= IDLE_FORGET
        self._tested *= IDLE_FORGET


class StepCost:
    """What a decode step costs for ``n`` tokens that want logits: a line ``a + b * n`` fitted
    by least squares, with forgetting, to the runner's own steps. The drafting rule so follows
    the machine: on a CPU a token is a good share of a step, on a GPU almost nothing. (A table
    per ``n`` fits CPU kernels better, 4 tokens can cost less than 3, but one slow step would
    keep a size from ever being tried again; every step moves the line.)"""

    PRIOR_RATIO = 0.4  # b / a before anything is measured (a CPU, a small model)
    DECAY = 0.98  # the line's memory, per step

    def __init__(self) -> None:
        self._sums: list[float] | None = None  # weights, n, n², t, n·t

    def observe(self, n: int, seconds: float) -> None:
        if self._sums is None:
            a = seconds / (1 + self.PRIOR_RATIO * n)
            self._sums = [0.0] * 5
            for m in (1, 16):  # the prior as two pseudo-steps
                self._add(m, a * (1 + self.PRIOR_RATIO * m))
        s = self._sums
        for i in range(5):
            s[i] *= self.DECAY
        self._add(n, seconds)

    def _add(self, n: float, t: float) -> None:
        s = self._sums
        assert s is not None
        s[0] += 1
        s[1] += n
        s[2] += n * n
        s[3] += t
        s[4] += n * t

    def _line(self) -> tuple[float, float]:
        if self._sums is None:
            return 1.0, self.PRIOR_RATIO
        w, sn, snn, st, snt = self._sums
        det = w * snn - sn * sn
        b = (w * snt - sn * st) / det if det > 1e-12 else 0.0
        a = max((st - b * sn) / w, 1e-6)  # a step has a fixed cost, and a token is never free
        return a, max(b, a * 1e-3)

    def time(self, n: int) -> float:
        a, b = self._line()
        return a + b * n


def choose(
    proposals: dict[int, tuple[Proposal, int]], generating: int, cost: StepCost, room: int
) -> dict[int, list[int]]:
    """Draft tokens per slot id: ``proposals`` maps a slot to its proposal and its
    ``draft_min``; ``generating`` sequences take one token each anyway, and at most ``room``
    draft tokens fit. The i-th token of a proposal is kept with ``chance ** i``; the step takes
    the likeliest tokens, as many as give the most expected tokens per second of step time.
    A slot then gets at least its ``draft_min`` tokens, or none."""
    items = []
    for slot, (proposal, _) in proposals.items():
        p = 1.0
        for _ in proposal.tokens:
            p *= proposal.chance
            items.append((p, slot))
    items.sort(key=lambda item: -item[0])
    del items[max(room, 0) :]
    best, best_rate, expected = 0, generating / cost.time(generating), float(generating)
    for d, (chance, _) in enumerate(items, 1):
        expected += chance
        rate = expected / cost.time(generating + d)
        if rate > best_rate:
            best, best_rate = d, rate
    counts: dict[int, int] = {}
    for _, slot in items[:best]:
        counts[slot] = counts.get(slot, 0) + 1
    drafts = {}
    for slot, (proposal, draft_min) in proposals.items():
        k = max(counts.get(slot, 0), draft_min)
        if k > 0:
            drafts[slot] = proposal.tokens[:k]
    return drafts
