"""Typed model parameters shared by the Modelfile parser, HTTP `options` and CLI `/set`."""

from __future__ import annotations

import difflib
import math
import re

from ..engine.options import PARAMETERS

PARAMETER_TYPES: dict[str, type] = {name: rule.kind for name, rule in PARAMETERS.items()}
"""Parameter name -> Python type. `stop` is a string that may repeat; its value is a list[str]."""

_INT_TEXT = re.compile(r"[+-]?\d+\Z")
_FLOAT_TEXT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\Z")
_BOOL_WORDS = {
    "true": True,
    "1": True,
    "yes": True,
    "on": True,
    "false": False,
    "0": False,
    "no": False,
    "off": False,
}


def describe(value: object) -> str:
    """How a rejected value is quoted in error messages."""
    return f'"{value}"' if isinstance(value, str) else repr(value)


def parse_int(text: str) -> int:
    """Parse a decimal integer or raise ValueError("expects an integer, got ...")."""
    if not _INT_TEXT.match(text.strip()):
        raise ValueError(f"expects an integer, got {describe(text)}")
    return int(text)


def parse_float(text: str) -> float:
    """Parse a finite decimal number or raise ValueError("expects a number, got ...")."""
    if not _FLOAT_TEXT.match(text.strip()):
        raise ValueError(f"expects a number, got {describe(text)}")
    return float(text)


def parse_bool(text: str) -> bool:
    """Parse true/false/1/0/yes/no/on/off (any case)."""
    try:
        return _BOOL_WORDS[text.strip().lower()]
    except KeyError:
        raise ValueError(f"expects true or false, got {describe(text)}") from None


def convert_parameter(name: str, value: object) -> object:
    """Convert `value` for the known parameter `name`; ValueError says what was expected."""
    rule = PARAMETERS[name]
    if rule.kind is str:
        return _to_stop_list(value)
    converted = _to_int(value) if rule.kind is int else _to_float(value)
    # ranges are checked when a request uses the value (options.validate): a Modelfile keeps any
    if rule.choices and not rule.allows(converted):
        raise ValueError(f"expects {rule.expected}, got {describe(value)}")
    return converted


def unknown_parameter(name: str) -> str:
    """What to say of a parameter name that does not exist: the likely one, or them all."""
    close = difflib.get_close_matches(name.lower(), list(PARAMETER_TYPES), n=1, cutoff=0.7)
    if close:
        return f'unknown parameter "{name}"; did you mean "{close[0]}"?'
    return f'unknown parameter "{name}"; expected one of {", ".join(PARAMETER_TYPES)}'


def coerce_parameter(name: str, value: object) -> object:
    """Validate and convert a request/CLI value for parameter `name` (stop -> list[str])."""
    if name not in PARAMETER_TYPES:
        raise ValueError(unknown_parameter(name))
    try:
        return convert_parameter(name, value)
    except ValueError as exc:
        raise ValueError(f"parameter {name} {exc}") from None


def _to_int(value: object) -> int:
    if isinstance(value, str):
        return parse_int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise ValueError(f"expects an integer, got {describe(value)}")


def _to_float(value: object) -> float:
    if isinstance(value, str):
        return parse_float(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    raise ValueError(f"expects a number, got {describe(value)}")


def _to_stop_list(value: object) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)):
        raise ValueError(f"expects a string or a list of strings, got {describe(value)}")
    for item in items:
        if not isinstance(item, str) or not item:
            raise ValueError(f"expects a non-empty string, got {describe(item)}")
    return list(items)
