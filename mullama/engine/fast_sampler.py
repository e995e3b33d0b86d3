"""Sampling for the common option sets in numpy, straight from the logits llama.cpp wrote.

``llama_sampler_sample`` copies the whole vocabulary into a candidate array (262,144 entries of
12 bytes for Gemma 3) for every token of every sequence before any sampler looks at it; with 16
sequences that is most of a decode step's time outside ``llama_decode``. This does the same
arithmetic as llama.cpp's samplers, in the order :func:`sampling.build_chain` chains them —
logit biases, penalties, then greedy, or top-k → top-p → min-p → temperature → a random draw — on a view of
the logits, touching only the few candidates near the top.

Greedy picks exactly the token llama.cpp's greedy sampler picks (the first highest logit after
the same float32 penalty arithmetic). Sampled tokens follow the same distribution; the random
numbers come from numpy's generator (seeded from the request's seed, so a seed still reproduces
its output), not from llama.cpp's.

Grammars, mirostat, typical-p, top-k off or above :data:`MAX_TOP_K`, and logprobs requests keep
the native chain.
"""

from __future__ import annotations

import collections
import math
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from .api import SamplingOptions

_T = TypeVar("_T")
Logits = npt.NDArray[np.float32]  # one row, float32, as llama.cpp writes it
TokenIds = npt.NDArray[np.intp]

MAX_TOP_K = 1024
# candidates are first looked for within this many logits of the best one, widening as needed
_WINDOWS = (8.0, 16.0, 32.0, 64.0)


def handles(opts: SamplingOptions) -> bool:
    """Whether :class:`FastSampler` reproduces the native chain for these (merged) options."""
    if opts.grammar or opts.logprobs:
        return False
    if _merged(opts.temperature) <= 0:
        return True
    return (
        not opts.mirostat
        and _merged(opts.typical_p) >= 1.0
        and 0 < _merged(opts.top_k) <= MAX_TOP_K
    )


def _merged(value: _T | None) -> _T:
    """An option of merged options: ``sampling.merge`` over its DEFAULTS leaves none unset."""
    assert value is not None, "the sampling options are not merged"
    return value


class FastSampler:
    """One sequence's sampler state: recent tokens for the penalties, and its random generator."""

    def __init__(self, opts: SamplingOptions, seed: int) -> None:
        self.greedy = _merged(opts.temperature) <= 0
        self.temperature = np.float32(opts.temperature)
        self.top_k = _merged(opts.top_k)
        self.top_p = np.float32(opts.top_p)
        self.min_p = _merged(opts.min_p)
        last_n = max(_merged(opts.repeat_last_n), 0)
        self.penalised = last_n > 0 and (
            opts.repeat_penalty != 1.0
            or bool(opts.presence_penalty)
            or bool(opts.frequency_penalty)
        )
        self.repeat = np.float32(opts.repeat_penalty)
        self.frequency = np.float32(opts.frequency_penalty)
        self.presence = np.float32(opts.presence_penalty)
        self.recent: collections.deque[int] = collections.deque(maxlen=last_n or 1)
        self.counts: collections.Counter[int] = collections.Counter()
        self.rng = np.random.default_rng(seed)
        biases = opts.logit_bias or []
        assert isinstance(biases, list), "logit_bias is not resolved (sampling.resolve_logit_bias)"
        self.bias_ids = np.array([int(t) for t, _ in biases], dtype=np.intp)
        self.biases = np.array([float(b) for _, b in biases], dtype=np.float32)

    def sample(self, logits: Logits) -> int:
        """The next token; ``logits`` (float32, one row) may be changed in place."""
        if len(self.bias_ids):  # first, as llama.cpp's logit-bias sampler heads the chain
            logits[self.bias_ids] += self.biases
        if self.penalised and self.counts:
            self._penalise(logits)
        token = int(logits.argmax()) if self.greedy else self._draw(logits)
        if self.penalised:
            self._accept(token)
        return token

    def _penalise(self, logits: Logits) -> None:
        ids = np.fromiter(self.counts.keys(), dtype=np.intp, count=len(self.counts))
        counts = np.fromiter(self.counts.values(), dtype=np.float32, count=len(self.counts))
        values = logits[ids]
        values = np.where(values <= 0, values * self.repeat, values / self.repeat)
        logits[ids] = values - (counts * self.frequency + self.presence)

    def _accept(self, token: int) -> None:
        if len(self.recent) == self.recent.maxlen:
            old = self.recent[0]
            self.counts[old] -= 1
            if not self.counts[old]:
                del self.counts[old]
        self.recent.append(token)
        self.counts[token] += 1

    def _top_k(self, logits: Logits) -> tuple[TokenIds, Logits]:
        """The ``top_k`` best (ids, logits), best first."""
        k = min(self.top_k, logits.shape[0])
        best = logits.max()
        ids = None
        for window in _WINDOWS:
            ids = np.flatnonzero(logits >= best - np.float32(window))
            if len(ids) >= k:
                break
        else:
            ids = np.arange(logits.shape[0])
        values = logits[ids]
        if len(ids) > k:
            keep = np.argpartition(values, len(values) - k)[len(values) - k :]
            ids, values = ids[keep], values[keep]
        order = np.argsort(-values, kind="stable")
        return ids[order], values[order]

    def candidates(self, logits: Logits) -> tuple[TokenIds, npt.NDArray[np.float64]]:
        """What the draw chooses from: token ids, best first, and their probabilities (after
        top-k, top-p, min-p and temperature, as llama.cpp's chain leaves them)."""
        ids, values = self._top_k(logits)
        n = len(values)
        if self.top_p < 1.0 and n > 1:
            p = np.exp(values - values[0])
            p /= p.sum(dtype=np.float32)
            reached = np.flatnonzero(np.cumsum(p, dtype=np.float32) >= self.top_p)
            n = int(reached[0]) + 1 if len(reached) else n
        if self.min_p > 0.0 and n > 1:
            floor = values[0] + np.float32(math.log(self.min_p))
            below = np.flatnonzero(values[1:n] < floor)
            n = int(below[0]) + 1 if len(below) else n
        scaled = values[:n] / self.temperature
        weights = np.exp(scaled - scaled[0]).astype(np.float64)
        return ids[:n], weights / weights.sum()

    def _draw(self, logits: Logits) -> int:
        ids, probs = self.candidates(logits)
        u = self.rng.random()  # one draw per token, whatever the candidate count
        if len(ids) == 1:
            return int(ids[0])
        index = int(np.searchsorted(np.cumsum(probs), u))
        return int(ids[min(index, len(ids) - 1)])
