"""Go value semantics for template data: truthiness, fmt printing and encoding/json output."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from decimal import Decimal


class _Missing:
    """The result of looking up an absent map key (Go's invalid reflect.Value)."""

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING = _Missing()


class GoStruct(dict[str, object]):
    """A Go struct: fields by Go name, JSON by tag in declaration order, always truthy.

    `fields` is (go_name, json_tag, value); a tag may end in ",omitempty". With
    `stringer=True` the struct prints as its JSON, like a type with a String() method.
    """

    def __init__(
        self, fields: Iterable[tuple[str, str, object]], *, stringer: bool = False
    ) -> None:
        fields = list(fields)
        super().__init__((name, value) for name, _, value in fields)
        self.json_tags = {name: tag for name, tag, _ in fields}
        self.stringer = stringer

    def json_items(self) -> list[tuple[str, object]]:
        """(json key, value) pairs that encoding/json would emit."""
        items = []
        for name, tag in self.json_tags.items():
            key, _, option = tag.partition(",")
            value = self[name]
            if option == "omitempty" and is_empty(value):
                continue
            items.append((key, value))
        return items


class JSONMap(dict[str, object]):
    """A Go map type whose String() method returns its JSON (Ollama's tool-call arguments)."""


def is_empty(value: object) -> bool:
    """Go's notion of an empty value (what omitempty omits)."""
    if value is None or value is MISSING or value is False:
        return True
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value == 0
    return (
        isinstance(value, (str, list, tuple, dict))
        and not isinstance(value, GoStruct)
        and len(value) == 0
    )


def truth(value: object) -> bool:
    """Go template truthiness: false, 0, nil and empty string/slice/map are false."""
    if isinstance(value, GoStruct):
        return True
    return not is_empty(value)


def kind_name(value: object) -> str:
    """A Go-ish type name for error messages."""
    if value is None or value is MISSING:
        return "nil"
    return {bool: "bool", int: "int", float: "float64", str: "string"}.get(
        type(value), _composite_kind(value)
    )


def _composite_kind(value: object) -> str:
    if isinstance(value, GoStruct):
        return "struct"
    if isinstance(value, dict):
        return "map"
    if isinstance(value, (list, tuple)):
        return "slice"
    return type(value).__name__


def format_value(value: object, *, top_level: bool = True) -> str:
    """Go's fmt `%v` of a value as text/template prints it."""
    if value is MISSING or (value is None and top_level):
        return "<no value>"
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return format_float(value)
    if isinstance(value, (int, str)):
        return str(value)
    if isinstance(value, JSONMap):
        return go_json(value)
    if isinstance(value, GoStruct):
        if value.stringer:
            return go_json(value)
        return "{" + " ".join(format_value(v, top_level=False) for v in value.values()) + "}"
    if isinstance(value, dict):
        entries = (
            f"{format_value(k, top_level=False)}:{format_value(value[k], top_level=False)}"
            for k in sorted(value, key=str)
        )
        return "map[" + " ".join(entries) + "]"
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(format_value(item, top_level=False) for item in value) + "]"
    return str(value)


def _shortest_digits(number: float) -> tuple[str, int]:
    """Shortest round-trip decimal digits of |number| and its decimal exponent."""
    _, digits, exponent = Decimal(repr(abs(number))).as_tuple()
    assert isinstance(exponent, int)  # callers handle NaN and the infinities first
    text = "".join(map(str, digits)).rstrip("0") or "0"
    return text, len(digits) + exponent - 1


def _exponent_form(digits: str, exponent: int, *, min_exponent_digits: int) -> str:
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    sign = "-" if exponent < 0 else "+"
    return f"{mantissa}e{sign}{abs(exponent):0{min_exponent_digits}d}"


def _special_float(number: float) -> str | None:
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "+Inf" if number > 0 else "-Inf"
    return None


def format_float(number: float) -> str:
    """Go's `%v` for float64: shortest `%g`, exponent form below 1e-4 and from 1e6."""
    special = _special_float(number)
    if special:
        return special
    if number == 0:
        return "-0" if math.copysign(1, number) < 0 else "0"
    digits, exponent = _shortest_digits(number)
    sign = "-" if number < 0 else ""
    if exponent < -4 or exponent >= 6:
        return sign + _exponent_form(digits, exponent, min_exponent_digits=2)
    return sign + _fixed_form(digits, exponent)


def _fixed_form(digits: str, exponent: int) -> str:
    if exponent < 0:
        return "0." + "0" * (-exponent - 1) + digits
    whole = digits[: exponent + 1].ljust(exponent + 1, "0")
    fraction = digits[exponent + 1 :]
    return whole + ("." + fraction if fraction else "")


def _json_float(number: float) -> str:
    if _special_float(number):
        raise ValueError(f"json: unsupported value: {format_float(number)}")
    if number == 0:
        return "-0" if math.copysign(1, number) < 0 else "0"
    digits, exponent = _shortest_digits(number)
    sign = "-" if number < 0 else ""
    if abs(number) < 1e-6 or abs(number) >= 1e21:
        return sign + _exponent_form(digits, exponent, min_exponent_digits=1)
    return sign + _fixed_form(digits, exponent)


_HTML_SAFE = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


def _json_string(text: str) -> str:
    encoded = json.dumps(text, ensure_ascii=False)
    return "".join(_HTML_SAFE.get(char, char) for char in encoded)


def go_json(value: object) -> str:
    """Compact JSON as Go's json.Marshal writes it (sorted map keys, HTML-safe escapes)."""
    if value is None or value is MISSING:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _json_float(value)
    if isinstance(value, str):
        return _json_string(value)
    if isinstance(value, GoStruct):
        return _json_object(value.json_items())
    if isinstance(value, dict):
        return _json_object(
            sorted(((str(k), v) for k, v in value.items()), key=lambda item: item[0])
        )
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(go_json(item) for item in value) + "]"
    raise ValueError(f"json: unsupported type: {type(value).__name__}")


def _json_object(items: Iterable[tuple[str, object]]) -> str:
    return "{" + ",".join(f"{_json_string(key)}:{go_json(value)}" for key, value in items) + "}"
