"""Built-in template functions (Go's text/template builtins plus Ollama's `json`, `currentDate`)."""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable

from .govalues import MISSING, GoStruct, format_value, go_json, kind_name, truth

_NUMERIC = ("int", "float64")


def _basic_kind(value: object) -> str:
    kind = kind_name(value)
    return "number" if kind in _NUMERIC else kind


def go_eq(first: object, *others: object) -> bool:
    """True if `first` equals any of `others` (Go's eq)."""
    if not others:
        raise ValueError("missing argument for comparison")
    for other in others:
        kinds = {_basic_kind(first), _basic_kind(other)}
        if len(kinds) > 1 and "nil" not in kinds:
            raise ValueError(
                f"incompatible types for comparison: {kind_name(first)} and {kind_name(other)}"
            )
        if first == other and len(kinds) == 1:
            return True
    return False


def go_ne(first: object, second: object) -> bool:
    return not go_eq(first, second)


def go_lt(first: object, second: object) -> bool:
    kind = _basic_kind(first)
    if kind not in ("number", "string"):
        raise ValueError(f"invalid type for comparison: {kind_name(first)}")
    if _basic_kind(second) != kind:
        raise ValueError(
            f"incompatible types for comparison: {kind_name(first)} and {kind_name(second)}"
        )
    if isinstance(first, str) and isinstance(second, str):
        return first < second
    assert isinstance(first, (int, float)) and isinstance(second, (int, float))  # "number"
    return first < second


def go_le(first: object, second: object) -> bool:
    return go_lt(first, second) or go_eq(first, second)


def go_gt(first: object, second: object) -> bool:
    return not go_le(first, second)


def go_ge(first: object, second: object) -> bool:
    return not go_lt(first, second)


def go_not(value: object) -> bool:
    return not truth(value)


def go_len(value: object) -> int:
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, (list, tuple)) or (
        isinstance(value, dict) and not isinstance(value, GoStruct)
    ):
        return len(value)
    raise ValueError(f"len of type {kind_name(value)}")


def _integer_index(index: object, length: int, *, allow_end: bool = False) -> int:
    if not isinstance(index, int) or isinstance(index, bool):
        raise ValueError(f"cannot index slice/array with type {kind_name(index)}")
    limit = length if allow_end else length - 1
    if not 0 <= index <= limit:
        raise ValueError(f"index out of range: {index}")
    return index


def go_index(item: object, *indexes: object) -> object:
    """`index x 1 "k"`: x[1]["k"]; missing map keys give nil."""
    for index in indexes:
        if isinstance(item, str):
            item = item.encode()[_integer_index(index, len(item.encode()))]
        elif isinstance(item, (list, tuple)):
            item = item[_integer_index(index, len(item))]
        elif isinstance(item, dict) and not isinstance(item, GoStruct):
            item = item.get(index)
        elif item is None or item is MISSING:
            raise ValueError("index of untyped nil")
        else:
            raise ValueError(f"can't index item of type {kind_name(item)}")
    return item


def go_slice(item: object, *indexes: object) -> object:
    """`slice x 1 2`: x[1:2] for strings (by byte, as Go) and lists."""
    if isinstance(item, str):
        if len(indexes) > 2:
            raise ValueError("cannot 3-index slice a string")
        sliced = go_slice(item.encode(), *indexes)
        assert isinstance(sliced, bytes)
        return sliced.decode(errors="replace")
    if not isinstance(item, (list, tuple, bytes)):
        raise ValueError(f"can't slice item of type {kind_name(item)}")
    if len(indexes) > 3:
        raise ValueError(f"too many slice indexes: {len(indexes)}")
    bounds = [_integer_index(index, len(item), allow_end=True) for index in indexes]
    for low, high in zip(bounds, bounds[1:]):
        if low > high:
            raise ValueError(f"invalid slice index: {low} > {high}")
    start = bounds[0] if bounds else 0
    stop = bounds[1] if len(bounds) > 1 else len(item)
    return item[start:stop]


def go_sprint(*args: object) -> str:
    """fmt.Sprint: spaces between operands when neither side is a string."""
    parts = []
    for position, arg in enumerate(args):
        if position and not isinstance(arg, str) and not isinstance(args[position - 1], str):
            parts.append(" ")
        parts.append(format_value(arg, top_level=False))
    return "".join(parts)


def go_sprintln(*args: object) -> str:
    return " ".join(format_value(arg, top_level=False) for arg in args) + "\n"


def go_quote(text: str) -> str:
    """strconv.Quote."""
    escapes = {
        "\a": "\\a",
        "\b": "\\b",
        "\f": "\\f",
        "\n": "\\n",
        "\r": "\\r",
        "\t": "\\t",
        "\v": "\\v",
        "\\": "\\\\",
        '"': '\\"',
    }
    out = []
    for char in text:
        if char in escapes:
            out.append(escapes[char])
        elif char.isprintable():
            out.append(char)
        elif ord(char) < 0x80:
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(f"\\u{ord(char):04x}" if ord(char) < 0x10000 else f"\\U{ord(char):08x}")
    return '"' + "".join(out) + '"'


_VERB = re.compile(r"%([-+# 0]*)(\d*)(?:\.(\d+))?(.|$)", re.S)


def _format_verb(verb: str, precision: str | None, arg: object) -> str:
    if verb == "v":
        return format_value(arg, top_level=False)
    if verb == "s" and isinstance(arg, str):
        return arg[: int(precision)] if precision else arg
    if verb == "q" and isinstance(arg, str):
        return go_quote(arg)
    if verb == "t" and isinstance(arg, bool):
        return "true" if arg else "false"
    if isinstance(arg, bool):
        return f"%!{verb}(bool={format_value(arg)})"
    if verb in "dxXc" and isinstance(arg, int):
        integer_verbs: dict[str, Callable[[int], str]] = {
            "d": str,
            "x": "{:x}".format,
            "X": "{:X}".format,
            "c": chr,
        }
        return integer_verbs[verb](arg)
    if verb in "feE" and isinstance(arg, (int, float)):
        return f"{float(arg):.{int(precision) if precision else 6}{verb}}"
    if verb in "gG" and isinstance(arg, (int, float)):
        return format_value(float(arg))
    if verb == "s":
        return format_value(arg, top_level=False)
    return f"%!{verb}({kind_name(arg)}={format_value(arg, top_level=False)})"


def go_sprintf(pattern: str, *args: object) -> str:
    """fmt.Sprintf for the verbs %v %s %d %q %t %f %e %g %x %X %c %% with width/precision."""
    remaining = list(args)

    def replace(match: re.Match[str]) -> str:
        flags, width, precision, verb = match.groups()
        if verb == "%":
            return "%"
        if not verb:
            return "%!(NOVERB)"
        if not remaining:
            return f"%!{verb}(MISSING)"
        text = _format_verb(verb, precision, remaining.pop(0))
        if width:
            fill = "0" if "0" in flags and "-" not in flags and verb in "dfeEgGxX" else " "
            text = text.ljust(int(width)) if "-" in flags else text.rjust(int(width), fill)
        return text

    result = _VERB.sub(replace, pattern)
    if remaining:
        extra = ", ".join(
            f"{kind_name(arg)}={format_value(arg, top_level=False)}" for arg in remaining
        )
        result += f"%!(EXTRA {extra})"
    return result


def current_date() -> str:
    """Ollama's `currentDate`: today as YYYY-MM-DD."""
    return datetime.date.today().isoformat()


BUILTINS: dict[str, Callable[..., object]] = {
    "eq": go_eq,
    "ne": go_ne,
    "lt": go_lt,
    "le": go_le,
    "gt": go_gt,
    "ge": go_ge,
    "not": go_not,
    "len": go_len,
    "index": go_index,
    "slice": go_slice,
    "json": go_json,
    "print": go_sprint,
    "println": go_sprintln,
    "printf": go_sprintf,
    "currentDate": current_date,
}
"""Functions with ordinary (eager) arguments; `and`/`or` are evaluated lazily by the executor."""

LAZY_FUNCTIONS = ("and", "or")
