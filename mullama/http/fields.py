"""Typed reads of ``/api/create`` body fields (the one body not yet declared as a model in
``http.protocol``): every bad field is a 400 that names it."""

from __future__ import annotations

from typing import Any

from ..engine.api import InvalidRequest
from .common.protocol import describe

_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "a boolean",
    list: "an array",
    dict: "an object",
}


def _matches(value: Any, kind: type) -> bool:
    if isinstance(value, bool):
        return kind is bool
    if kind is float:
        return isinstance(value, (int, float))
    return isinstance(value, kind)


def get(
    data: dict,
    name: str,
    *kinds: type,
    required: bool = False,
    default: Any = None,
    where: str = "",
) -> Any:
    """``data[name]`` if it has one of ``kinds`` (null counts as absent); else InvalidRequest.

    ``where`` prefixes the field in messages and ``param`` (e.g. ``messages[2].``).
    """
    value = data.get(name)
    field = f"{where}{name}"
    if value is None:
        if required:
            raise InvalidRequest(f"{field} is required", param=field)
        return default
    if not any(_matches(value, kind) for kind in kinds):
        expected = " or ".join(_NAMES[k] for k in kinds)
        raise InvalidRequest(f"{field} must be {expected}, got {describe(value)}", param=field)
    return value
