"""The rules of model parameters and sampling options, in one table.

Light (no llama.cpp): the Modelfile parser, the HTTP protocol models, the TUI's forms and the
engine all check values against :data:`PARAMETERS` and :data:`SAMPLING`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .api import InvalidRequest, SamplingOptions


@dataclass(frozen=True)
class Rule:
    """What values an option takes. ``kind`` is int, float or str (``stop``: a list of str), or
    dict for ``logit_bias`` (token id or text -> bias, see :func:`logit_bias_problem`)."""

    kind: type
    low: float | None = None
    high: float | None = None
    choices: tuple[int, ...] = ()
    field: str | None = None  # the SamplingOptions field; None: a load-time parameter
    wording: str | None = None  # how the range is said, when not by its bounds

    @property
    def expected(self) -> str:
        """The allowed range in words: ``between 0 and 1``, ``0 or more``, ``0, 1 or 2``."""
        if self.wording:
            return self.wording
        if self.choices:
            head = ", ".join(str(c) for c in self.choices[:-1])
            return f"{head} or {self.choices[-1]}"
        if self.low is not None and self.high is not None:
            return f"between {self.low:g} and {self.high:g}"
        if self.low is not None:
            return f"{self.low:g} or more"
        return "a number" if self.kind is float else "an integer"

    @property
    def ranged(self) -> bool:
        return bool(self.choices) or self.low is not None or self.high is not None

    def allows(self, value: float) -> bool:
        """Whether a value of the right type is in range."""
        if self.choices:
            return value in self.choices
        if self.low is not None and value < self.low:
            return False
        return self.high is None or value <= self.high


def _number(low: float | None = None, high: float | None = None, field: str = "") -> Rule:
    return Rule(float, low, high, field=field or None)


def _integer(
    low: float | None = None,
    field: str = "",
    *,
    high: float | None = None,
    choices: tuple[int, ...] = (),
    wording: str | None = None,
) -> Rule:
    return Rule(int, low, high, choices, field or None, wording)


PARAMETERS: dict[str, Rule] = {
    "temperature": _number(0, 100, "temperature"),
    "top_p": _number(0, 1, "top_p"),
    "top_k": _integer(0, "top_k"),
    "min_p": _number(0, 1, "min_p"),
    "typical_p": _number(0, 1, "typical_p"),
    "num_ctx": _integer(),
    "num_predict": _integer(-2, "max_tokens"),
    "num_keep": _integer(),
    "repeat_penalty": _number(0, 100, "repeat_penalty"),
    "repeat_last_n": _integer(field="repeat_last_n"),
    "presence_penalty": _number(-100, 100, "presence_penalty"),
    "frequency_penalty": _number(-100, 100, "frequency_penalty"),
    "seed": _integer(field="seed"),
    "stop": Rule(str, field="stop"),
    "mirostat": _integer(field="mirostat", choices=(0, 1, 2)),
    "mirostat_eta": _number(0, 10, "mirostat_eta"),
    "mirostat_tau": _number(0, 100, "mirostat_tau"),
    "draft_max": _integer(0, "draft_max", high=64),
    "draft_min": _integer(0, "draft_min", high=64),
    "num_batch": _integer(),
    "num_thread": _integer(),
    "num_gpu": _integer(),
    "num_parallel": _integer(),
}
"""Modelfile PARAMETER (and Ollama ``options``) names and their rules, in Modelfile order."""

PARAMETER_FIELDS = {name: rule.field for name, rule in PARAMETERS.items() if rule.field}
"""Parameter name -> SamplingOptions field (``num_predict`` is ``max_tokens``)."""

SAMPLING: dict[str, Rule] = {
    **{rule.field: rule for rule in PARAMETERS.values() if rule.field},
    # -2 is Ollama's "fill the context", which requests turn into -1
    "max_tokens": _integer(-1, "max_tokens", wording="positive (or -1 for no limit)"),
    "top_logprobs": _integer(0, "top_logprobs", high=20),
    # not a Modelfile PARAMETER: a bias belongs to one request (and token ids to one vocabulary)
    "logit_bias": Rule(dict, field="logit_bias"),
}
"""SamplingOptions field -> rule, for the fields that have one."""

DEFAULTS = SamplingOptions(
    temperature=0.8,
    top_p=0.9,
    top_k=40,
    min_p=0.0,
    typical_p=1.0,
    repeat_penalty=1.1,
    repeat_last_n=64,
    presence_penalty=0.0,
    frequency_penalty=0.0,
    mirostat=0,
    mirostat_tau=5.0,
    mirostat_eta=0.1,
    seed=None,
    max_tokens=-1,
    stop=[],
    draft_max=16,
    draft_min=0,
)
"""The engine's options where neither the request nor the model's PARAMETERs set one."""


def from_parameters(params: dict[str, Any]) -> SamplingOptions:
    """Modelfile PARAMETERs (or Ollama ``options``) as SamplingOptions; others are ignored."""
    values = {PARAMETER_FIELDS[k]: v for k, v in params.items() if k in PARAMETER_FIELDS}
    if "stop" in values and isinstance(values["stop"], str):
        values["stop"] = [values["stop"]]
    return SamplingOptions(**values)


def problem(rule: Rule, value: object) -> str | None:
    """What is wrong with ``value`` (``must be …, got …``), or None when the rule allows it."""
    if rule.kind is dict:
        return logit_bias_problem(value)
    if rule.kind is str:
        if isinstance(value, list) and all(isinstance(s, str) for s in value):
            return None
        return "must be a string or a list of strings"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"must be {'a number' if rule.kind is float else 'an integer'}, got {value!r}"
    if rule.kind is int and not isinstance(value, int):
        return f"must be an integer, got {value!r}"
    if math.isnan(value):
        return f"must be a number, got {value!r}"
    if not rule.allows(value):
        return f"must be {rule.expected}, got {value:g}"
    return None


_BIAS_SHAPE = (
    "must be an object of token ids or strings to biases, or a list of [token id or string, "
    "bias] pairs"
)


def bias_value(value: object) -> float | None:
    """A bias as a number (``False`` bans: -inf), or None when it is none (NaN, +inf, true)."""
    if value is False:
        return -math.inf
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if math.isnan(value) or value == math.inf:
        return None
    return float(value)


def logit_bias_problem(value: object) -> str | None:
    """What is wrong with the shape of a ``logit_bias`` (ids are checked against the model's
    vocabulary when it is resolved), or None."""
    if isinstance(value, dict):
        pairs = list(value.items())
    elif isinstance(value, (list, tuple)):
        if not all(isinstance(p, (list, tuple)) and len(p) == 2 for p in value):
            return _BIAS_SHAPE
        pairs = [(p[0], p[1]) for p in value]
    else:
        return _BIAS_SHAPE
    for key, bias in pairs:
        if isinstance(key, bool) or not isinstance(key, (int, str)):
            return f"{_BIAS_SHAPE}, got the key {key!r}"
        if isinstance(key, str) and not key:
            return "must not name an empty string"
        if bias_value(bias) is None:
            return f"must have numbers as biases (or false to ban), got {bias!r} for {key!r}"
    return None


def validate(opts: SamplingOptions) -> None:
    """Raise InvalidRequest naming the first field with an impossible value."""
    for name, rule in SAMPLING.items():
        value = getattr(opts, name)
        if value is None:
            continue
        if (message := problem(rule, value)) is not None:
            raise InvalidRequest(f"{name} {message}", param=name)
