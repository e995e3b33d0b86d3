"""Reading JSON request bodies: every bad field is a 400 that names it."""

from __future__ import annotations

import json
from typing import Any

from sanic import Request

from ..engine.api import InvalidRequest

_NAMES = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "a boolean",
    list: "an array",
    dict: "an object",
}


def json_body(request: Request) -> dict:
    if not request.body:
        raise InvalidRequest("the request body is empty; send a JSON object")
    try:
        data = json.loads(request.body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidRequest("the request body must be a JSON object")
    return data


def _matches(value: Any, kind: type) -> bool:
    if isinstance(value, bool):
        return kind is bool
    if kind is float:
        return isinstance(value, (int, float))
    return isinstance(value, kind)


def describe(value: Any) -> str:
    if value is None:
        return "null"
    for kind in (bool, str, int, float, list, dict):
        if isinstance(value, kind):
            return _NAMES[kind].split(" ", 1)[1]
    return type(value).__name__


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
    if float in kinds and isinstance(value, int) and int not in kinds:
        return float(value)
    return value


def string_list(data: dict, name: str, where: str = "") -> list[str] | None:
    """A field that is a string or a list of strings, as a list (None when absent)."""
    value = get(data, name, str, list, where=where)
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    if not all(isinstance(v, str) for v in value):
        raise InvalidRequest(
            f"{where}{name} must be a string or an array of strings", param=f"{where}{name}"
        )
    return value


def data_url_image(url: str, field: str) -> str:
    """The base64 payload of a ``data:image/…;base64,`` URL (remote URLs are not fetched)."""
    if not url.startswith("data:") or ";base64," not in url:
        raise InvalidRequest(
            f"{field} must be a base64 data URL (data:image/...;base64,...); "
            "remote image URLs are not fetched",
            param=field,
        )
    return url.split(";base64,", 1)[1]
